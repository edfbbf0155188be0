"""Turning a capability document into the host's model: consumed APIs and exposures.

Semantics follow ``naftiko-spec.md`` §4, correct where the reference engine is
not: ``{x}`` placeholders are filled, ``in: body`` parameters are sent,
``rest.x``/``tools.x`` mean the caller's argument ``x``, an ``object`` output
with a ``mapping`` returns the mapped document, binds reach every template,
declared inputs are enforced. The parts follow the file: :mod:`.consumes`,
:mod:`.exposes`, :mod:`.schemas`, :mod:`.outputs` and :mod:`.requests`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from host.model import SKILLS_PATH, route_shape
from host.naftiko.aggregates import collect_functions
from host.naftiko.consumes import compile_binds, compile_consumes
from host.naftiko.context import Compiled, Context, FileError
from host.naftiko.exposes import compile_exposes
from host.naftiko.requests import NaftikoRequest, WithMapping, render_json


class Compiler:
    def __init__(
        self,
        raw: dict[str, Any],
        file: Path,
        *,
        strict: bool,
        warn: Callable[[str, str], None],
        note: Callable[[str, str], None],
        resource_dirs: Sequence[Path] = (),
    ) -> None:
        self.raw = raw
        self.ctx = Context(file=file, strict=strict, warn=warn, note=note, resource_dirs=tuple(resource_dirs))

    def compile(self) -> Compiled:
        ctx = self.ctx
        capability = self.raw.get("capability")
        if capability is None and self.raw.get("consumes") is None:
            raise FileError("capability: missing (a capability file needs 'capability', or root 'consumes')")
        if capability is not None and not isinstance(capability, dict):
            raise FileError("capability: must be a mapping")
        capability = capability or {}
        compile_binds(
            ctx,
            [*ctx.list_of(self.raw, "binds", "binds"), *ctx.list_of(capability, "binds", "capability.binds")],
        )
        for index, item in enumerate(ctx.list_of(capability, "consumes", "capability.consumes")):
            compile_consumes(ctx, item, f"capability.consumes[{index}]")
        for index, item in enumerate(ctx.list_of(self.raw, "consumes", "consumes")):
            compile_consumes(ctx, item, f"consumes[{index}]")
        collect_functions(ctx, ctx.list_of(capability, "aggregates", "capability.aggregates"))
        exposes = ctx.exposes = ctx.list_of(capability, "exposes", "capability.exposes")
        for index, adapter in enumerate(exposes):
            compile_exposes(ctx, adapter, f"capability.exposes[{index}]")
        self._drop_skill_routes()
        self._check_served(exposes)
        return ctx.out

    def _drop_skill_routes(self) -> None:
        """A file that serves skills cannot also serve REST resources under /skills (the skill routes)."""
        out, ctx = self.ctx.out, self.ctx
        if not out.skills:
            return
        for resource in [r for r in out.rest if r.path.split("/")[:2] == ["", SKILLS_PATH[1:]]]:
            key = ("rest", resource.method, route_shape(resource.path))
            where = ctx.claimed.get(key, "capability.exposes")
            ctx.warn(
                where, f"{resource.path} is under the skill routes ({SKILLS_PATH}): not served over REST"
            )
            out.rest.remove(resource)

    def _check_served(self, exposes: list[Any]) -> None:
        out = self.ctx.out
        served = out.rest or out.tools or out.stdio_tools or out.resources or out.prompts or out.skills
        if not exposes:
            self.ctx.warn(
                "capability.exposes", "no exposes: the file only consumes (nothing served on its own)"
            )
        elif not self.ctx.declared:
            self.ctx.warn(
                "capability.exposes", "the adapters declare no operations, tools, resources or prompts"
            )
        elif not served:
            raise FileError(
                "capability.exposes: nothing can be served (every exposure was disabled; see warnings)"
            )


__all__ = ["Compiled", "Compiler", "FileError", "NaftikoRequest", "WithMapping", "render_json"]
