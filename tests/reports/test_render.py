"""Rendering the executed record as PDF/A-3b with its machine-readable sources attached."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError

from reports.errors import RenderError
from reports.render import (
    PackageAssetFetcher,
    RenderedPdf,
    canonical_json,
    render_batch_record,
    render_html,
)


def _attachments(pdf: bytes) -> dict[str, Any]:
    reader = PdfFileReader(io.BytesIO(pdf))
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    found = {}
    for index in range(0, len(names), 2):
        spec = names[index + 1]
        stream = spec["/EF"]["/F"]
        found[str(names[index])] = {
            "relationship": str(spec["/AFRelationship"]),
            "mime": str(stream["/Subtype"]),
            "data": stream.data,
        }
    return found


def test_renders_pages(rendered: RenderedPdf) -> None:
    assert rendered.pdf.startswith(b"%PDF-1.7")
    assert rendered.pages > 0
    reader = PdfFileReader(io.BytesIO(rendered.pdf))
    assert reader.root["/Pages"]["/Count"] == rendered.pages


def test_declares_pdfa_3b_in_xmp(rendered: RenderedPdf) -> None:
    # The XMP packet is left uncompressed on purpose, so the claim is visible in the bytes.
    assert b'pdfaid:part="3"' in rendered.pdf
    assert b'pdfaid:conformance="B"' in rendered.pdf
    reader = PdfFileReader(io.BytesIO(rendered.pdf))
    assert reader.root["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    # No Info dictionary: it would have to mirror the XMP, and signing changes the producer.
    assert "/Info" not in reader.trailer


def test_embeds_record_and_recipe_as_associated_files(
    rendered: RenderedPdf, record: dict, recipe_yaml: str
) -> None:
    files = _attachments(rendered.pdf)
    assert set(files) == {"record.json", "recipe.yaml"}
    assert files["record.json"]["relationship"] == "/Data"
    assert files["record.json"]["mime"] == "/application/json"
    assert files["record.json"]["data"] == canonical_json(record)
    assert json.loads(files["record.json"]["data"]) == record
    assert files["recipe.yaml"]["relationship"] == "/Source"
    assert files["recipe.yaml"]["mime"] == "/application/yaml"
    assert files["recipe.yaml"]["data"].decode() == recipe_yaml

    reader = PdfFileReader(io.BytesIO(rendered.pdf))
    associated = reader.root["/AF"]
    assert len(associated) == 2  # once each, not once per discovery path


def test_html_carries_the_record(record: dict, recipe_yaml: str) -> None:
    html = render_html(record, recipe_yaml)
    batch = record["batch"]
    for expected in (
        batch["batch_id"],
        batch["product_name"],
        batch["recipe_sha256"],
        "version 1.0.0",
        "2.000 kg",
        "Final status:",
        "S S      781.20 g",  # raw scale frame, verbatim
        "B123456789",
        "2026-11-21 22:46:10 UTC (UTC+00:00)",  # site time (UTC here) with its offset
        "Olivia Operator",
        "performed",
        record["steps"][0]["signature"]["content_sha256"],
        "Quinn Quality",
        "Appendix: audit trail",
        "deviation DEV-17 assessed",
    ):
        assert expected in html, expected
    # Steps in record order.
    steps_section = html.index("Executed steps")
    positions = [html.index(step["step_id"], steps_section) for step in record["steps"]]
    assert positions == sorted(positions)


def test_review_by_exception_lists_failures_and_comments(record: dict, recipe_yaml: str) -> None:
    html = render_html(record, recipe_yaml)
    section = html[html.index("Review by exception") : html.index("Executed steps")]
    assert "Microcrystalline cellulose" in section  # failed its limits
    assert "Mixer lid re-seated before start." in section  # commented
    assert "Ascorbic acid" not in section  # passed, no comment


def test_no_exceptions_is_said_explicitly(record: dict, recipe_yaml: str) -> None:
    for step in record["steps"]:
        step["result"] = "pass"
        step["comment"] = ""
    html = render_html(record, recipe_yaml)
    assert "No exceptions" in html


def test_page_header_and_footer_use_css_counters() -> None:
    from importlib import resources

    css = resources.files("reports").joinpath("templates", "ebmr.css").read_text()
    assert 'counter(page) " of " counter(pages)' in css
    assert "string(batch-id)" in css
    assert "string(generated)" in css


def test_untrusted_text_is_escaped(record: dict, recipe_yaml: str) -> None:
    record["steps"][0]["comment"] = "<script>alert('x')</script>"
    record["batch"]["product_name"] = '"><img src="file:///etc/passwd">'
    html = render_html(record, recipe_yaml)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert '<img src="file:///etc/passwd">' not in html
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html


def test_hostile_text_still_renders(record: dict, recipe_yaml: str) -> None:
    record["steps"][0]["comment"] = "<script>alert('x')</script>" + "X" * 500
    rendered = render_batch_record(record, recipe_yaml)
    assert rendered.pages > 0
    assert b"/JavaScript" not in rendered.pdf
    assert b"/JS" not in rendered.pdf


def test_unreleased_batch_renders(record: dict, recipe_yaml: str) -> None:
    record["release"] = None
    record["batch"]["state"] = "complete"
    record["batch"]["released_at"] = None
    record["steps"][-1]["signature"] = None
    html = render_html(record, recipe_yaml)
    assert "has not been released" in html
    assert "NOT SIGNED" in html


def test_contract_violations_are_named(record: dict, recipe_yaml: str) -> None:
    del record["batch"]["batch_id"]
    del record["steps"][1]["signature"]["meaning"]
    record["generated_at"] = "yesterday"
    with pytest.raises(RenderError) as caught:
        render_html(record, recipe_yaml)
    message = str(caught.value)
    assert "batch.batch_id is missing" in message
    assert "steps[1].signature.meaning is missing" in message
    assert "generated_at" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("steps", None, "steps must be a list"),
        ("steps", [None], "steps[0] must be an object"),
        ("release", "released", "release must be an object"),
        ("audit", [{"at": "2026-11-21T22:30:00+00:00"}], "audit[0].actor is missing"),
        ("batch", None, "batch must be an object"),
    ],
)
def test_malformed_structure_is_named(
    record: dict, recipe_yaml: str, key: str, value: object, expected: str
) -> None:
    record[key] = value
    with pytest.raises(RenderError) as caught:
        render_html(record, recipe_yaml)
    assert expected in str(caught.value)


def test_unknown_format_is_refused(record: dict, recipe_yaml: str) -> None:
    record["format"] = "ebr.batch-record/2"
    with pytest.raises(RenderError, match=r"ebr\.batch-record/1"):
        render_batch_record(record, recipe_yaml)


@pytest.mark.parametrize("bad", [float("nan"), Decimal("1.5")])
def test_non_json_values_are_refused(record: dict, recipe_yaml: str, bad: object) -> None:
    record["steps"][0]["values"]["net_weight"] = bad
    with pytest.raises(RenderError, match="not plain JSON"):
        render_batch_record(record, recipe_yaml)


def test_canonical_json_is_stable(record: dict) -> None:
    shuffled = dict(reversed(list(record.items())))
    assert canonical_json(shuffled) == canonical_json(record)
    assert re.fullmatch(rb"\{\"audit\":.*\}", canonical_json(record))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "https://example.com/logo.png",
        "data:text/plain,hello",
        "ebr-asset:../pki/signer.p12",
        "ebr-asset:ebmr.html",
    ],
)
def test_fetcher_refuses_everything_but_packaged_assets(url: str) -> None:
    with pytest.raises(PermissionError):
        PackageAssetFetcher().fetch(url)


def test_fetcher_serves_the_stylesheet() -> None:
    response = PackageAssetFetcher().fetch("ebr-asset:ebmr.css")
    assert response.content_type == "text/css"
    assert b"@page" in response.read()


def test_a_refused_resource_stops_the_render() -> None:
    document = HTML(string='<img src="file:///etc/hostname">', url_fetcher=PackageAssetFetcher())
    with pytest.raises(FatalURLFetchingError):
        document.render()
