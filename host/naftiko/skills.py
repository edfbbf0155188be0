"""Agent Skills of a capability file (``type: skill`` exposes): the compiled model and its files.

A skill's files are read only inside its ``location`` folder: every request path is checked before it
is resolved (no ``..``, no absolute path, no backslash or NUL) and again after (symlinks followed, the
result must stay inside the folder), so no request can read what the folder does not hold.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from host.model import CallerAuth

# Bounds on what one skill folder may serve: a folder is listed and zipped in memory.
MAX_FILES = 500
MAX_TOTAL_BYTES = 32 * 1024 * 1024
SKILL_FILE = "SKILL.md"


class SkillFileError(Exception):
    """A request for a skill file that is refused; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class SkillTool:
    name: str
    description: str
    # derived: (target namespace, action, mode "rest" | "mcp" | "call"); instruction: a file in the folder
    target: tuple[str, str, str] | None = None
    instruction: str | None = None

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.target is not None:
            namespace, action, mode = self.target
            document["type"] = "derived"
            document["invocationRef"] = {"targetNamespace": namespace, "action": action, "mode": mode}
        else:
            document["type"] = "instruction"
            document["instruction"] = self.instruction
        return document


# The Agent Skills front-matter fields a skill may declare, besides name and description.
FRONT_MATTER = (
    "license",
    "compatibility",
    "metadata",
    "allowed-tools",
    "argument-hint",
    "user-invocable",
    "disable-model-invocation",
)


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    namespace: str  # the skill adapter's
    origin: str  # the capability file
    front_matter: dict[str, Any] = field(default_factory=dict)  # the optional fields the file declares
    location: Path | None = None  # resolved folder (may not exist: then there are no files)
    tools: tuple[SkillTool, ...] = ()
    caller_auth: CallerAuth | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "namespace": self.namespace,
            "tools": [tool.name for tool in self.tools],
        }

    def detail(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "namespace": self.namespace,
            **self.front_matter,
            "tools": [tool.as_json() for tool in self.tools],
        }

    # --- files ----------------------------------------------------------------------------------------

    def files(self) -> list[dict[str, Any]]:
        """Every regular file inside the folder (symlinks that lead out are left out), sorted."""
        return [
            {"name": PurePosixPath(rel).name, "path": rel, "size": path.stat().st_size}
            for rel, path in self._walk()
        ]

    def read(self, relative: str) -> tuple[bytes, str]:
        """The bytes of one file and its path inside the folder. Raises :class:`SkillFileError`."""
        root = self._root()
        parts = _safe_parts(relative)
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root):
            raise SkillFileError(403, f"{relative!r} leads outside the skill's folder")
        if not target.is_file():
            raise SkillFileError(404, f"skill {self.name!r} has no file {relative!r}")
        if target.stat().st_size > MAX_TOTAL_BYTES:
            raise SkillFileError(413, f"{relative!r} is larger than {MAX_TOTAL_BYTES} bytes")
        return target.read_bytes(), "/".join(parts)

    def archive(self) -> bytes:
        """A zip of the skill as the Agent Skills format has it: ``NAME/SKILL.md`` and its files."""
        files = dict(self._walk()) if self.location is not None and self.location.is_dir() else {}
        own = files.pop(SKILL_FILE, None)
        body = _body(own.read_text(encoding="utf-8", errors="replace")) if own else self._generated_body()
        buffer = io.BytesIO()
        total = 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{self.name}/{SKILL_FILE}", self.skill_md(body))
            for rel, path in files.items():
                total += path.stat().st_size
                if total > MAX_TOTAL_BYTES:
                    raise SkillFileError(413, f"skill {self.name!r} holds more than {MAX_TOTAL_BYTES} bytes")
                archive.write(path, f"{self.name}/{rel}")
        return buffer.getvalue()

    def skill_md(self, body: str) -> str:
        """SKILL.md: the declared front matter (name and description first), then the instructions."""
        front = {"name": self.name, "description": self.description, **self.front_matter}
        text = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1_000_000)
        return f"---\n{text}---\n\n{body.strip()}\n"

    def _generated_body(self) -> str:
        lines = [f"# {self.name}", "", self.description, ""]
        if self.tools:
            lines += ["## Tools", ""]
        for tool in self.tools:
            if tool.target is not None:
                namespace, action, mode = tool.target
                lines.append(f"- `{tool.name}`: {tool.description} (`{action}` of `{namespace}`, {mode})")
            else:
                lines.append(f"- `{tool.name}`: {tool.description} (see {tool.instruction})")
        return "\n".join(lines)

    def _root(self) -> Path:
        if self.location is None:
            raise SkillFileError(404, f"skill {self.name!r} declares no location: it has no files")
        root = self.location.resolve()
        if not root.is_dir():
            raise SkillFileError(404, f"skill {self.name!r}: its location holds no folder")
        return root

    def _walk(self) -> list[tuple[str, Path]]:
        root = self._root()
        found: list[tuple[str, Path]] = []
        for path in sorted(root.rglob("*")):
            if len(found) >= MAX_FILES:
                raise SkillFileError(413, f"skill {self.name!r} holds more than {MAX_FILES} files")
            resolved = path.resolve()
            if path.is_file() and resolved.is_relative_to(root):
                found.append((path.relative_to(root).as_posix(), resolved))
        return found


def _safe_parts(relative: str) -> list[str]:
    """The segments of a requested path, refused before any file is touched when they could escape."""
    if not relative or "\x00" in relative or "\\" in relative:
        raise SkillFileError(400, "a skill file path must be a non-empty relative path with / separators")
    if relative.startswith("/") or PurePosixPath(relative).is_absolute() or ":" in relative.split("/")[0]:
        raise SkillFileError(400, f"{relative!r} is absolute; skill file paths are relative to the skill")
    parts = [part for part in relative.split("/") if part]
    if any(part in {".", ".."} for part in parts):
        raise SkillFileError(400, f"{relative!r} has a dot segment; it must stay inside the skill's folder")
    return parts


def _body(text: str) -> str:
    """A SKILL.md without its front matter (the file's declarations replace it)."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip("\n")
    return text


def safe_instruction(relative: str) -> str | None:
    """Why an instruction path cannot be a file inside the skill's folder, or ``None``."""
    try:
        _safe_parts(relative)
    except SkillFileError as exc:
        return exc.detail
    return None
