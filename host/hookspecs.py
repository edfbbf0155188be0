"""Every hook a plugin can implement.

Plugins are found through the ``host.plugins`` entry-point group and implement
hooks with :data:`host.hookimpl`. Registration hooks take a ``register``
callback (as llm's hooks do) so that the host stamps every contributed item
with the plugin that contributed it and can name both plugins when two
contribute the same thing.

An implementation may accept any subset of a hook's parameters (pluggy's
rule), so new parameters can be added to a hook without breaking plugins.

Order: for each plugin in turn, the host calls
:func:`host_register_consumes`, :func:`host_register_rest_resources`,
:func:`host_register_mcp_tools`, :func:`host_register_mcp_resources`,
:func:`host_register_mcp_prompts` and :func:`host_register_capability_files`.
A plugin whose hooks raise is skipped whole: nothing it registered is kept.
Capability files (from plugins and from ``[[capabilities]]`` in host.toml)
are loaded after every plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy

from host.model import ConsumedApi, McpPrompt, McpResource, McpTool, RestResource

PROJECT = "host"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def host_register_consumes(register: Callable[[ConsumedApi], None]) -> None:
    """Contribute upstream APIs and their operations.

    :param register: call ``register(ConsumedApi(...))`` once per upstream.
        The API's ``namespace`` keys ``[consumes.<namespace>]`` in host.toml
        (``base_uri``, ``timeout``, ``mock``) and must be unique across plugins.

    .. versionadded:: 0.1
    """


@hookspec
def host_register_rest_resources(register: Callable[[RestResource], None]) -> None:
    """Contribute REST resources served on the REST port.

    :param register: call ``register(RestResource(...))`` once per method and
        path. ``operation`` names a consumed operation as ``"namespace.name"``,
        from this plugin or another. A method and path already registered by
        another plugin stops start-up with an error naming both plugins.

    .. versionadded:: 0.1
    """


@hookspec
def host_register_mcp_tools(register: Callable[[McpTool], None]) -> None:
    """Contribute MCP tools served on the MCP port.

    :param register: call ``register(McpTool(...))`` once per tool. Tool names
        are unique across plugins; a clash stops start-up naming both plugins.

    .. versionadded:: 0.1
    """


@hookspec
def host_register_mcp_resources(register: Callable[[McpResource], None]) -> None:
    """Contribute MCP resources (fixed text, or the result of an operation).

    :param register: call ``register(McpResource(...))`` once per resource URI
        (or URI template, such as ``docs://{id}``). URIs are unique across plugins.

    .. versionadded:: 0.1
    """


@hookspec
def host_register_mcp_prompts(register: Callable[[McpPrompt], None]) -> None:
    """Contribute MCP prompts.

    :param register: call ``register(McpPrompt(...))`` once per prompt name.

    .. versionadded:: 0.1
    """


@hookspec
def host_register_capability_files(register: Callable[[Path], None]) -> None:
    """Contribute Naftiko capability files (YAML) to be served as they are.

    :param register: call ``register(path)`` with the path of each file, for
        example one shipped as package data. The file's consumed namespaces can
        be configured with ``[consumes.<namespace>]`` like any other.

    .. versionadded:: 0.1
    """
