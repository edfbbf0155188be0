"""Compiling ``type: skill`` exposes: each skill's tools must name tools of the same capability."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from host.naftiko.context import Context, FileError, confined_path
from host.naftiko.skills import FRONT_MATTER, Skill, SkillTool, safe_instruction

_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")  # the schema's IdentifierKebab, at most 64 (Agent Skills)


def compile_skills(ctx: Context, adapter: dict[str, Any], namespace: str, path: str) -> None:
    """One skill adapter: its skills are appended to ``ctx.out.skills``; a bad reference is a load error."""
    for index, raw in enumerate(ctx.list_of(adapter, "skills", f"{path}.skills")):
        where = f"{path}.skills[{index}]"
        if not isinstance(raw, dict) or not raw.get("name") or not isinstance(raw.get("description"), str):
            raise FileError(f"{where}: a skill needs a name and a description")
        name = str(raw["name"])
        if not _NAME.fullmatch(name):
            # The name is a path segment of its routes and the archive's folder: nothing else may pass.
            raise FileError(f"{where}.name: skill {name!r}: 1 to 64 letters, digits and hyphens")
        location = raw.get("location")
        folder = _folder(ctx, str(location), f"{where}.location") if location else None
        tools = tuple(
            _tool(ctx, name, tool, f"{where}.tools[{number}]", has_location=bool(location))
            for number, tool in enumerate(ctx.list_of(raw, "tools", f"{where}.tools"))
        )
        ctx.declared += 1
        ctx.out.skills.append(
            Skill(
                name=name,
                description=str(raw["description"]),
                namespace=namespace,
                origin=str(ctx.file),
                front_matter={key: raw[key] for key in FRONT_MATTER if raw.get(key) is not None},
                location=folder,
                tools=tools,
                caller_auth=ctx.caller_auth,
            )
        )


def _folder(ctx: Context, location: str, path: str) -> Path | None:
    """The skill's folder, confined as static resources are; outside, the skill is served without files."""
    try:
        return confined_path(ctx, location, path)
    except FileError as exc:
        # Its name, description and tools are still worth serving; no file outside is ever read.
        ctx.warn(path, f"{exc}; the skill is served without its files".removeprefix(f"{path}: "))
        return None


def _tool(ctx: Context, skill: str, raw: Any, path: str, *, has_location: bool) -> SkillTool:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise FileError(f"{path}: skill {skill!r}: a tool needs a name")
    name, description = str(raw["name"]), str(raw.get("description") or raw["name"])
    source, instruction, call = raw.get("from"), raw.get("instruction"), raw.get("call")
    if isinstance(source, dict):
        namespace, action = str(source.get("sourceNamespace")), str(source.get("action"))
        mode = _sibling_kind(ctx, namespace, action)
        if mode is None:
            raise FileError(
                f"{path}.from: skill {skill!r}: tool {name!r} names {namespace}.{action}, which is no "
                "operation of a REST adapter nor tool of an MCP adapter of this capability"
            )
        return SkillTool(name, description, target=(namespace, action, mode))
    if isinstance(call, str):  # the catalogue's dialect: a consumed operation, like an MCP tool's call
        if call not in ctx.ops:
            raise FileError(f"{path}.call: skill {skill!r}: tool {name!r} calls {call!r}: no such operation")
        namespace, _, action = call.partition(".")
        return SkillTool(name, description, target=(namespace, action, "call"))
    if isinstance(instruction, str):
        if not has_location:
            raise FileError(f"{path}.instruction: skill {skill!r}: an instruction needs the skill's location")
        problem = safe_instruction(instruction)
        if problem is not None:
            raise FileError(f"{path}.instruction: skill {skill!r}: {problem}")
        return SkillTool(name, description, instruction=instruction)
    raise FileError(f"{path}: skill {skill!r}: tool {name!r} needs 'from' or 'instruction'")


def _sibling_kind(ctx: Context, namespace: str, action: str) -> str | None:
    """``rest`` or ``mcp`` when an exposes adapter of this file declares ``action``; else ``None``."""
    for adapter in ctx.exposes:
        if not isinstance(adapter, dict) or adapter.get("namespace") != namespace:
            continue
        kind = adapter.get("type")
        if kind == "rest":
            names = {
                op.get("name")
                for resource in adapter.get("resources") or []
                if isinstance(resource, dict)
                for op in resource.get("operations") or []
                if isinstance(op, dict)
            }
        elif kind == "mcp":
            names = {tool.get("name") for tool in adapter.get("tools") or [] if isinstance(tool, dict)}
        else:
            continue
        if action in names:
            return str(kind)
    return None
