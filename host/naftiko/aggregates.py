"""``capability.aggregates``: reusable functions that tools and REST operations use by ``ref``.

A function has the modes of an exposed operation (``call`` + ``with``, ``steps`` + ``mappings``, or a
static mock output). An exposure with ``ref: <aggregate-namespace>.<function>`` runs the function's logic
and inherits what it leaves out: name, description, input parameters. MCP hints are derived from the
function's ``semantics`` (``safe`` gives readOnly, and not destructive; ``idempotent`` gives idempotent)
and the tool's own ``hints`` override them key by key (reference: ``AggregateRefResolver``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from host.naftiko.context import Context, FileError

# What a function defines and an exposure using it by ref cannot replace.
LOGIC = ("call", "with", "steps", "mappings", "outputParameters")
# What the exposure may set itself, and otherwise inherits from the function.
INHERITED = ("name", "description", "label", "inputParameters")


@dataclass(frozen=True)
class Function:
    namespace: str  # the aggregate's: `<namespace>.x` in the function's `with` means argument x
    raw: dict[str, Any]


def collect_functions(ctx: Context, aggregates: list[Any]) -> None:
    """Index every function by ``<aggregate-namespace>.<name>``; a duplicate is a load error."""
    for index, aggregate in enumerate(aggregates):
        path = f"capability.aggregates[{index}]"
        if not isinstance(aggregate, dict) or not aggregate.get("namespace"):
            ctx.warn(path, "an aggregate needs a namespace; its functions are ignored")
            continue
        namespace = str(aggregate["namespace"])
        for f_index, function in enumerate(ctx.list_of(aggregate, "functions", f"{path}.functions")):
            if not isinstance(function, dict) or not function.get("name"):
                ctx.warn(f"{path}.functions[{f_index}]", "a function needs a name; ignored")
                continue
            key = f"{namespace}.{function['name']}"
            if key in ctx.functions:
                raise FileError(f"{path}.functions[{f_index}]: function {key!r} is defined twice")
            ctx.functions[key] = Function(namespace, function)


def resolve_ref(ctx: Context, raw: Any, namespace: str, path: str) -> tuple[Any, str] | None:
    """``raw`` with its function's logic when it has a ``ref``, and the namespace its ``with`` reads.

    ``None`` (warned) when the ref names no function: the exposure is disabled.
    """
    if not isinstance(raw, dict) or not raw.get("ref"):
        return raw, namespace
    ref = str(raw["ref"])
    function = ctx.functions.get(ref)
    if function is None:
        known = ", ".join(sorted(ctx.functions)) or "none"
        ctx.warn(f"{path}.ref", f"{ref!r} names no aggregate function (known: {known}); disabled")
        return None
    own_logic = [key for key in LOGIC if key in raw]
    if own_logic:
        ctx.warn(f"{path}.ref", f"{', '.join(own_logic)} ignored: the function {ref!r} defines the logic")
    merged = {key: value for key, value in raw.items() if key not in LOGIC and key != "ref"}
    for key in LOGIC:
        if key in function.raw:
            merged[key] = function.raw[key]
    for key in INHERITED:
        if not merged.get(key) and function.raw.get(key):
            merged[key] = function.raw[key]
    hints = derive_hints(function.raw.get("semantics"))
    explicit: dict[str, Any] = raw["hints"] if isinstance(raw.get("hints"), dict) else {}
    hints.update({key: value for key, value in explicit.items() if value is not None})
    if hints:
        merged["hints"] = hints
    return merged, function.namespace


def derive_hints(semantics: Any) -> dict[str, Any]:
    """MCP hints from a function's semantics; ``cacheable`` has no hint, openWorld is the tool's to say."""
    if not isinstance(semantics, dict):
        return {}
    hints: dict[str, Any] = {}
    safe = semantics.get("safe")
    if isinstance(safe, bool):
        hints["readOnly"] = safe
        if safe:
            hints["destructive"] = False
    if isinstance(semantics.get("idempotent"), bool):
        hints["idempotent"] = semantics["idempotent"]
    return hints
