"""Output parameters: mapping a decoded upstream document into what the caller gets (spec §4.7)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from host import templates
from host.naftiko.context import FileError
from host.naftiko.document import OutputParameter
from host.naftiko.jsonpath import JsonPathError, compile_path

Mapper = Callable[[Any], Any]


def output_mapper(outputs: list[OutputParameter], path: str) -> Mapper | None:
    """The first output whose mapping gives a value wins; ``None`` when the file declares none.

    When none gives a value, the upstream document itself is the result, as in the reference.
    """
    if not outputs:
        return None
    compiled = [_mapper(o, f"{path}[{i}]") for i, o in enumerate(outputs)]
    mappers = [m for m in compiled if m is not None]
    if not mappers:
        return None

    def first_non_null(document: Any) -> Any:
        for mapper in mappers:
            value = mapper(document)
            if value is not None:
                return value
        return document

    return first_non_null


def _expression(o: OutputParameter) -> str | None:
    if o.mapping is not None:
        return o.mapping
    if isinstance(o.value, str) and o.value.strip().startswith("$"):
        return o.value
    return None


def _finder(expression: str | None, path: str) -> Mapper | None:
    if expression is None:
        return None
    try:
        return compile_path(expression).find
    except JsonPathError as exc:
        raise FileError(f"{path}.mapping: invalid JSONPath: {exc}") from None


def _mapper(o: OutputParameter, path: str) -> Mapper | None:
    kind = (o.type or "object").lower()
    expression = _expression(o)
    if expression is None and (o.value is not None or o.const is not None):
        static = o.const if o.const is not None else o.value
        return lambda _document: static
    finder = _finder(expression, path)
    if kind == "array":
        return _array(o, finder, path)
    if kind == "object" and o.properties:
        return _object(o.properties, finder, path)
    if kind == "object" and o.values is not None and finder is not None:
        return _values(o.values, finder, path)
    if finder is not None and o.maxLength:
        return _trimmed(finder, o.maxLength)
    return finder


def _array(o: OutputParameter, finder: Mapper | None, path: str) -> Mapper | None:
    item = _mapper(o.items, f"{path}.items") if o.items else None
    if finder is None:
        return None

    def array(document: Any) -> Any:
        found = finder(document)
        if found is None:
            return None
        elements = found if isinstance(found, list) else [found]
        return [item(element) for element in elements] if item else elements

    return array


def _object(properties: dict[str, OutputParameter], finder: Mapper | None, path: str) -> Mapper:
    props = {k: _mapper(v, f"{path}.properties.{k}") for k, v in properties.items()}

    def obj(document: Any) -> Any:
        base = finder(document) if finder else document
        return {k: (m(base) if m else None) for k, m in props.items()}

    return obj


def _values(values: OutputParameter, finder: Mapper, path: str) -> Mapper:
    each = _mapper(values, f"{path}.values")

    def mapped(document: Any) -> Any:
        found = finder(document)
        if not isinstance(found, dict):
            return found
        return {k: (each(v) if each else v) for k, v in found.items()}

    return mapped


def _trimmed(finder: Mapper, limit: int) -> Mapper:
    def trimmed(document: Any) -> Any:
        value = finder(document)
        return value[:limit] if isinstance(value, str) else value

    return trimmed


def mock_value(outputs: list[OutputParameter], arguments: Mapping[str, Any]) -> Any:
    """What a mock exposure (no ``call``) answers: its named outputs as one object, else its one output.

    ``const`` and ``value`` are used as written, ``{{x}}`` in a ``value`` filled from the caller's
    arguments; objects and arrays are built from their properties and items; anything else is null.
    """
    named = [o for o in outputs if o.name]
    if named:
        return {str(o.name): _mock(o, arguments) for o in named}
    return _mock(outputs[0], arguments) if outputs else None


def has_static_value(o: OutputParameter) -> bool:
    """Whether a mock output answers anything: a ``const`` or a ``value`` (not a JSONPath) somewhere in it.
    Without a ``call`` a JSONPath ``mapping`` has no document to read, so it would answer null."""
    if o.const is not None or (o.value is not None and not str(o.value).strip().startswith("$")):
        return True
    children = [*(o.properties or {}).values(), *(item for item in (o.items, o.values) if item is not None)]
    return any(has_static_value(child) for child in children)


def _mock(o: OutputParameter, arguments: Mapping[str, Any]) -> Any:
    kind = (o.type or "").lower()
    if o.const is not None:
        return o.const
    if isinstance(o.value, str) and not o.value.strip().startswith("$"):
        return templates.render(o.value, arguments, single_brace=False)
    if o.value is not None and not isinstance(o.value, str):
        return o.value
    if kind == "object" and o.properties:
        return {key: _mock(value, arguments) for key, value in o.properties.items()}
    if kind == "array" and o.items is not None:
        return [_mock(o.items, arguments)]
    return None
