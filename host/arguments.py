"""Checking a call's arguments against its declared JSON Schema, and describing what is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from host.errors import InvalidArguments
from host.model import Arguments, JsonSchema


class ArgumentValidator:
    """A JSON Schema compiled once, reporting errors as ``{path: [message]}``.

    Valid arguments, the hot path, are confirmed by jsonschema-rs (compiled, ~150x faster than pure
    Python); only invalid ones go through ``jsonschema`` to describe every error in our own words.
    """

    def __init__(self, schema: JsonSchema) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)
        try:
            self._fast: Any = jsonschema_rs.Draft202012Validator(dict(schema))
        except Exception:  # a schema the compiled validator cannot take is still checked, just slower
            self._fast = None
        self._integers = _Integers.plan(schema)

    def check(self, arguments: Arguments) -> Arguments:
        """The arguments, valid, with integral floats (``21.0``) made integers where the schema says so.

        JSON Schema counts ``21.0`` as an integer; many upstreams (Laravel's ``integer`` rule) do not.
        Raises :class:`InvalidArguments` describing every error.
        """
        if not self._valid(arguments):
            errors: dict[str, list[str]] = {}
            for error in sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
                key, message = describe_error(error)
                errors.setdefault(key, []).append(message)
            raise InvalidArguments(errors or {"(arguments)": ["are not valid"]})
        return self._integers.apply(arguments) if self._integers is not None else arguments

    def _valid(self, arguments: Arguments) -> bool:
        if self._fast is not None:
            try:
                return bool(self._fast.is_valid(arguments))
            except (TypeError, ValueError):  # a value outside JSON's types: let jsonschema judge it
                pass
        return bool(self._validator.is_valid(arguments))


@dataclass(frozen=True)
class _Integers:
    """Where a schema types values as ``integer``: the schema pruned to those places, walked per call."""

    here: bool = False
    properties: Mapping[str, _Integers] = field(default_factory=dict)
    extra: _Integers | None = None  # additionalProperties
    items: _Integers | None = None

    @classmethod
    def plan(cls, schema: Any) -> _Integers | None:
        """None when no value the schema describes can be an integer (then nothing is walked)."""
        if not isinstance(schema, Mapping):
            return None
        kind = schema.get("type")
        here = kind == "integer" or (isinstance(kind, list) and "integer" in kind)
        properties = {
            key: plan
            for key, sub in (schema.get("properties") or {}).items()
            if (plan := cls.plan(sub)) is not None
        }
        extra, items = cls.plan(schema.get("additionalProperties")), cls.plan(schema.get("items"))
        if not (here or properties or extra or items):
            return None
        return cls(here, properties, extra, items)

    def apply(self, value: Any) -> Any:
        """``value`` with integral floats made ints where planned; ``value`` itself when nothing changes."""
        if isinstance(value, float):
            return int(value) if self.here and value.is_integer() else value
        if isinstance(value, dict):
            changed: dict[str, Any] = {}
            # Walk the planned keys only, unless any key may hold an integer (additionalProperties).
            keys = value.keys() if self.extra is not None else self.properties.keys() & value.keys()
            for key in keys:
                item = value[key]
                plan = self.properties.get(key, self.extra)
                if plan is not None and (new := plan.apply(item)) is not item:
                    changed[key] = new
            return {**value, **changed} if changed else value
        if isinstance(value, list) and self.items is not None:
            items = [self.items.apply(item) for item in value]
            return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
        return value


def describe_error(error: ValidationError) -> tuple[str, str]:
    """``(dotted path, message)`` for one schema error, describing the rule, never echoing the value."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            return ".".join([*path, missing.group(1)]), "is required"
    where = ".".join(path) or "(arguments)"
    if error.validator == "additionalProperties":
        return where, error.message
    # jsonschema quotes the offending instance; it may be long or sensitive, so
    # describe the rule instead of echoing the value.
    rule = str(error.validator)
    expected: Any = error.validator_value
    if rule in _RULE_WORDS:
        return where, f"{_RULE_WORDS[rule]} {expected}"
    if rule == "type":
        return where, f"must be of type {expected}"
    if rule == "enum":
        return where, "must be one of " + ", ".join(str(choice) for choice in expected)
    if rule == "pattern":
        return where, f"must match {expected}"
    return where, error.message


_RULE_WORDS = {
    "minimum": "must be at least",
    "maximum": "must be at most",
    "exclusiveMinimum": "must be greater than",
    "exclusiveMaximum": "must be less than",
    "minLength": "must have at least this many characters:",
    "maxLength": "must have at most this many characters:",
    "minItems": "must have at least this many items:",
    "maxItems": "must have at most this many items:",
}


# A header value is visible characters, spaces and tabs (RFC 9110 §5.5); anything else is refused
# before a request is built, whatever the upstream or aiohttp would make of it.
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_HEADER_VALUE = 8 * 1024  # bytes; what common servers accept per header line


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header values with control characters, invalid Unicode or over ``MAX_HEADER_VALUE`` bytes.

    Raises :class:`InvalidArguments` naming each header (a capability's header argument has the
    header's name), so nothing is sent upstream.
    """
    errors: dict[str, list[str]] = {}
    for name, value in headers.items():
        if _HEADER_CONTROL.search(value):
            errors[name] = ["must not contain control characters (header value)"]
        elif not _is_valid_unicode(value):
            errors[name] = ["is not valid Unicode (lone surrogate)"]
        elif len(value.encode()) > MAX_HEADER_VALUE:
            errors[name] = [f"must be at most {MAX_HEADER_VALUE} bytes (header value)"]
    if errors:
        raise InvalidArguments(errors)


def check_text(arguments: Arguments) -> None:
    """Refuse strings that are not valid Unicode (a lone surrogate, as JSON's ``"\\ud800"`` gives).

    They cannot be encoded for the upstream; saying which argument is better than failing later.
    """
    if _valid_text(arguments):
        return
    errors: dict[str, list[str]] = {}
    _find_invalid_text(arguments, "", errors)
    raise InvalidArguments(errors)


def _valid_text(value: Any) -> bool:
    """The fast pass, on every call: exact type checks, and no path built unless something is wrong."""
    kind = type(value)
    if kind is str:
        return _is_valid_unicode(value)
    if kind in _SCALARS:
        return True
    if kind is dict or isinstance(value, Mapping):
        for key, item in value.items():  # noqa: SIM110 - a loop: all() over a generator costs more
            if not (_valid_text(key) and _valid_text(item)):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            if not _valid_text(item):
                return False
    return True


_SCALARS = frozenset({int, float, bool, type(None)})


def _find_invalid_text(value: Any, path: str, errors: dict[str, list[str]]) -> None:
    # Concrete types first: isinstance against them is cheap, against the abstract Mapping it is not.
    if isinstance(value, str):
        if not _is_valid_unicode(value):
            errors[path or "(arguments)"] = ["is not valid Unicode (lone surrogate)"]
    elif isinstance(value, int | float | bool) or value is None:
        return
    elif isinstance(value, dict | Mapping):
        for key, item in value.items():
            shown = str(key).encode(errors="backslashreplace").decode()  # the message must encode
            where = f"{path}.{shown}" if path else shown
            if isinstance(key, str) and not _is_valid_unicode(key):
                errors[where] = ["is not valid Unicode (lone surrogate)"]
            _find_invalid_text(item, where, errors)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _find_invalid_text(item, f"{path}.{index}" if path else str(index), errors)


def _is_valid_unicode(text: str) -> bool:
    if text.isascii():  # the common case, and cheap
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
