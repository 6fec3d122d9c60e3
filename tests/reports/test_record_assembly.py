"""The record assembly gathers everything the eBMR prints from the stores themselves:
materials with lots and expiry per phase, corrections, deviations with dispositions,
genealogy and the site's time zone; and the printed document shows each of them."""

from __future__ import annotations

from typing import Any

import pytest

from reports.render import render_html
from store.db import create_schema, make_engine
from tests.reports.site_batch import BATCH, LOD, WEIGH, run_site_batch


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('site') / 'ebr.db'}")
    create_schema(engine)
    store = run_site_batch(engine)
    # A batch whose id starts like this one must not lend it its audit entries.
    run_site_batch(engine, batch_id=f"{BATCH}0")
    return store.assemble_record(BATCH, generated_at="2026-11-21T23:45:00+00:00")


def _step(record: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in record["steps"] if s["step_id"] == step_id)


def test_record_carries_the_site_and_its_time_zone(record: dict[str, Any]) -> None:
    assert record["site"] == {"name": "Test plant", "time_zone": "Europe/Zurich"}
    assert record["generated_at"] == "2026-11-21T23:45:00+00:00"


def test_each_phase_lists_the_lots_issued_to_it_with_expiry(record: dict[str, Any]) -> None:
    moved = _step(record, WEIGH)["materials"]
    assert [(m["lot_number"], m["quantity"], m["unit"], m["expiry"]) for m in moved] == [
        ("LOT-A1", "700", "g", "2028-01-31"),
        ("LOT-A2", "500", "g", "2029-06-30"),
    ]
    assert {m["kind"] for m in moved} == {"issue"}
    assert moved[0]["supplier_lot"] == "S-LOT-A1" and moved[0]["lot_status"] == "released"


def test_device_identity_and_what_the_instrument_reported(record: dict[str, Any]) -> None:
    device = _step(record, WEIGH)["device"]
    assert device["serial"] == "B123456789"
    assert (device["device_value"], device["device_unit"]) == ("1.20000", "kg")
    assert _step(record, WEIGH)["equipment_id"] == "SCALE-01"


def test_planned_details_travel_with_each_step(record: dict[str, Any]) -> None:
    plan = _step(record, LOD)["plan"]
    assert plan["limits"] == {"low": "0.0", "high": "2.0", "unit": "percent"}
    assert plan["value_label"] == "Loss on drying"
    assert "title" not in plan and "instruction" not in plan


def test_correction_keeps_the_original_value_and_gives_the_reason(record: dict[str, Any]) -> None:
    lod = _step(record, LOD)
    assert lod["values"]["value"] == "1.6" and lod["version"] == 2
    assert lod["correction_reason"].startswith("Transcription error")
    (original,) = lod["corrections"]
    assert original["values"]["value"] == "2.6" and original["result"] == "fail"
    assert original["signature"]["full_name"] == "Olivia Operator"


def test_deviation_with_notes_and_signed_disposition(record: dict[str, Any]) -> None:
    (dev,) = record["deviations"]
    assert dev["phase_instance"] == LOD and dev["classification"] == "major"
    assert dev["status"] == "closed" and dev["disposition"] == "accept"
    assert dev["capa_ref"] == "CAPA-9"
    assert [n["note"] for n in dev["notes"]] == ["Balance printout shows 1.6 %"]
    assert dev["signature"]["full_name"] == "Quinn Quality"
    assert dev["signature"]["meaning"] == "reviewed"
    assert len(dev["signature_hash"]) == 64


def test_genealogy_names_input_lots_quantities_and_the_output_lot(record: dict[str, Any]) -> None:
    genealogy = record["genealogy"]
    assert [(i["lot_number"], i["quantity"], i["material_name"]) for i in genealogy["inputs"]] == [
        ("LOT-A1", "700", "Material A"),
        ("LOT-A2", "500", "Material A"),
    ]
    assert [o["lot_number"] for o in genealogy["outputs"]] == [f"{BATCH}-OUT"]
    assert {link["input_lot"] for link in genealogy["links"]} == {"LOT-A1", "LOT-A2"}


def test_audit_trail_is_this_batch_only(record: dict[str, Any]) -> None:
    subjects = {entry["subject"] for entry in record["audit"]}
    assert subjects and all(s == BATCH or s.startswith(f"{BATCH}/") for s in subjects)
    assert all(len(entry["hash"]) == 64 for entry in record["audit"])


def test_the_document_prints_every_section(record: dict[str, Any]) -> None:
    html = render_html(record, "recipe: t\n")
    review = html[html.index("Review by exception"): html.index("Materials and genealogy")]
    for kind in ("CORRECTION", "DEVIATION", "HOLD", "RESTART"):
        assert f">{kind}<" in review, kind
    # The corrected failure shows both values and both verdicts on page 2.
    assert "Value 2.6 percent (FAIL) corrected to Value 1.6 percent (PASS)" in review
    assert "DEV-000001" in review and 'href="#deviation-1"' in review
    for expected in (
        "LOT-A1", "S-LOT-A1", "2029-06-30", f"{BATCH}-OUT",  # lots, expiry, genealogy
        "the instrument reported 1.20000 kg",
        "Transcription error: the balance printout says 1.6",  # correction reason
        "Balance printout shows 1.6 %", "CAPA-9", "ACCEPT",  # deviation and disposition
        "Mixer noise, checking the gearbox", "Gearbox checked, no fault",  # hold, restart
        "Quinn Quality",
        "times in Europe/Zurich",
        "2026-11-21 23:31:05 CET (UTC+01:00)",  # the weighing signature, site local time
    ):
        assert expected in html, expected
    steps = html[html.index("Executed steps"):]
    lod = steps[steps.index("LOD"):]
    # The original (2.6, FAIL) is printed beside the corrected value with its signer.
    assert "2.6" in lod and "1.6" in lod and "Olivia Operator" in lod


def test_review_links_to_deviations_and_corrections_land_in_the_pdf(
    record: dict[str, Any]
) -> None:
    from weasyprint import HTML

    from reports.render import PackageAssetFetcher

    document = HTML(string=render_html(record, "recipe: t\n"),
                    url_fetcher=PackageAssetFetcher()).render()
    anchors = {name: i for i, page in enumerate(document.pages) for name in page.anchors}
    targets = {link[1] for link in document.pages[1].links if link[0] == "internal"}
    assert "deviation-1" in targets and "step-2" in targets  # deviation, correction
    for target in targets:
        assert anchors.get(target, 0) >= 1, target
