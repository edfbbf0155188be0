"""The plugin loader in process: provenance, clashes, isolation."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest

from host import ConsumedApi, ConsumedOperation, McpTool, RestResource, hookimpl
from host.errors import StartupError
from host.plugins import load_catalog


def plugin(
    namespace: str = "ns",
    path: str = "/v1/x",
    tool: str = "tool",
    operation: str | None = None,
    extra: Callable[..., None] | None = None,
) -> types.SimpleNamespace:
    op_ref = operation or f"{namespace}.op"

    class Plugin:
        @hookimpl
        def host_register_consumes(self, register: Callable[[ConsumedApi], None]) -> None:
            register(
                ConsumedApi(
                    namespace=namespace,
                    base_uri="http://127.0.0.1:1",
                    operations=(ConsumedOperation(name="op", method="GET", path="/"),),
                )
            )

        @hookimpl
        def host_register_rest_resources(self, register: Callable[[RestResource], None]) -> None:
            register(RestResource(method="GET", path=path, operation=op_ref))

        @hookimpl
        def host_register_mcp_tools(self, register: Callable[[McpTool], None]) -> None:
            register(McpTool(name=tool, description="d", operation=op_ref))

    return Plugin()  # type: ignore[return-value]


def test_contributions_carry_their_plugin() -> None:
    catalog = load_catalog(extra_plugins=[("one", plugin())], discover=False, environ={})
    assert catalog.rest[("GET", "/v1/x")].plugin == "one"
    assert catalog.tools["tool"].plugin == "one"
    [info] = catalog.plugins
    assert info.rest == ["GET /v1/x"] and info.mcp_tools == ["tool"] and info.consumes == ["ns"]


@pytest.mark.parametrize(
    ("second", "what"),
    [
        (plugin(namespace="other", tool="t2"), "REST resource GET /v1/x"),
        (plugin(namespace="other", tool="t2", path="/v1/x"), "REST resource GET /v1/x"),
        (plugin(namespace="other", path="/v1/y"), "MCP tool 'tool'"),
        (plugin(path="/v1/y", tool="t2"), "consumed namespace 'ns'"),
    ],
)
def test_a_clash_names_both_plugins(second: object, what: str) -> None:
    with pytest.raises(StartupError) as info:
        load_catalog(extra_plugins=[("first", plugin()), ("second", second)], discover=False, environ={})
    message = str(info.value)
    assert what in message and "'first'" in message and "'second'" in message


def test_a_plugin_that_raises_is_skipped_whole() -> None:
    class Broken:
        @hookimpl
        def host_register_consumes(self, register: Callable[[ConsumedApi], None]) -> None:
            register(ConsumedApi(namespace="half", base_uri="http://x", operations=()))
            raise RuntimeError("boom")

    catalog = load_catalog(
        extra_plugins=[("broken", Broken()), ("good", plugin())], discover=False, environ={}
    )
    assert "half" not in catalog.apis  # nothing it registered before failing is kept
    assert [f.name for f in catalog.failures] == ["broken"]
    assert "boom" in str(catalog.failures[0].error)
    assert "ns" in catalog.apis

    with pytest.raises(StartupError, match="broken"):
        load_catalog(extra_plugins=[("broken", Broken())], discover=False, environ={}, strict=True)


def test_a_misspelt_hook_is_a_load_failure() -> None:
    mod = types.ModuleType("typo_plugin")

    @hookimpl
    def host_register_tools(register: object) -> None:  # not a hook
        pass

    mod.host_register_tools = host_register_tools  # type: ignore[attr-defined]
    catalog = load_catalog(extra_plugins=[("typo", mod)], discover=False, environ={})
    assert "host_register_tools" in str(catalog.failures[0].error)


def test_wrong_item_type_is_a_load_failure() -> None:
    class Wrong:
        @hookimpl
        def host_register_mcp_tools(self, register: Callable[[object], None]) -> None:
            register({"name": "x"})

    catalog = load_catalog(extra_plugins=[("wrong", Wrong())], discover=False, environ={})
    assert "expects a McpTool" in str(catalog.failures[0].error)


def test_an_exposure_of_a_missing_operation_names_the_plugin() -> None:
    with pytest.raises(StartupError, match=r"plugin 'one'.*'nowhere\.op'"):
        load_catalog(extra_plugins=[("one", plugin(operation="nowhere.op"))], discover=False, environ={})


def test_environment_selection() -> None:
    plugins = [("a", plugin()), ("b", plugin(namespace="b", path="/b", tool="b"))]
    only_b = load_catalog(extra_plugins=plugins, discover=False, environ={"HOST_LOAD_PLUGINS": "b"})
    assert [p.name for p in only_b.plugins] == ["b"]
    none = load_catalog(extra_plugins=plugins, discover=False, environ={"HOST_LOAD_PLUGINS": ""})
    assert none.plugins == []
    not_a = load_catalog(extra_plugins=plugins, discover=False, environ={"HOST_DISABLE_PLUGINS": "a"})
    assert [p.name for p in not_a.plugins] == ["b"]
    configured = load_catalog(extra_plugins=plugins, discover=False, environ={}, only=["a"])
    assert [p.name for p in configured.plugins] == ["a"]
