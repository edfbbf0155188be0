"""Avro and Protobuf upstream bodies as documents an output mapping can read (``outputRawFormat``).

The ``outputSchema`` names the schema file: an Avro ``.avsc`` (JSON) or a Protobuf ``.proto``. Avro is
read with ``fastavro``: a schemaless datum by the file's schema, or an object container file (which
carries its own schema, so the ``outputSchema`` may be left out). A ``.proto`` is parsed at run time by
``proto-schema-parser`` into a descriptor for ``protobuf``: no compiler, no network. Its first
top-level message is the body's type, as the reference's Jackson loader takes it. Schemas are parsed
once per file, at load time, so that a bad one is a load error rather than a failing call.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

# fastavro, protobuf and proto-schema-parser cost start-up time and memory: they are imported only
# when a capability uses one of these formats (tests/test_lazy_imports.py).
if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2
    from google.protobuf.message import Message
    from proto_schema_parser import ast

BINARY_FORMATS = frozenset({"avro", "protobuf"})
_AVRO_MAGIC = b"Obj\x01"  # an object container file's header
_SCALAR_NAMES = (
    *("double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64"),
    *("fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"),
)


@functools.cache
def _scalars() -> dict[str, int]:
    from google.protobuf import descriptor_pb2

    return {
        name: getattr(descriptor_pb2.FieldDescriptorProto, f"TYPE_{name.upper()}") for name in _SCALAR_NAMES
    }


@functools.cache
def _labels() -> dict[Any, int]:
    from google.protobuf import descriptor_pb2
    from proto_schema_parser import ast

    return {
        ast.FieldCardinality.REPEATED: descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        ast.FieldCardinality.REQUIRED: descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED,
    }


def check_schema(format: str, schema: Path) -> None:
    """Parse the schema file now; raises ``ValueError`` with the reason when it cannot be used."""
    if format == "avro":
        _avro_schema(str(schema))
    else:
        _protobuf_class(str(schema))


def decode(body: bytes, format: str, schema: str | None) -> Any:
    """The decoded body; raises ``ValueError`` naming the format when it does not decode."""
    try:
        return _decode_avro(body, schema) if format == "avro" else _decode_protobuf(body, schema)
    except ValueError as exc:
        raise ValueError(f"the {format} body does not decode: {exc}") from None
    except (EOFError, IndexError, TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"the {format} body does not decode: {type(exc).__name__}: {exc}") from None


def _decode_protobuf(body: bytes, schema: str | None) -> Any:
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    if not schema:
        raise ValueError("no outputSchema names the .proto file")
    message = _protobuf_class(schema)()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise ValueError(f"DecodeError: {exc}") from None
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _decode_avro(body: bytes, schema: str | None) -> Any:
    import fastavro

    stream = io.BytesIO(body)
    if body.startswith(_AVRO_MAGIC):
        records = list(fastavro.reader(stream, reader_schema=_avro_schema(schema) if schema else None))
        return records[0] if len(records) == 1 else records
    if not schema:
        raise ValueError("not an Avro container file, and no outputSchema names the .avsc file")
    parsed = _avro_schema(schema)
    datum = fastavro.schemaless_reader(stream, parsed, None)
    if stream.tell() != len(body):
        raise ValueError(f"{len(body) - stream.tell()} bytes left after the datum")
    return datum


@functools.lru_cache(maxsize=64)
def _avro_schema(path: str) -> Any:
    import fastavro

    try:
        return fastavro.parse_schema(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(getattr(exc, "strerror", None) or type(exc).__name__) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except Exception as exc:  # fastavro raises its own SchemaParseException and plain errors
        raise ValueError(f"not an Avro schema: {exc}") from None


@functools.lru_cache(maxsize=64)
def _protobuf_class(path: str) -> type[Message]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from proto_schema_parser import ast
    from proto_schema_parser.parser import Parser

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(getattr(exc, "strerror", None) or type(exc).__name__) from None
    try:
        parsed = Parser().parse(text)
    except Exception as exc:  # the ANTLR parser raises plain exceptions
        raise ValueError(f"not a .proto file: {exc}") from None
    package = next((e.name for e in parsed.file_elements if isinstance(e, ast.Package)), "")
    file = descriptor_pb2.FileDescriptorProto(
        name=Path(path).name, package=package, syntax=parsed.syntax or "proto2"
    )
    messages = [e for e in parsed.file_elements if isinstance(e, ast.Message)]
    if not messages:
        raise ValueError("the .proto file declares no message")
    for element in parsed.file_elements:
        if isinstance(element, ast.Message):
            _message(element, file.message_type.add())
        elif isinstance(element, ast.Enum):
            _enum(element, file.enum_type.add())
    try:
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        root = pool.FindMessageTypeByName(".".join(filter(None, [package, messages[0].name])))
        message_class: type[Message] = message_factory.GetMessageClass(root)
        return message_class
    except Exception as exc:  # the descriptor pool refuses unresolved types with plain errors
        raise ValueError(f"unusable .proto file: {exc}") from None


def _message(message: ast.Message, out: descriptor_pb2.DescriptorProto) -> None:
    from proto_schema_parser import ast

    out.name = message.name
    for element in message.elements:
        if isinstance(element, ast.Field):
            _field(element, out.field.add())
        elif isinstance(element, ast.OneOf):  # decoded as plain optional fields
            for member in element.elements:
                if isinstance(member, ast.Field):
                    _field(member, out.field.add())
        elif isinstance(element, ast.Message):
            _message(element, out.nested_type.add())
        elif isinstance(element, ast.Enum):
            _enum(element, out.enum_type.add())
        elif isinstance(element, ast.MapField):
            raise ValueError(f"map field {element.name!r} is not supported")


def _field(field: ast.Field, out: descriptor_pb2.FieldDescriptorProto) -> None:
    from google.protobuf import descriptor_pb2
    from proto_schema_parser import ast

    out.name, out.number = field.name, field.number
    cardinality = field.cardinality or ast.FieldCardinality.OPTIONAL
    out.label = _labels().get(cardinality, descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    if field.type in _scalars():
        out.type = _scalars()[field.type]
    else:
        out.type_name = field.type  # a message or an enum, resolved by the descriptor pool


def _enum(enum: ast.Enum, out: descriptor_pb2.EnumDescriptorProto) -> None:
    from proto_schema_parser import ast

    out.name = enum.name
    for value in enum.elements:
        if isinstance(value, ast.EnumValue):
            out.value.add(name=value.name, number=value.number)
