"""JSON on the request path: orjson where it gives exactly what :mod:`json` gives, :mod:`json` otherwise.

``orjson`` parses a small document several times faster than ``json``, but it reads an integer beyond 64
bits as a float, and it refuses what ``json`` accepts (``NaN``, ``1e400``, a lone surrogate, a BOM,
UTF-16). So a document with a long run of digits goes to ``json`` directly, and anything ``orjson``
refuses is handed to ``json``, which accepts it or raises its own error: callers see no difference.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# 19 digits may exceed a 64-bit integer (orjson would round it to a float); shorter runs never do.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")

# json.dumps(value, separators=...) builds an encoder per call; this one is built once.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def loads(data: bytes) -> Any:
    """``json.loads(data)``: the same document, or the same exception."""
    if _LONG_DIGITS.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json decides, and explains a real error in its own words
    return json.loads(data)


def dumps_compact(value: Any) -> bytes:
    """``json.dumps(value, separators=(",", ":")).encode()``, byte for byte."""
    return _COMPACT.encode(value).encode()
