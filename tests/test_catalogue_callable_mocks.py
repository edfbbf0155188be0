"""A tool with no ``call`` whose outputs are only JSONPath mappings (issue 11).

``amazon-rds__amazon-rds.yaml``'s ``list-amazon-rds-resources`` declares ``outputParameters: [{type: object,
mapping: $.}]`` and nothing to call: a mock with no document to map, which answers ``null`` to every call
without reaching any upstream. ``host check`` said OK about it. It stays served as written (the catalogue's
pass rate counts files like this one, whose every exposure is such a mock), and the load warning now says
what every call will answer; a mock with a ``const`` or ``value`` anywhere in its outputs is not warned about.
"""

from __future__ import annotations

from pathlib import Path

from host.naftiko import load_capability

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: rds
      baseUri: "https://rds.example.com"
      resources:
        - name: instances
          path: /instances
          operations:
            - {name: describe-instances, method: GET}
  exposes:
    - type: mcp
      namespace: rds-tools
      tools:
        - name: describe-instances
          description: Describe instances
          call: rds.describe-instances
        - name: list-amazon-rds-resources
          description: List Amazon Rds resources
          hints: {readOnly: true}
          outputParameters:
            - {type: object, mapping: $.}
        - name: status
          description: A mock status
          outputParameters:
            - type: object
              properties:
                state: {type: string, const: available}
                detail: {type: string, mapping: $.detail}
"""


def test_a_mock_with_nothing_to_answer_is_named_by_check(tmp_path: Path) -> None:
    path = tmp_path / "rds.yaml"
    path.write_text(CAPABILITY, encoding="utf-8")
    report = load_capability(path)
    assert [tool.name for tool in report.tools] == [
        "describe-instances",
        "list-amazon-rds-resources",
        "status",
    ]
    assert report.warnings == [
        "capability.exposes[0].tools[1]: "
        "no call and no static value (a const or value): every call answers null"
    ]
