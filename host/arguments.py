"""Checking a call's arguments against its declared JSON Schema, and describing what is wrong."""

from __future__ import annotations

import re
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

    def check(self, arguments: Arguments) -> None:
        if self._fast is not None:
            try:
                if self._fast.is_valid(arguments):
                    return
            except (TypeError, ValueError):  # a value outside JSON's types: let jsonschema judge it
                pass
        errors: dict[str, list[str]] = {}
        for error in sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
            key, message = describe_error(error)
            errors.setdefault(key, []).append(message)
        if errors:
            raise InvalidArguments(errors)


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
