"""What the printed eBMR says: shipped fonts, review by exception, ALTERED steps, the cover."""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Mapping
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from weasyprint import HTML
from weasyprint.urls import URLFetcherResponse

from reports.errors import RenderError
from reports.render import PackageAssetFetcher, render_batch_record, render_html

MIX_STEP = "blending/mix/mix-blend"


def _event(at: str, actor: str, action: str, **detail: str) -> dict[str, Any]:
    # The store keeps audit details as JSON text (sorted keys), exactly like this.
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "subject": "B-2026-0001",
        "detail": json.dumps(detail, sort_keys=True),
    }


def _with_exceptions(record: dict[str, Any]) -> dict[str, Any]:
    """The fixture record plus one of every kind of event a reviewer must see."""
    for step in record["steps"]:
        step["signature_verified"] = True
    record["steps"][3]["signature_verified"] = False  # check-appearance: tampered in the DB
    record["audit"] += [
        _event(
            "2026-11-21T22:34:00+00:00",
            "operator",
            "comment.added",
            step=MIX_STEP,
            comment="Lid gasket looks worn",
        ),
        _event(
            "2026-11-21T22:35:00+00:00",
            "system",
            "mix.failed/57",
            step=MIX_STEP,
            error="PLC reported fault 17",
        ),
        _event(
            "2026-11-21T22:35:30+00:00",
            "supervisor",
            "batch.held",
            **{"from": "running", "reason": "Mixer fault, investigating", "sha256": "ab"},
        ),
        _event(
            "2026-11-21T22:36:00+00:00",
            "supervisor",
            "batch.running",
            **{"from": "held", "reason": "Gasket replaced", "sha256": "cd"},
        ),
    ]
    return record


def _review(html: str) -> str:
    return html[html.index("Review by exception") : html.index("Executed steps")]


def _document(record: dict[str, Any], recipe_yaml: str):
    return HTML(string=render_html(record, recipe_yaml), url_fetcher=PackageAssetFetcher()).render()


class _RecordingFetcher(PackageAssetFetcher):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        self.urls.append(url)
        return super().fetch(url, headers)


def test_fonts_come_from_the_package_not_the_host(record: dict, recipe_yaml: str) -> None:
    fetcher = _RecordingFetcher()
    document = HTML(string=render_html(record, recipe_yaml), url_fetcher=fetcher).render()
    pdf = document.write_pdf()
    assert "ebr-asset:fonts/DejaVuSans.ttf" in fetcher.urls
    assert "ebr-asset:fonts/DejaVuSansMono.ttf" in fetcher.urls
    reader = PdfFileReader(io.BytesIO(pdf))
    fonts = set()
    for page_ref in reader.root["/Pages"]["/Kids"]:
        resources = page_ref.get_object()["/Resources"]
        for font in resources.get_object()["/Font"].get_object().values():
            fonts.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    # Only our own family names: no glyph was drawn from a font the host happened to have.
    assert fonts and all(name.startswith("/EBR-") or name.startswith("EBR-") for name in fonts)


def test_fetcher_serves_every_font_the_stylesheet_names() -> None:
    from importlib import resources

    css = resources.files("reports").joinpath("templates", "ebmr.css").read_text()
    fetcher = PackageAssetFetcher()
    urls = [part.split('"')[0] for part in css.split('url("')[1:]]
    assert len(urls) == 6
    for url in urls:
        response = fetcher.fetch(url)
        assert response.content_type == "font/ttf"
        assert response.read()[:4] == b"\x00\x01\x00\x00"  # TrueType magic


def test_review_by_exception_is_page_two(record: dict, recipe_yaml: str) -> None:
    document = _document(_with_exceptions(record), recipe_yaml)
    assert "review" in document.pages[1].anchors
    assert "review" not in document.pages[0].anchors


def test_review_lists_every_kind_of_exception(record: dict, recipe_yaml: str) -> None:
    review = _review(render_html(_with_exceptions(record), recipe_yaml))
    for kind in ("ALTERED", "FAILED", "COMMENT", "HOLD", "RESTART", "DEVICE FAULT"):
        assert f">{kind}<" in review, kind
    assert "Lid gasket looks worn" in review
    assert "Mixer lid re-seated before start." in review  # comment entered with the step
    assert "Mixer fault, investigating" in review
    assert "Gasket replaced" in review
    assert "PLC reported fault 17" in review
    assert "Ascorbic acid" not in review  # passed, verified, no comment


def test_every_review_link_lands_on_its_place_in_the_record(record: dict, recipe_yaml: str) -> None:
    document = _document(_with_exceptions(record), recipe_yaml)
    anchors = {name: index for index, page in enumerate(document.pages) for name in page.anchors}
    review_links = [link for link in document.pages[1].links if link[0] == "internal"]
    targets = {link[1] for link in review_links}
    # Step 2 failed, steps 3 and 4 have comments/faults/alterations, and the hold and
    # restart (batch-level) point into the audit appendix.
    assert {"step-2", "step-3", "step-4"} <= targets
    assert any(target.startswith("audit-") for target in targets)
    for target in targets:
        assert target in anchors, target
        assert anchors[target] >= 1


def test_altered_step_is_marked_in_the_step_itself(record: dict, recipe_yaml: str) -> None:
    html = render_html(_with_exceptions(record), recipe_yaml)
    steps = html[html.index("Executed steps") :]
    check = steps[steps.index('id="step-4"') : steps.index('id="release"')]
    assert "ALTERED" in check
    assert "no longer matches" in check
    blend = steps[steps.index('id="step-3"') : steps.index('id="step-4"')]
    assert "ALTERED" not in blend


def test_record_without_verification_verdict_is_not_called_altered(
    record: dict, recipe_yaml: str
) -> None:
    # Records written before signature_verified existed carry no verdict either way.
    assert all("signature_verified" not in step for step in record["steps"])
    assert "ALTERED" not in render_html(record, recipe_yaml)


def test_step_events_appear_in_the_step(record: dict, recipe_yaml: str) -> None:
    html = render_html(_with_exceptions(record), recipe_yaml)
    steps = html[html.index("Executed steps") :]
    blend = steps[steps.index('id="step-3"') : steps.index('id="step-4"')]
    assert "Lid gasket looks worn" in blend
    assert "PLC reported fault 17" in blend


@pytest.mark.parametrize(
    ("state", "decision", "expected"),
    [
        ("released", "released", "RELEASED"),
        ("rejected", "rejected", "REJECTED"),
        ("aborted", None, "ABORTED"),
        ("complete", None, "NOT RELEASED (COMPLETE)"),
    ],
)
def test_cover_states_the_outcome(
    record: dict, recipe_yaml: str, state: str, decision: str | None, expected: str
) -> None:
    record["batch"]["state"] = state
    if decision is None:
        record["release"] = None
    else:
        record["release"]["decision"] = decision
    html = render_html(record, recipe_yaml)
    cover = html[: html.index("Review by exception")]
    assert f'<span class="run-state">{expected}</span>' in cover
    if state in ("rejected", "aborted"):
        assert "must not be released" in cover


def test_aborted_cover_gives_the_abort_reason(record: dict, recipe_yaml: str) -> None:
    record["batch"]["state"] = "aborted"
    record["release"] = None
    record["audit"].append(
        _event(
            "2026-11-21T22:36:00+00:00",
            "supervisor",
            "batch.aborted",
            **{"from": "held", "reason": "Blend contaminated", "sha256": "ef"},
        )
    )
    html = render_html(record, recipe_yaml)
    assert "Blend contaminated" in html[: html.index("Review by exception")]
    assert ">ABORT<" in _review(html)


def test_rejection_reason_comes_from_the_audit_when_the_record_has_none(
    record: dict, recipe_yaml: str
) -> None:
    record["batch"]["state"] = "rejected"
    record["release"]["decision"] = "rejected"
    record["release"]["reason"] = ""
    record["audit"].append(
        _event(
            "2026-11-21T22:39:00+00:00",
            "qa",
            "batch.rejected",
            reason="Out-of-specification MCC weight",
            sha256="01",
        )
    )
    html = render_html(record, recipe_yaml)
    assert html.count("Out-of-specification MCC weight") >= 2  # cover and release section


def test_signatures_show_their_manifestation(record: dict, recipe_yaml: str) -> None:
    html = render_html(record, recipe_yaml)
    # Printed name, meaning and date-time with its UTC offset (21 CFR 11.50).
    assert "Olivia Operator" in html
    assert '<span class="meaning">performed</span>' in html
    # Without a site time zone the record prints UTC, offset explicit.
    assert "2026-11-21 22:46:10 UTC (UTC+00:00)" in html
    assert "Quinn Quality" in html


def test_times_are_printed_in_the_site_time_zone_with_offset(
    record: dict, recipe_yaml: str
) -> None:
    record["site"] = {"name": "Basel plant", "time_zone": "Europe/Zurich"}
    html = render_html(record, recipe_yaml)
    # 22:46:10 UTC on 21 November is 23:46:10 CET, whatever offset it was recorded with.
    assert "2026-11-21 23:46:10 CET (UTC+01:00)" in html
    assert "times in Europe/Zurich" in html
    record["site"]["time_zone"] = "Mars/Olympus"
    with pytest.raises(RenderError, match="Mars/Olympus"):
        render_html(record, recipe_yaml)


def test_full_document_renders_with_all_exceptions(record: dict, recipe_yaml: str) -> None:
    rendered = render_batch_record(_with_exceptions(record), recipe_yaml)
    assert rendered.pages >= 3


def test_same_record_renders_to_identical_bytes(record: dict, recipe_yaml: str) -> None:
    # Font subsets carry a modification time; it is pinned to the record's generated_at,
    # so nothing in the unsigned PDF depends on when or where it was rendered.
    first = render_batch_record(copy.deepcopy(record), recipe_yaml).pdf
    second = render_batch_record(copy.deepcopy(record), recipe_yaml).pdf
    assert first == second


def test_rendering_leaves_the_process_environment_alone(
    record: dict, recipe_yaml: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    render_batch_record(record, recipe_yaml)
    assert "SOURCE_DATE_EPOCH" not in os.environ


def _new_kind_steps() -> list[dict[str, Any]]:
    def step(step_id: str, kind: str, title: str, values: dict, plan: dict, result: str = "pass"):
        return {"step_id": step_id, "kind": kind, "title": title,
                "instruction": f"Do {title.lower()}.", "unit_procedure": "cook",
                "operation": "cook", "result": result, "values": values, "unit": None,
                "limits": None, "device": None, "comment": "", "signature": None,
                "plan": plan}

    return [
        step("c/c/set-temp", "plc_set", "Set cook temperature",
             {"value": "72.0", "unit": "degC", "read_back": "72.0"},
             {"tag": "setpoint_temp", "setpoint": "72.0", "unit": "degC"}),
        step("c/c/core", "check", "Core temperature",
             {"value": "71.2", "unit": "degC"},
             {"limits": {"low": "70.0", "high": "80.0", "unit": "degC"},
              "alert_limits": {"low": "71.5", "high": "78.0", "unit": "degC"},
              "value_label": "Core temperature", "on_fail": "hold"}),
        step("c/c/yield", "calc", "Yield", {"value": "96.4", "unit": "%"},
             {"expression": "out / in * 100", "decimals": 1, "unit": "%"}),
        step("c/c/label", "label", "Print label", {"printed": "LBL-0001"},
             {"label_template": "batch-label"}),
        step("c/c/qa", "signoff", "QA line clearance", {"confirmed": "yes"},
             {"perform_role": "qa", "sign_meaning": "approved"}),
        step("c/c/future", "vacuum_pack", "Vacuum pack", {"pressure": "12", "unit": "mbar"},
             {"vacuum_mbar": "15", "equipment_role": "packer"}),
    ]


def test_new_phase_kinds_print_what_was_planned_and_recorded(
    record: dict, recipe_yaml: str
) -> None:
    record["steps"] += _new_kind_steps()
    html = render_html(record, recipe_yaml)
    steps = html[html.index("Executed steps"):]
    for expected in (
        "PLC setpoint", "setpoint_temp", "72.0 degC", "Read back",  # plc_set
        "Alert limits", "71.5 \u2013 78.0 degC", "hold for QA (deviation)",  # entry + alert
        "Calculation", "out / in * 100",  # calc
        "batch-label", "LBL-0001",  # label
        "Sign-off", "Performed by role", "approved",  # signoff
        "Vacuum pack", "Vacuum mbar", "15", "Pressure",  # a kind this renderer never saw
    ):
        assert expected in steps, expected
    review = _review(html)
    assert ">ALERT<" in review and "Core temperature" in review
    assert "alert limits 71.5 to 78.0 degC" in review
