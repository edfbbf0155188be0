"""Adapters expose the engine's operations over a protocol.

The REST and MCP adapters are siblings: each depends on the core
(:mod:`host.engine`, :mod:`host.model`, :mod:`host.errors`) and never on the other.
"""
