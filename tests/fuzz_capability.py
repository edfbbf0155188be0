"""A capability file with one argument in every location (path, query, header, body), for tests."""

from __future__ import annotations

from pathlib import Path

from host.testing import FakeUpstream, HostServer, start_host_server

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Fuzz, description: One argument in every location}
capability:
  consumes:
  - type: http
    namespace: fuzz
    baseUri: https://fuzz.invalid/api/v1
    resources:
    - name: customers-id
      path: /customers/{id}
      operations:
      - name: getcustomer
        method: GET
        inputParameters:
        - {name: id, in: path, type: string, required: true}
        - {name: q, in: query, type: string}
        - {name: X-Trace, in: header, type: string}
        outputRawFormat: json
      - name: updatecustomer
        method: PUT
        inputParameters:
        - {name: id, in: path, type: string, required: true}
        - {name: body, in: body, type: object, required: true}
        outputRawFormat: json
  exposes:
  - type: rest
    namespace: fuzz-rest
    port: 8080
    resources:
    - path: /v1/customers/{id}
      operations:
      - method: GET
        call: fuzz.getcustomer
      - method: PUT
        call: fuzz.updatecustomer
        with: {body: rest.body}
  - type: mcp
    namespace: fuzz-mcp
    port: 9090
    transport: http
    tools:
    - name: get-customer
      description: Get a customer.
      call: fuzz.getcustomer
    - name: update-customer
      description: Update a customer.
      call: fuzz.updatecustomer
      with: {body: tools.body}
"""


def serve_fuzz_capability(directory: Path, upstream: FakeUpstream) -> HostServer:
    """A host process serving CAPABILITY, its namespace pointed at ``upstream``."""
    (directory / "fuzz.yaml").write_text(CAPABILITY)
    return start_host_server(
        directory,
        [],
        {"fuzz": {"base_uri": upstream.url + "/api/v1"}},
        toml_extra='[[capabilities]]\npath = "fuzz.yaml"\n',
    )
