"""Every host.toml key the configuration accepts is in the README's configuration table, and no other.

The keys come from the pydantic models in `host/config.py` (the same models that validate host.toml), so a
key added there without a README row fails here (datasette's settings-documentation test).
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from host.config import HostConfig
from tests.conftest import ROOT

TABLE_HEADING = "## Configuration reference (`host.toml`)"


def accepted_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted keys the model accepts: ``server.host``, ``auth.keys.name``, ``consumes.*.timeout``."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, not read from the file
            continue
        key = f"{prefix}{name}"
        nested, through_table = _nested_model(field.annotation)
        if nested is None:
            keys.add(key)
        else:
            keys |= accepted_keys(nested, f"{key}.*." if through_table else f"{key}.")
    return keys


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section model behind ``Model``, ``Model | None``, ``list[Model]`` or ``dict[str, Model]``
    (True for the dict: its keys are names the operator chooses)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict:
        model, _ = _nested_model(args[1])
        return model, True
    if origin in (list, tuple, typing.Union, types.UnionType):
        for arg in args:
            model, through_table = _nested_model(arg)
            if model is not None:
                return model, through_table
    return None, False


def documented_keys(readme: str) -> set[str]:
    """Keys named in the first column of the README's configuration table.

    A cell is a table header and one or more keys: ``[server] host``, ``[limits] max_header_bytes`` /
    ``max_headers``, ``[[auth.keys]] name``, ``env``; ``<namespace>`` stands for any name (``*``).
    """
    section = readme.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `["):
            continue
        cell = line.split("|")[1]
        names = re.findall(r"`([^`]+)`", cell)
        table, _, first = names[0].rpartition("]")
        table = re.sub(r"<[^>]+>", "*", table.strip("[]"))
        keys |= {f"{table}.{name.strip()}" for name in [first, *names[1:]]}
    return keys


def test_every_accepted_key_is_documented_and_every_documented_key_is_accepted() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    accepted, documented = accepted_keys(HostConfig), documented_keys(readme)
    assert sorted(accepted - documented) == [], "host.toml keys missing from the README's configuration table"
    assert sorted(documented - accepted) == [], "README configuration rows for keys host.toml does not accept"


def test_the_check_sees_a_missing_row() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `[consumes.<namespace>] mock`"))
    assert "consumes.*.mock" in accepted_keys(HostConfig) - documented_keys(readme.replace(row + "\n", ""))
    assert {"server.host", "auth.keys.env", "auth.oauth.jwks_url", "capabilities.path"} <= accepted_keys(
        HostConfig
    )
