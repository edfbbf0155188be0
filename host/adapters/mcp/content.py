"""Conversion of operation outcomes and prompt content to MCP wire types."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)
from mcp.types import ContentBlock as WireContent

from host import templates
from host.engine import Outcome
from host.model import (
    AudioBlock,
    ContentBlock,
    ImageBlock,
    ResourceBlock,
    TextBlock,
    ToolContent,
    UpstreamResponse,
)


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


_TEXTUAL_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/javascript",
    }
)


def _is_textual(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type in _TEXTUAL_TYPES
        or media_type.endswith(("+json", "+xml", "+yaml"))
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def resource_contents(
    uri: str, mime_type: str, outcome: Outcome
) -> TextResourceContents | BlobResourceContents:
    """An operation's answer as resource contents: a blob for binary bodies, else text."""
    if outcome.mapped:
        value = outcome.value
        if isinstance(value, bytes):
            return BlobResourceContents(uri=uri, mime_type=mime_type, blob=_b64(value))
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return TextResourceContents(uri=uri, mime_type=mime_type, text=text)
    response = outcome.response
    if response.format == "binary" or not _is_textual(media_type_of(response.content_type)):
        return BlobResourceContents(uri=uri, mime_type=mime_type, blob=_b64(response.body))
    return TextResourceContents(uri=uri, mime_type=mime_type, text=response.body.decode("utf-8", "replace"))


def _wire_content(block: ContentBlock) -> WireContent:
    if isinstance(block, TextBlock):
        return TextContent(type="text", text=block.text)
    if isinstance(block, ImageBlock):
        return ImageContent(type="image", data=_b64(block.data), mime_type=block.mime_type)
    if isinstance(block, AudioBlock):
        return AudioContent(type="audio", data=_b64(block.data), mime_type=block.mime_type)
    resource: TextResourceContents | BlobResourceContents
    if block.text is not None:
        resource = TextResourceContents(uri=block.uri, mime_type=block.mime_type, text=block.text)
    else:
        resource = BlobResourceContents(
            uri=block.uri, mime_type=block.mime_type, blob=_b64(block.blob or b"")
        )
    return EmbeddedResource(type="resource", resource=resource)


def prompt_content(content: str | ContentBlock, arguments: Mapping[str, Any]) -> WireContent:
    """A prompt message's content with ``{argument}`` placeholders filled (text, resource URI and text).

    Text that is not a placeholder with a value (an absent optional argument, ``{"a": 1}``) stays as written.
    """
    if isinstance(content, str):
        return TextContent(type="text", text=templates.render(content, arguments, keep_missing=True))
    if isinstance(content, TextBlock):
        return TextContent(type="text", text=templates.render(content.text, arguments, keep_missing=True))
    if isinstance(content, ResourceBlock):
        text = None if content.text is None else templates.render(content.text, arguments, keep_missing=True)
        uri = templates.render(content.uri, arguments, keep_missing=True)
        return _wire_content(ResourceBlock(uri, content.mime_type, text, content.blob))
    return _wire_content(content)


# A tools/call result in its wire form (camelCase keys, as the SDK dumps a CallToolResult): the
# kernel validates it into the model, the fast path serialises it as it is (:mod:`.fastpath`).
ToolResult = dict[str, Any]


def tool_result_model(result: ToolResult) -> CallToolResult:
    """The wire result as the SDK's model (what the kernel's handlers return), validated."""
    return CallToolResult.model_validate(result, by_name=False)


def tool_result(
    content: list[dict[str, Any]], structured: dict[str, Any] | None = None, *, is_error: bool = False
) -> ToolResult:
    result: ToolResult = {"content": content}
    if structured is not None:
        result["structuredContent"] = structured
    result["isError"] = is_error
    return result


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _binary(kind: str, data: bytes, mime_type: str) -> dict[str, Any]:
    return {"type": kind, "data": _b64(data), "mimeType": mime_type}


def _wire_block(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return _text(block.text)
    if isinstance(block, ImageBlock):
        return _binary("image", block.data, block.mime_type)
    if isinstance(block, AudioBlock):
        return _binary("audio", block.data, block.mime_type)
    return _wire_content(block).model_dump(by_alias=True, mode="json", exclude_none=True)


def error_result(text: str, structured: dict[str, Any] | None = None) -> ToolResult:
    return tool_result([_text(text)], structured, is_error=True)


def upstream_error_result(operation: str, response: UpstreamResponse) -> ToolResult:
    try:
        body = response.json()
    except ValueError:
        body = response.body[:500].decode("utf-8", "replace")
    message = body.get("message") if isinstance(body, dict) else None
    text = f"The upstream of {operation} answered {response.status}"
    text += f": {message}" if isinstance(message, str) else "."
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        text += "\n" + "\n".join(f"- {key}: {value}" for key, value in body["errors"].items())
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        text += f"\nRetry after {retry_after} s."
    return error_result(text, {"status": response.status, "body": body})


def success_result(outcome: Outcome) -> ToolResult:
    if outcome.mapped:
        value = outcome.value
        if isinstance(value, ToolContent):
            structured = dict(value.structured) if value.structured is not None else None
            return tool_result([_wire_block(block) for block in value.blocks], structured)
    else:
        response = outcome.response
        media_type = media_type_of(response.content_type)
        if response.body and media_type.startswith("image/"):
            return tool_result([_binary("image", response.body, media_type)])
        if response.body and media_type.startswith("audio/"):
            return tool_result([_binary("audio", response.body, media_type)])
        try:
            value = response.document()
        except ValueError:
            return tool_result([_text(response.body.decode("utf-8", "replace"))])
    if value is None:
        return tool_result([])
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    structured = value if isinstance(value, dict) else None
    return tool_result([_text(text)], structured)
