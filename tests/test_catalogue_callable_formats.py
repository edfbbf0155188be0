"""The callable measure answers in the format the operation declares (issue 11).

Modelled on ``yardi__property-management.yaml``: a SOAP-style operation with ``outputRawFormat: xml``. The
measure's fake upstream used to answer JSON ``{}`` to everything, so the XML tool failed to decode and was
counted as not callable, although the host was right to refuse JSON as XML.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.test_catalogue_callable import report_module

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
info:
  label: Property management
capability:
  consumes:
    - type: http
      namespace: voyager
      baseUri: "https://voyager.example.com/webservices"
      resources:
        - name: tenants
          path: /ItfResidentData.asmx
          operations:
            - name: get-tenants
              method: POST
              outputRawFormat: xml
              inputParameters:
                - name: YardiPropertyId
                  in: query
            - name: get-units
              method: GET
              inputParameters:
                - name: YardiPropertyId
                  in: query
  exposes:
    - type: mcp
      namespace: voyager-tools
      tools:
        - name: list-tenants
          description: Tenants of a property
          call: voyager.get-tenants
          with:
            YardiPropertyId: tools.property_id
          outputParameters:
            - type: object
              mapping: $.
        - name: list-units
          description: Units of a property
          call: voyager.get-units
          with:
            YardiPropertyId: tools.property_id
"""


def test_an_xml_operation_is_answered_with_xml(tmp_path: Path) -> None:
    report = report_module()
    capability = tmp_path / "property-management.yaml"
    capability.write_text(CAPABILITY, encoding="utf-8")
    result = {"file": str(capability), "status": "OK", "warnings": [], "errors": []}
    outcomes = asyncio.run(report.callable_outcomes([result]))
    assert {o.tool: (o.callable, o.reason) for o in outcomes} == {
        "list-tenants": (True, ""),
        "list-units": (True, ""),
    }
