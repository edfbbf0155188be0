"""Orchestrated exposures: ``steps`` (call and lookup) and ``mappings`` (spec §2, reference semantics).

A call step calls a consumed operation with the caller's arguments and its ``with`` (whose values may
read earlier steps' outputs: ``{{get-ship.imo_number}}``); its output is the decoded answer, projected
through the consumed operation's named ``outputParameters`` (array elements keep their fields and gain
the projected ones). A lookup step picks from an earlier step's array the elements whose ``match`` field
equals ``lookupValue`` (a JSONPath over the step outputs, a template or a literal); a list of values
gives a list of matches, one value the first match. ``mappings`` assemble the result (``route.from``
nests); without them the result is the last step's output.

Each step's call goes through the engine like any single call: argument validation, bound variables,
auth, timeouts, the circuit breaker and secret redaction apply per upstream call. The first failing
step ends the run (nothing after it is sent); the caller's error names it and the steps already done.
"""

from __future__ import annotations

import http
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from host import templates
from host.errors import CallError, InvalidArguments
from host.model import (
    Arguments,
    ConsumedOperation,
    JsonSchema,
    OperationCaller,
    UpstreamResponse,
)
from host.naftiko.context import Context, FileError
from host.naftiko.jsonpath import JsonPath, JsonPathError, compile_path
from host.naftiko.outputs import Mapper, output_mapper
from host.naftiko.requests import WithMapping, argument_refs

# `type: script` steps run on GraalVM in the reference; this host has no script runtime.
SCRIPT_TYPES = {"script"}


class StepFailed(CallError):
    """A step of an orchestration failed; ``status`` mirrors an upstream 4xx, else 502."""

    status, title, slug = 502, "Bad Gateway", "step-failed"

    def __init__(self, detail: str, *, status: int = 502, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail, extra=extra)
        self.status = status
        self.title = http.HTTPStatus(status).phrase


class Scope(Mapping[str, Any]):
    """What step templates see: ``step.field`` paths into step outputs, else the caller's arguments.

    Iterating gives the caller's arguments only: they, not the step outputs, pass on to each call.
    """

    def __init__(self, arguments: Arguments, outputs: Mapping[str, Any]) -> None:
        self.arguments = arguments
        self.outputs = outputs

    def __getitem__(self, name: str) -> Any:
        head, _, rest = name.partition(".")
        if head not in self.outputs:
            return self.arguments[name]
        # A step's name always means its output: a caller's argument can neither replace a value the
        # file reads from an upstream answer nor fill one the answer lacks (that is None, not KeyError,
        # so no template falls back to a shorter name).
        node = self.outputs[head]
        for part in rest.split(".") if rest else []:
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self.arguments)

    def __len__(self) -> int:
        return len(self.arguments)


@dataclass(frozen=True)
class CallStep:
    name: str
    call: str
    with_: WithMapping
    with_keys: frozenset[str]
    projection: tuple[tuple[str, Mapper], ...]  # the consumed operation's named outputs

    def arguments(self, scope: Scope) -> dict[str, Any]:
        """The caller's arguments by name, then what ``with`` sets (or unsets: a ref to nothing)."""
        mapped = self.with_(scope)
        result = {k: v for k, v in scope.arguments.items() if k not in self.with_keys}
        result.update({k: mapped[k] for k in self.with_keys if k in mapped})
        return result

    def output(self, document: Any) -> Any:
        if not self.projection:
            return document
        if isinstance(document, list):
            return [
                {**element, **{n: m(element) for n, m in self.projection}}
                if isinstance(element, dict)
                else element
                for element in document
            ]
        return {name: mapper(document) for name, mapper in self.projection}


@dataclass(frozen=True)
class LookupStep:
    name: str
    index: str
    match: str
    value: Any  # a JsonPath, a template string, or a literal
    fields: tuple[str, ...]

    def output(self, scope: Scope) -> Any:
        wanted = self._wanted(scope)
        source = scope.outputs.get(self.index)
        items = source if isinstance(source, list) else [source] if isinstance(source, dict) else []
        by_key: dict[str, Any] = {}
        for item in items:
            if isinstance(item, dict) and item.get(self.match) is not None:
                by_key.setdefault(templates.as_text(item[self.match]), item)
        if isinstance(wanted, list):
            found = [by_key.get(templates.as_text(value)) for value in wanted if value is not None]
            return [self._project(item) for item in found if item is not None]
        item = by_key.get(templates.as_text(wanted)) if wanted is not None else None
        return None if item is None else self._project(item)

    def _wanted(self, scope: Scope) -> Any:
        return _resolve(self.value, scope)

    def _project(self, item: dict[str, Any]) -> Any:
        return {field: item.get(field) for field in self.fields} if self.fields else item


Step = CallStep | LookupStep


@dataclass(frozen=True)
class Orchestration:
    """The steps of one exposure (or aggregate function), run as one operation call."""

    label: str
    steps: tuple[Step, ...]
    mappings: tuple[tuple[str, JsonPath | str], ...]

    async def __call__(self, call: OperationCaller, arguments: Arguments) -> UpstreamResponse:
        outputs: dict[str, Any] = {}
        done: list[str] = []
        last: UpstreamResponse | None = None
        mocked = False
        for step in self.steps:
            scope = Scope(arguments, outputs)
            if isinstance(step, LookupStep):
                outputs[step.name] = step.output(scope)
                last = None
            else:
                last = await self._call(step, scope, call, done)
                mocked = mocked or last.mocked
                outputs[step.name] = step.output(self._document(step, last, done))
            done.append(step.name)
        if self.mappings:
            return _answer(200, self._assemble(Scope(arguments, outputs)), mocked)
        result = outputs[self.steps[-1].name]
        return _answer(last.status if last is not None else 200, result, mocked)

    async def _call(
        self, step: CallStep, scope: Scope, call: OperationCaller, done: list[str]
    ) -> UpstreamResponse:
        sent = any(isinstance(s, CallStep) for s in self.steps if s.name in done)
        where = f"step {step.name!r} ({step.call}) of {self.label}"
        context = {"failed_step": step.name, "completed_steps": list(done)}
        try:
            response = await call(step.call, step.arguments(scope))
        except InvalidArguments as exc:
            if not sent:  # nothing went upstream yet: the caller's arguments are at fault
                exc.detail = f"{where}: {exc.detail}"
                exc.extra.update(context)
                raise
            raise StepFailed(
                f"{where} could not be built after earlier steps were sent: {exc.detail}",
                extra={**context, "errors": exc.errors},
            ) from None
        except CallError as exc:
            exc.detail = f"{where} failed: {exc.detail}{_after(done)}"
            exc.args = (exc.detail,)
            exc.extra.update(context)
            raise
        if response.status >= 400:
            raise StepFailed(
                f"{where} answered {response.status}{_message(response)}{_after(done)}",
                status=response.status if response.status < 500 else 502,
                extra={**context, "upstream_status": response.status, "body": _body(response)},
            )
        return response

    def _document(self, step: CallStep, response: UpstreamResponse, done: list[str]) -> Any:
        try:
            return response.document()
        except ValueError as exc:
            raise StepFailed(
                f"step {step.name!r} ({step.call}) of {self.label}: the answer is not valid "
                f"{response.format}: {exc}{_after(done)}",
                extra={"failed_step": step.name, "completed_steps": list(done)},
            ) from None

    def _assemble(self, scope: Scope) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for target, source in self.mappings:
            value = _resolve(source, scope)
            node = result
            *parents, leaf = target.split(".")
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):  # a scalar mapped here before: the nested one wins
                    child = node[part] = {}
                node = child
            node[leaf] = value
        return result


def _resolve(source: Any, scope: Scope) -> Any:
    """A lookup value's or a mapping's value: a JSONPath over the arguments and step outputs, a
    template, or a literal."""
    if isinstance(source, JsonPath):
        return source.find({**scope.arguments, **scope.outputs})
    if isinstance(source, str):
        return templates.value_of(source, scope)
    return source


def _answer(status: int, document: Any, mocked: bool) -> UpstreamResponse:
    return UpstreamResponse(
        status, json.dumps(document).encode(), "application/json", mocked=mocked, decoded=document
    )


def _after(done: list[str]) -> str:
    if not done:
        return "; no step had run before it"
    return f"; steps already done: {', '.join(done)}; no later step ran"


def _message(response: UpstreamResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message}" if isinstance(message, str) else ""


def _body(response: UpstreamResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.body[:500].decode("utf-8", "replace")


def compile_steps(
    ctx: Context, raw_steps: list[Any], mappings: list[Any], namespace: str, label: str, path: str
) -> str | None:
    """An orchestration as a synthetic operation; its reference, or ``None`` (warned) when it cannot run."""
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        step = _step(ctx, raw, namespace, [s.name for s in steps], f"{path}.steps[{index}]")
        if step is None:
            return None
        steps.append(step)
    if not steps:
        ctx.warn(f"{path}.steps", "no steps; disabled")
        return None
    orchestration = Orchestration(label, tuple(steps), _mappings(ctx, mappings, f"{path}.mappings"))
    return _register(ctx, namespace, orchestration)


def _step(ctx: Context, raw: Any, namespace: str, earlier: list[str], path: str) -> Step | None:
    if not isinstance(raw, dict) or not raw.get("name"):
        ctx.warn(path, "a step needs a name; orchestration disabled")
        return None
    name, kind = str(raw["name"]), str(raw.get("type") or "call")
    if kind in SCRIPT_TYPES:
        language = raw.get("language") or "script"
        raise FileError(
            f"{path}: step {name!r} is a {language} script step; script steps (GraalVM languages) "
            "are not supported by this host"
        )
    if name in earlier:
        ctx.warn(f"{path}.name", f"step name {name!r} is used twice; orchestration disabled")
        return None
    if kind == "lookup":
        return _lookup(ctx, raw, name, earlier, path)
    if kind != "call":
        ctx.warn(f"{path}.type", f"step type {kind!r} is unknown; orchestration disabled")
        return None
    call = str(raw.get("call") or "")
    if call not in ctx.ops:
        ctx.warn(f"{path}.call", f"{call!r} names no consumed operation; orchestration disabled")
        return None
    with_: dict[str, Any] = raw["with"] if isinstance(raw.get("with"), dict) else {}
    named = [o for o in ctx.ops[call].spec.outputParameters if o.name]
    projection = tuple(
        (str(o.name), mapper)
        for o in named
        if (mapper := output_mapper([o], f"{ctx.ops[call].path}.outputParameters")) is not None
    )
    return CallStep(name, call, WithMapping(with_, namespace), frozenset(with_), projection)


def _lookup(ctx: Context, raw: dict[str, Any], name: str, earlier: list[str], path: str) -> Step | None:
    index, match = raw.get("index"), raw.get("match")
    if index not in earlier:
        ctx.warn(f"{path}.index", f"lookup step references no earlier step {index!r}; orchestration disabled")
        return None
    if not match:
        ctx.warn(f"{path}.match", "lookup step without match; orchestration disabled")
        return None
    value = _source(raw.get("lookupValue"), f"{path}.lookupValue")
    fields = tuple(
        str(f.get("name") if isinstance(f, dict) else f) for f in raw.get("outputParameters") or []
    )
    return LookupStep(name, str(index), str(match), value, fields)


def _mappings(ctx: Context, raw: list[Any], path: str) -> tuple[tuple[str, JsonPath | str], ...]:
    compiled: list[tuple[str, JsonPath | str]] = []
    for index, mapping in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(mapping, dict) or not mapping.get("targetName"):
            ctx.warn(where, "a mapping needs targetName and value; ignored")
            continue
        value = mapping.get("value")
        source = _source(value, f"{where}.value")
        if not isinstance(source, JsonPath):
            source = "" if value is None else str(value)
        compiled.append((str(mapping["targetName"]), source))
    return tuple(compiled)


def _source(value: Any, path: str) -> Any:
    """``value`` as written, or compiled when it is a JSONPath (``$...``); an invalid one fails the file."""
    if not (isinstance(value, str) and value.strip().startswith("$")):
        return value
    try:
        return compile_path(value)
    except JsonPathError as exc:
        raise FileError(f"{path}: invalid JSONPath: {exc}") from None


def _register(ctx: Context, namespace: str, orchestration: Orchestration) -> str:
    """Add the orchestration as a static operation of the adapter's ``<namespace>-steps`` API."""
    steps_ns = f"{namespace}-steps"
    name = f"steps-{len(ctx.out.apis)}-{secrets.token_hex(3)}"
    operation = ConsumedOperation(
        name=name,
        method="POST",
        path="/",
        description=orchestration.label,
        static=True,
        run=orchestration,
    )
    return ctx.add_static(steps_ns, operation)


def steps_schema(raw_steps: list[Any], namespace: str) -> JsonSchema:
    """Inputs of an orchestration that declares none: the caller arguments its steps' templates read."""
    step_names = {str(s.get("name")) for s in raw_steps if isinstance(s, dict)}
    properties: dict[str, Any] = {}
    for step in raw_steps:
        if not isinstance(step, dict):
            continue
        values = [*(step.get("with") or {}).values(), step.get("lookupValue")]
        for value in values:
            for name in argument_refs(value, namespace):
                if name.split(".", 1)[0] not in step_names:
                    properties.setdefault(name, {"description": f"passed to step {step.get('name')}"})
    return {"type": "object", "properties": properties}


__all__ = ["Orchestration", "StepFailed", "compile_steps", "steps_schema"]
