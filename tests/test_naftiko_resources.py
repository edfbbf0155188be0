"""Static MCP resources and prompts read files only from allowed folders (issue 10, finding 4).

A ``location: file:///…`` must resolve, symlinks followed, inside the capability file's folder or inside
a folder its ``[[capabilities]]`` entry lists under ``resource_dirs``. Anything else is a load error that
names the path, so ``/etc/passwd`` or ``/proc/self/environ`` (which holds the host's API keys) is never
served, and ``host check`` says why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from host.check import check_config
from host.config import load_config
from host.naftiko import load_capability

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {{label: Files, description: Static files}}
capability:
  exposes:
    - type: mcp
      namespace: files
      port: 9091
      resources:
        - name: notes
          label: Notes
          description: Some notes
          uri: docs://notes
          location: "{location}"
      prompts:
        - name: brief
          label: Brief
          description: A brief
          location: "{prompt}"
"""


def _capability(folder: Path, location: str, prompt: str = "file:///./prompt.md") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.md").write_text("# notes\n")
    (folder / "prompt.md").write_text("Summarise.\n")
    path = folder / "files.yaml"
    path.write_text(CAPABILITY.format(location=location, prompt=prompt))
    return path


@pytest.mark.parametrize("location", ["file:///etc/passwd", "file:///proc/self/environ", "/etc/hostname"])
def test_absolute_path_outside_the_folder_is_a_load_error(tmp_path: Path, location: str) -> None:
    report = load_capability(_capability(tmp_path, location))
    assert report.status == "ERROR"
    assert not report.resources
    target = location.removeprefix("file://")
    assert any(target in error and "resources[0].location" in error for error in report.errors), report.errors


def test_prompt_location_is_confined_too(tmp_path: Path) -> None:
    report = load_capability(_capability(tmp_path, "file:///./notes.md", prompt="file:///etc/passwd"))
    assert report.status == "ERROR" and any("/etc/passwd" in error for error in report.errors)


def test_relative_escape_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cret")
    report = load_capability(_capability(tmp_path / "cap", "file:///./../secret.txt"))
    assert report.status == "ERROR" and any("../secret.txt" in error for error in report.errors)


def test_symlink_out_of_the_folder_is_a_load_error(tmp_path: Path) -> None:
    folder = tmp_path / "cap"
    folder.mkdir()
    (folder / "link.txt").symlink_to("/etc/passwd")
    report = load_capability(_capability(folder, "file:///./link.txt"))
    assert report.status == "ERROR" and any("link.txt" in error for error in report.errors)


def test_files_inside_the_folder_are_served(tmp_path: Path) -> None:
    absolute = (tmp_path / "notes.md").resolve().as_uri()
    for location in ("file:///./notes.md", "notes.md", absolute):
        report = load_capability(_capability(tmp_path, location))
        assert report.status == "OK", (location, report.errors, report.warnings)
        assert report.resources[0].text == "# notes\n"
        assert report.prompts[0].messages == (("user", "Summarise.\n"),)


def test_a_listed_folder_is_allowed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "glossary.md").write_text("glossary")
    capability = _capability(tmp_path / "cap", (shared / "glossary.md").as_uri())
    assert load_capability(capability).status == "ERROR"
    report = load_capability(capability, resource_dirs=[shared])
    assert report.status == "OK", report.errors
    assert report.resources[0].text == "glossary"


def _write_config(tmp_path: Path, capability: Path, resource_dirs: list[str] | None) -> Path:
    config = tmp_path / "host.toml"
    lines = ["[plugins]", "load = []", "", "[[capabilities]]", f'path = "{capability.relative_to(tmp_path)}"']
    if resource_dirs is not None:
        lines.append(f"resource_dirs = {json.dumps(resource_dirs)}")
    config.write_text("\n".join(lines) + "\n")
    return config


def test_host_toml_resource_dirs_are_relative_to_host_toml(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "glossary.md").write_text("glossary")
    capability = _capability(tmp_path / "cap", (shared / "glossary.md").as_uri())
    refused = check_config(load_config(_write_config(tmp_path, capability, None)), strict=False, environ={})
    assert any("glossary.md" in problem and str(capability) in problem for problem in refused), refused
    config = load_config(_write_config(tmp_path, capability, ["shared"]))
    assert check_config(config, strict=False, environ={}) == []


def test_host_check_reports_the_file_and_the_path(tmp_path: Path) -> None:
    capability = _capability(tmp_path, "file:///etc/passwd")
    done = subprocess.run(
        [sys.executable, "-m", "host", "check", str(capability)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert str(capability) in done.stdout and "/etc/passwd" in done.stdout
    assert "root:" not in done.stdout + done.stderr
