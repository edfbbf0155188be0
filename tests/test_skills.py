"""Agent Skills (`type: skill` exposes, issue 12 part 3): the reference's assertions, replayed on the host.

The reference fixture (`skill-capability.yaml`) is read from ../shared/naftiko-reference; the tests that
need it skip when it is absent. The others build their own skill folders under tmp_path.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from yarl import URL

from host.app import build
from host.check import render_text
from host.config import HostConfig
from host.errors import StartupError
from host.naftiko import load_capability
from host.testing import serve_in_process
from tests.conftest import ROOT

REFERENCE = ROOT.parent / "shared" / "naftiko-reference" / "src" / "test" / "resources"
FIXTURE = REFERENCE / "skill-capability.yaml"
needs_reference = pytest.mark.skipif(not FIXTURE.is_file(), reason="naftiko-reference is absent")
KEY = "skills-key-0123456789abcdef"


def _config(*files: Path, resource_dirs: tuple[str, ...] = (), **sections: Any) -> HostConfig:
    entries = [{"path": str(file), "resource_dirs": list(resource_dirs)} for file in files]
    return HostConfig.model_validate({"capabilities": entries, **sections})


def _reference_config() -> HostConfig:
    # The fixture's location is file:///tmp/naftiko-test-skills/...: outside the file's folder, so the
    # operator lists that folder, as static resources need.
    return _config(FIXTURE, resource_dirs=("/tmp/naftiko-test-skills",))


# --- SkillIntegrationTest / SkillServerSpecRoundTripTest, replayed ---------------------------------------


@needs_reference
def test_the_reference_fixture_compiles_to_two_skills() -> None:
    report = load_capability(FIXTURE, resource_dirs=[Path("/tmp/naftiko-test-skills")])
    assert report.errors == []
    first, second = report.skills
    assert first.namespace == "orders-skills" and first.name == "order-management"
    assert first.front_matter["allowed-tools"] == "list-orders"
    assert first.front_matter["argument-hint"] == "Use for order operations"
    assert [tool.name for tool in first.tools] == ["list-orders", "order-guide"]
    assert first.tools[0].target == ("orders-rest", "list-orders", "rest")
    assert first.tools[1].instruction == "order-guide.md"
    assert second.name == "onboarding-guide" and second.tools == ()


@needs_reference
def test_host_check_counts_the_skills() -> None:
    report = load_capability(FIXTURE, resource_dirs=[Path("/tmp/naftiko-test-skills")])
    assert report.as_json()["skills"] == 2
    assert render_text([report]).startswith(f"OK    {FIXTURE} (1 operations, 1 REST, 0 tools, 2 skills)")


@needs_reference
async def test_reference_catalogue_detail_and_404s() -> None:
    async with serve_in_process(_reference_config(), discover=False) as served:
        catalogue = await served.rest.get("/skills")
        assert catalogue.status == 200
        body = await catalogue.json()
        assert body["count"] == 2
        assert [skill["name"] for skill in body["skills"]] == ["order-management", "onboarding-guide"]

        detail = await (await served.rest.get("/skills/order-management")).json()
        assert detail["name"] == "order-management"
        assert detail["description"] == "Tools for managing orders"
        assert detail["allowed-tools"] == "list-orders"
        assert detail["argument-hint"] == "Use for order operations"
        derived, instruction = detail["tools"]
        assert derived["name"] == "list-orders" and derived["type"] == "derived"
        assert derived["invocationRef"] == {
            "targetNamespace": "orders-rest",
            "action": "list-orders",
            "mode": "rest",
        }
        assert instruction == {
            "name": "order-guide",
            "description": "Guide for working with orders",
            "type": "instruction",
            "instruction": "order-guide.md",
        }
        assert "location" not in detail  # a server path is no business of the caller

        descriptive = await served.rest.get("/skills/onboarding-guide")
        assert descriptive.status == 200 and (await descriptive.json())["tools"] == []

        for path in ("/skills/unknown-skill", "/skills/unknown-skill/contents"):
            missing = await served.rest.get(path)
            assert missing.status == 404 and missing.content_type == "application/problem+json"


@needs_reference
async def test_reference_contents_file_and_download_answer_200_or_404() -> None:
    async with serve_in_process(_reference_config(), discover=False) as served:
        contents = await served.rest.get("/skills/order-management/contents")
        assert contents.status in (200, 404)
        if contents.status == 200:
            for entry in (await contents.json())["files"]:
                assert entry["name"] and entry["path"]
        single = await served.rest.get("/skills/order-management/contents/overview")
        assert single.status in (200, 404)
        if single.status == 200:
            assert single.headers["Content-Type"]
        download = await served.rest.get("/skills/order-management/download")
        assert download.status in (200, 404)
        if download.status == 200:
            assert (await download.read())[:2] == b"PK"


# --- the 200 branches, with a folder that exists ----------------------------------------------------------


def _skill_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "skills" / "order-management"
    (folder / "guides").mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(
        "---\nname: stale\ndescription: old\n---\n\n# Orders\n\nUse the tools.\n"
    )
    (folder / "order-guide.md").write_text("# Order guide\n")
    (folder / "overview").write_text("overview text")
    (folder / "guides" / "deep.md").write_text("deep")
    return folder


def _populated(tmp_path: Path) -> Path:
    """The reference fixture, its first skill's location pointing at a real folder next to it."""
    _skill_folder(tmp_path)
    raw = yaml.safe_load(FIXTURE.read_text())
    raw["capability"]["exposes"][1]["skills"][0]["location"] = "file:///./skills/order-management"
    file = tmp_path / "skill-capability.yaml"
    file.write_text(yaml.safe_dump(raw, sort_keys=False))
    return file


@needs_reference
async def test_contents_file_and_download_of_a_real_folder(tmp_path: Path) -> None:
    async with serve_in_process(_config(_populated(tmp_path)), discover=False) as served:
        contents = await served.rest.get("/skills/order-management/contents")
        assert contents.status == 200
        files = (await contents.json())["files"]
        assert [entry["path"] for entry in files] == [
            "SKILL.md",
            "guides/deep.md",
            "order-guide.md",
            "overview",
        ]
        assert {entry["name"] for entry in files} == {"SKILL.md", "deep.md", "order-guide.md", "overview"}

        guide = await served.rest.get("/skills/order-management/contents/order-guide.md")
        assert guide.status == 200 and guide.content_type == "text/markdown"
        assert await guide.text() == "# Order guide\n"
        assert guide.headers["X-Content-Type-Options"] == "nosniff"
        deep = await served.rest.get("/skills/order-management/contents/guides/deep.md")
        assert deep.status == 200 and await deep.text() == "deep"

        download = await served.rest.get("/skills/order-management/download")
        assert download.status == 200 and download.content_type == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(await download.read()))
        names = set(archive.namelist())
        assert names == {
            "order-management/SKILL.md",
            "order-management/order-guide.md",
            "order-management/overview",
            "order-management/guides/deep.md",
        }
        skill_md = archive.read("order-management/SKILL.md").decode()
        _, front, body = skill_md.split("---\n", 2)
        # The declared front matter replaces the folder's stale one; the instructions are kept.
        assert yaml.safe_load(front) == {
            "name": "order-management",
            "description": "Tools for managing orders",
            "allowed-tools": "list-orders",
            "argument-hint": "Use for order operations",
        }
        assert "# Orders" in body and "stale" not in skill_md


@needs_reference
async def test_a_skill_without_a_folder_downloads_a_generated_skill_md() -> None:
    async with serve_in_process(_reference_config(), discover=False) as served:
        download = await served.rest.get("/skills/onboarding-guide/download")
        assert download.status == 200
        archive = zipfile.ZipFile(io.BytesIO(await download.read()))
        assert archive.namelist() == ["onboarding-guide/SKILL.md"]
        text = archive.read("onboarding-guide/SKILL.md").decode()
        assert text.startswith("---\nname: onboarding-guide\ndescription: A purely descriptive skill")


# --- traversal ---------------------------------------------------------------------------------------------

SKILL_FILE = """naftiko: "1.0.0-alpha2"
binds:
- namespace: env
  keys: {SKILL_TOKEN: SKILL_TOKEN}
capability:
  consumes:
  - type: http
    namespace: shop
    baseUri: http://127.0.0.1:9/v1
    resources:
    - name: orders
      path: orders
      operations:
      - {method: GET, name: list}
  exposes:
  - type: mcp
    namespace: shop-mcp
    tools:
    - {name: list-orders, description: List orders, call: shop.list}
  - type: skill
    port: 3011
    namespace: shop-skills
%(auth)s    skills:
    - name: orders
      description: Orders
      location: "file:///./skills/order-management"
      tools:
      - name: list-orders
        description: List orders
        from: {sourceNamespace: shop-mcp, action: %(action)s}
      - {name: guide, description: Guide, instruction: %(instruction)s}
"""


def _skill_file(
    tmp_path: Path, *, action: str = "list-orders", instruction: str = "order-guide.md", auth: str = ""
) -> Path:
    _skill_folder(tmp_path)
    file = tmp_path / "shop.yaml"
    file.write_text(SKILL_FILE % {"action": action, "instruction": instruction, "auth": auth})
    return file


TRAVERSALS = [
    "../secret.txt",
    "..%2fsecret.txt",
    "%2e%2e/secret.txt",
    "%2e%2e%2f%2e%2e%2fsecret.txt",
    "guides/../../secret.txt",
    "guides/%2e%2e/%2e%2e/secret.txt",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "..%5csecret.txt",
    "C:%5csecret.txt",
    "escape",  # a symlink inside the folder that leads out of it
    "escape-dir/secret.txt",  # a symlinked folder that leads out
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_traversal_out_of_the_skill_folder_is_refused(tmp_path: Path, path: str) -> None:
    file = _skill_file(tmp_path)
    folder = tmp_path / "skills" / "order-management"
    (tmp_path / "skills" / "secret.txt").write_text("TOP-SECRET")
    os.symlink(tmp_path / "skills" / "secret.txt", folder / "escape")
    os.symlink(tmp_path / "skills", folder / "escape-dir")
    async with serve_in_process(_config(file), discover=False) as served:
        url = URL(f"{served.rest_url}/skills/orders/contents/{path}", encoded=True)
        response = await served.rest.session.get(url)
        text = await response.text()
        assert response.status in (400, 403), (path, response.status)
        assert "TOP-SECRET" not in text and "root:" not in text
        assert response.content_type == "application/problem+json"
        # The listing and the archive leave the escaping links out.
        listed = await (await served.rest.get("/skills/orders/contents")).json()
        assert {"escape", "escape-dir/secret.txt"}.isdisjoint(entry["path"] for entry in listed["files"])
        archive = zipfile.ZipFile(io.BytesIO(await (await served.rest.get("/skills/orders/download")).read()))
        assert all(b"TOP-SECRET" not in archive.read(name) for name in archive.namelist())


# --- load errors -------------------------------------------------------------------------------------------


def test_an_unknown_tool_is_a_load_error_naming_the_file_and_the_skill(tmp_path: Path) -> None:
    report = load_capability(_skill_file(tmp_path, action="no-such-tool"))
    assert report.status == "ERROR"
    assert "skill 'orders'" in report.errors[0] and "shop-mcp.no-such-tool" in report.errors[0]
    assert report.file.endswith("shop.yaml")
    with pytest.raises(StartupError, match=r"shop\.yaml.*skill 'orders'"):
        build(_config(report_path := Path(report.file)), {}, strict=True, discover=False)
    assert report_path.exists()


def test_an_instruction_in_a_sub_folder_loads_and_a_tool_with_neither_is_a_load_error(tmp_path: Path) -> None:
    assert load_capability(_skill_file(tmp_path, instruction="guides/deep.md")).status == "OK"
    file = _skill_file(tmp_path, instruction="x.md")
    neither = file.read_text().replace("{name: guide, description: Guide, instruction: x.md}", "{name: g}")
    file.write_text(neither)
    report = load_capability(file)
    assert report.status == "ERROR" and "needs 'from' or 'instruction'" in report.errors[0]


@pytest.mark.parametrize("instruction", ["../outside.md", "/etc/passwd", "a/../../b.md"])
def test_an_instruction_outside_the_folder_is_a_load_error(tmp_path: Path, instruction: str) -> None:
    report = load_capability(_skill_file(tmp_path, instruction=instruction))
    assert report.status == "ERROR" and "skill 'orders'" in report.errors[0]


async def test_a_location_outside_the_allowed_folders_serves_the_skill_without_files(tmp_path: Path) -> None:
    file = _skill_file(tmp_path)
    file.write_text(file.read_text().replace("file:///./skills/order-management", "file:///etc"))
    report = load_capability(file)
    assert report.status == "WARN" and "resource_dirs" in report.warnings[0]
    assert "served without its files" in report.warnings[0]
    async with serve_in_process(_config(file), discover=False) as served:
        assert (await served.rest.get("/skills/orders")).status == 200
        for path in ("/skills/orders/contents", "/skills/orders/contents/passwd"):
            refused = await served.rest.get(path)
            assert refused.status == 404 and "root:" not in await refused.text()
        archive = zipfile.ZipFile(io.BytesIO(await (await served.rest.get("/skills/orders/download")).read()))
        assert archive.namelist() == ["orders/SKILL.md"]


@pytest.mark.parametrize("name", ["../etc", "a b", "orders/x", "x" * 65, '"q"'])
def test_a_skill_name_that_is_no_identifier_is_a_load_error(tmp_path: Path, name: str) -> None:
    file = _skill_file(tmp_path)
    file.write_text(file.read_text().replace("- name: orders", f"- name: {json.dumps(name)}"))
    report = load_capability(file)
    assert report.status == "ERROR" and "letters, digits and hyphens" in report.errors[0]


def test_two_files_declaring_one_skill_name_stop_start_up(tmp_path: Path) -> None:
    first = _skill_file(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    second = _skill_file(other)
    text = (
        second.read_text().replace("namespace: shop", "namespace: shop2").replace("shop.list", "shop2.list")
    )
    second.write_text(text.replace("list-orders", "list-2").replace("shop-mcp", "shop2-mcp"))
    with pytest.raises(StartupError, match="skill 'orders' is declared by"):
        build(_config(first, second), {}, discover=False)


# --- the gate ----------------------------------------------------------------------------------------------

SKILL_ROUTES = [
    "/skills",
    "/skills/orders",
    "/skills/orders/contents",
    "/skills/orders/contents/order-guide.md",
    "/skills/orders/download",
]


async def test_every_skill_route_is_refused_without_the_host_key(tmp_path: Path) -> None:
    config = _config(_skill_file(tmp_path), auth={"keys": [{"name": "ci", "env": "HOST_KEY_CI"}]})
    async with serve_in_process(config, {"HOST_KEY_CI": KEY}, discover=False) as served:
        skill_routes = {
            route.resource.canonical
            for route in served.host.rest.router.routes()
            if route.resource is not None and route.resource.canonical.startswith("/skills")
        }
        assert len(skill_routes) == 5
        for path in SKILL_ROUTES:
            refused = await served.rest.get(path)
            assert refused.status == 401, path
            assert (await served.rest.get(path, headers={"X-API-Key": KEY})).status == 200, path


async def test_the_skill_adapters_own_authentication_guards_its_routes(tmp_path: Path) -> None:
    auth = "    authentication: {type: bearer, token: '{{SKILL_TOKEN}}'}\n"
    file = _skill_file(tmp_path, auth=auth)
    token = "skill-token-0123456789"
    async with serve_in_process(_config(file), {"SKILL_TOKEN": token}, discover=False) as served:
        for path in SKILL_ROUTES:
            assert (await served.rest.get(path)).status == 401, path
            served_ok = await served.rest.get(path, headers={"Authorization": f"Bearer {token}"})
            assert served_ok.status == 200, path
