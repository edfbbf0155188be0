"""html and markdown documents, the contract of engine/util/ConverterTest (issue 11 #10)."""

from __future__ import annotations

import pytest

from host.formats import decode
from host.markup import check_selector, html_document, markdown_document
from tests.naftiko_reference.conftest import replays

HTML_TABLE = """
<table>
  <thead><tr><th>Name</th><th>Price</th><th>Stock</th></tr></thead>
  <tbody>
    <tr><td>Widget</td><td>$42</td><td>150</td></tr>
    <tr><td>Gadget</td><td>$99</td><td>30</td></tr>
  </tbody>
</table>
"""
MARKDOWN_TABLE = """
| Name | Price | Stock |
|------|-------|-------|
| Widget | $42 | 150 |
| Gadget | $99 | 30 |
"""


@replays("ConverterTest", 2)
def test_html_and_markdown_tables_share_one_contract() -> None:
    html, markdown = html_document(HTML_TABLE), markdown_document(MARKDOWN_TABLE)
    assert html["tables"] == markdown["tables"]
    assert html["tables"][0][0]["Price"] == "$42"


@replays("ConverterTest", 2)
def test_css_selector_scopes_the_tables() -> None:
    page = """<div>
      <table class="ignored"><tr><th>Name</th><th>Stock</th></tr><tr><td>Ignored</td><td>0</td></tr></table>
      <table class="products"><tr><th>Name</th><th>Stock</th></tr><tr><td>Kept</td><td>42</td></tr></table>
    </div>"""
    assert html_document(page, "table.products")["tables"] == [[{"Name": "Kept", "Stock": "42"}]]
    assert html_document(page, "div table")["tables"] == html_document(page)["tables"]
    assert len(html_document(page, "#nowhere, table.ignored")["tables"]) == 1


@replays("ConverterTest", 5)
def test_markdown_front_matter_tables_and_sections() -> None:
    document = markdown_document(
        "---\ntitle: Release Notes\nversion: 2.1.0\n---\n\n## Overview\n"
        "This **release** introduces [new features](https://example.com).\n\n"
        "| Feature | Status |\n|---------|--------|\n| Search  | GA     |\n"
    )
    assert document["frontMatter"] == {"title": "Release Notes", "version": "2.1.0"}
    assert document["tables"][0][0]["Status"] == "GA"
    assert document["sections"][0]["heading"] == "Overview"
    assert document["sections"][0]["content"] == "This release introduces new features."


@replays("ConverterTest", 2)
def test_convert_by_format_name() -> None:
    assert decode(b"<table><tr><th>Name</th></tr><tr><td>Alice</td></tr></table>", "html")["tables"][0][
        0
    ] == {"Name": "Alice"}
    assert (
        decode(b"| Name | Role |\n|------|------|\n| Alice | User |", "markdown")["tables"][0][0]["Name"]
        == "Alice"
    )


@replays("ConverterTest", 2)
def test_html_rows_holding_a_th_are_skipped() -> None:
    page = (
        "<table><tr><th>Name</th><th>Price</th></tr><tr><th>Widget</th><td>$42</td></tr>"
        "<tr><td>Gadget</td><td>$99</td></tr></table>"
    )
    assert html_document(page)["tables"] == [[{"Name": "Gadget", "Price": "$99"}]]


@replays("ConverterTest", 3)
def test_markdown_sections_filtered_by_heading_prefix() -> None:
    text = (
        "## Overview\nGeneral introduction.\n\n## API Reference\nDetails about the API.\n\n"
        "## API Usage\nHow to use the API.\n"
    )
    sections = markdown_document(text, "API")["sections"]
    assert [section["heading"] for section in sections] == ["API Reference", "API Usage"]
    assert sections[1]["content"] == "How to use the API."


def test_unclosed_cells_and_void_elements() -> None:
    page = "<table><tr><th>A<th>B<tr><td>1<br>x<td>2</table><p>after"
    assert html_document(page)["tables"] == [[{"A": "1x", "B": "2"}]]


@pytest.mark.parametrize("selector", ["table > tr", "a[href]", "td:first-child"])
def test_unsupported_selectors_are_named(selector: str) -> None:
    with pytest.raises(ValueError, match="CSS selector"):
        check_selector(selector)
