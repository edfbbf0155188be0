"""Naftiko capability files as the host's built-in plugin.

As datasette does with its default plugins, file support takes no private path into the catalog:
each file to serve (a ``[[capabilities]]`` entry of host.toml, or a file a plugin registered with
``host_register_capability_files``) is loaded into a :class:`CapabilityFile`, which is registered
with the plugin manager, and whose hooks register what the file compiles to, exactly as an installed
plugin's hooks do. ``host plugins`` lists it as the built-in plugin :data:`NAME`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from host.hookspecs import hookimpl
from host.model import ConsumedApi, McpPrompt, McpResource, McpTool, RestResource
from host.naftiko import FileReport, load_capability

NAME = "naftiko"


class CapabilityFile:
    """One loaded capability file, contributing its items through the registration hooks."""

    def __init__(self, report: FileReport, *, stdio: bool = False) -> None:
        self.report = report
        self.stdio = stdio

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        strict: bool,
        environ: Mapping[str, str],
        stdio: bool = False,
        resource_dirs: Sequence[Path] = (),
    ) -> CapabilityFile:
        """Read and compile ``path``; problems are in ``report.errors`` (this never raises for a bad file)."""
        report = load_capability(path, strict=strict, environ=environ, resource_dirs=resource_dirs)
        if stdio and report.stdio_tools:
            # Over stdio the file's stdio adapter is the one served: it names the server (README).
            report.mcp_adapters = report.stdio_adapters
        return cls(report, stdio=stdio)

    @hookimpl
    def host_register_consumes(self, register: Callable[[ConsumedApi], None]) -> None:
        for api in self.report.apis:
            register(api)

    @hookimpl
    def host_register_rest_resources(self, register: Callable[[RestResource], None]) -> None:
        for resource in self.report.rest:
            register(resource)

    @hookimpl
    def host_register_mcp_tools(self, register: Callable[[McpTool], None]) -> None:
        # Over stdio a file may expose a different tool set (its stdio MCP adapter).
        tools = self.report.stdio_tools if self.stdio and self.report.stdio_tools else self.report.tools
        for tool in tools:
            register(tool)

    @hookimpl
    def host_register_mcp_resources(self, register: Callable[[McpResource], None]) -> None:
        for resource in self.report.resources:
            register(resource)

    @hookimpl
    def host_register_mcp_prompts(self, register: Callable[[McpPrompt], None]) -> None:
        for prompt in self.report.prompts:
            register(prompt)


HOOKS = sorted(name for name in vars(CapabilityFile) if name.startswith("host_register_"))
