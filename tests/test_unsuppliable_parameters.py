"""Required parameters a tool cannot supply (issue 11, "Also wrong today").

A consumed operation declares a required parameter that the tool neither declares as an input nor maps in
``with``. A header the namespace's authentication produces counts as supplied (HMRC's ``Authorization``);
anything else (Huuray's ``X-API-NONCE``) is a load warning naming the operation and the parameter, and the
call goes out without it: the upstream decides.
"""

from __future__ import annotations

import json
from pathlib import Path

from host.naftiko import load_capability
from host.testing import FakeUpstream, serve_in_process

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
binds:
  - namespace: voucher-env
    keys:
      VOUCHER_TOKEN: VOUCHER_TOKEN
capability:
  consumes:
    - type: http
      namespace: vouchers
      baseUri: "http://127.0.0.1:1"
      authentication:
        type: bearer
        token: "{{VOUCHER_TOKEN}}"
      resources:
        - name: vouchers
          path: "/vouchers/{{code}}"
          operations:
            - name: get-voucher
              method: GET
              inputParameters:
                - name: code
                  in: path
                - name: Authorization
                  in: header
                  required: true
                - name: X-API-NONCE
                  in: header
                  required: true
                - name: locale
                  in: query
                  required: true
  exposes:
    - type: mcp
      namespace: voucher-tools
      tools:
        - name: get-voucher
          description: "A voucher by code"
          call: vouchers.get-voucher
          inputParameters:
            - name: code
              type: string
              required: true
              description: "Voucher code"
            - name: locale
              type: string
              description: "Language"
          with:
            code: "{{code}}"
"""


def _capability(tmp_path: Path) -> Path:
    path = tmp_path / "vouchers.yaml"
    path.write_text(CAPABILITY)
    return path


def test_load_warns_for_what_no_one_supplies(tmp_path: Path) -> None:
    report = load_capability(_capability(tmp_path), environ={"VOUCHER_TOKEN": "t"})
    unsupplied = [warning for warning in report.warnings if "X-API-NONCE" in warning]
    assert len(unsupplied) == 1 and "vouchers.get-voucher" in unsupplied[0], report.warnings
    assert not any("Authorization" in warning for warning in report.warnings), report.warnings
    assert not any("'locale'" in warning for warning in report.warnings), report.warnings  # a tool input


async def test_the_call_goes_out_without_it(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.route("GET", "/vouchers/{code}", json={"code": "V1"})
        config = (
            f'[plugins]\nload = []\n\n[[capabilities]]\npath = "{_capability(tmp_path)}"\n\n'
            f'[consumes.vouchers]\nbase_uri = "{fake.url}"\n'
        )
        async with (
            serve_in_process(config, {"VOUCHER_TOKEN": "secret-token"}, discover=False) as host,
            host.in_memory_mcp_client() as client,
        ):
            with fake.capture() as seen:
                result = await client.call_tool("get-voucher", {"code": "V1", "locale": "fr"})
    assert not result.is_error, result
    assert json.loads(result.content[0].text) == {"code": "V1"}  # type: ignore[union-attr]
    assert len(seen) == 1
    assert seen[0].headers["Authorization"] == "Bearer secret-token"
    assert "X-API-NONCE" not in seen[0].headers
    assert seen[0].query.get("locale") == "fr"
