"""``host serve --stdio FILE`` as a real process (issue 11 #6 and #7).

#6: the server is named after the file's MCP adapter namespace (README: a host serving exactly one file's
MCP adapter takes its name), also when that adapter is the file's stdio one.
#7: every request read before stdin closes is answered before the process exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from host.testing.process import host_process_environment

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: mcp
      transport: stdio
      namespace: stdio-shipyard
      description: "Ships over stdio."
      tools:
        - name: get-ship
          description: "A ship"
          inputParameters:
            - name: imo
              type: string
              required: true
              description: "IMO number"
          outputParameters:
            - name: imo
              type: string
              value: "{{imo}}"
"""

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "clientInfo": {"name": "t", "version": "1"},
        "capabilities": {},
    },
}


def _exchange(capability: Path, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write every message at once, close stdin, and read every line the host writes until it exits."""
    lines = "".join(json.dumps(message) + "\n" for message in messages)
    done = subprocess.run(
        [sys.executable, "-m", "host", "serve", "--stdio", str(capability)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        env=host_process_environment((), {}),
        cwd=capability.parent,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _capability(tmp_path: Path) -> Path:
    path = tmp_path / "stdio.yaml"
    path.write_text(CAPABILITY)
    return path


def test_stdio_server_is_named_after_the_adapter_namespace(tmp_path: Path) -> None:
    answers = _exchange(_capability(tmp_path), [INITIALIZE])
    assert answers and answers[0]["id"] == 1, answers
    result = answers[0]["result"]
    assert result["serverInfo"]["name"] == "stdio-shipyard"
    assert result["instructions"] == "Ships over stdio."


def test_stdio_answers_every_request_read_before_eof(tmp_path: Path) -> None:
    capability = _capability(tmp_path)
    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get-ship", "arguments": {"imo": "X"}},
        },
    ]
    for run in range(10):
        answers = _exchange(capability, messages)
        assert sorted(answer.get("id") for answer in answers) == [1, 2, 3], f"run {run}: {answers}"
