"""publish_report end to end on a real store: the published PDF is sealed by the system,
approved in QA's name, B-LTA with the development TSA, prints the equipment register, and
verifies against the database; re-assembling the same batch renders the same document."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.reports import ReportActivities
from api.routes_reports import verify_against_store
from reports.pki import ensure_local_tsa, ensure_signing_identity
from reports.render import render_batch_record
from reports.sign import Approval, local_timestamping, seal_record
from reports.verify import verify_pdf
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from store.recipes import RecipeStore
from tests.reports.site_batch import BATCH, run_site_batch
from workflows.messages import ReportInput

REGISTER = {
    "SCALE-01": {"equipment_id": "SCALE-01", "equipment_class": "scale",
                 "description": "Bench scale", "serial_number": "B123456789",
                 "calibration_due": "2027-03-31", "cleaning_status": "clean", "cleaned_at": None},
    "MIXER-01": {"equipment_id": "MIXER-01", "equipment_class": "mixer", "description": "",
                 "serial_number": None, "calibration_due": None, "cleaning_status": "clean",
                 "cleaned_at": None},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    var = tmp_path_factory.mktemp("site")
    engine = make_engine(f"sqlite:///{var / 'ebr.db'}")
    create_schema(engine)
    store = run_site_batch(engine)
    identity = ensure_signing_identity(var / "pki", b"pass")
    tsa = ensure_local_tsa(var / "pki", b"pass")
    activities = ReportActivities(
        store, RecipeStore(engine), var / "reports", identity, "Test plant",
        timestamping=lambda: local_timestamping(tsa, lta=True),
        equipment=REGISTER.get,
    )
    ref = ActivityEnvironment().run(activities.publish_report, ReportInput(batch_id=BATCH))
    return store, identity, tsa, ref


def test_published_record_is_approved_by_qa_and_verifies_against_the_database(site) -> None:  # type: ignore[no-untyped-def]
    store, identity, tsa, ref = site
    pdf = Path(ref.path).read_bytes()
    report = verify_against_store(pdf, identity.root_cert, store, tsa_roots=[tsa.root_cert])
    assert report["ok"], report["problems"]
    assert report["level"] == "B-LTA"
    assert report["approval"]["name"] == "Quinn Quality"
    assert report["record_matches_database"] is True, report["record_differences"]
    assert report["published_copy"] is True
    assert report["audit_chain_intact"] is True
    assert report["audit_entries_verified"] >= 10  # recomputed from the PDF alone


def test_an_audit_entry_changed_before_signing_fails_offline(site) -> None:  # type: ignore[no-untyped-def]
    store, identity, _tsa, _ref = site
    record = store.assemble_record(BATCH)
    record["audit"][2]["actor"] = "someone-else"
    pdf = seal_record(render_batch_record(record, "r: 1\n").pdf, identity,
                      approval=Approval.from_record(record))
    result = verify_pdf(pdf, identity.root_cert)
    assert not result.ok
    assert any("audit entry 3" in p and "chain hash" in p for p in result.problems)


def test_equipment_register_is_printed_but_not_compared(site) -> None:  # type: ignore[no-untyped-def]
    store, identity, tsa, ref = site
    pdf = Path(ref.path).read_bytes()
    assert b"ebr.batch-record/1" in pdf or ref.pages > 0
    report = verify_against_store(pdf, identity.root_cert, store, tsa_roots=[tsa.root_cert])
    # The register snapshot is in the signed record; the database has none, and no
    # difference is reported for it.
    assert not any("equipment_register" in d for d in report["record_differences"])


def test_same_stored_batch_renders_the_same_document(site) -> None:  # type: ignore[no-untyped-def]
    store: BatchRecordStore = site[0]
    at = "2026-11-22T00:00:00+00:00"
    first = store.assemble_record(BATCH, generated_at=at)
    second = store.assemble_record(BATCH, generated_at=at)
    assert first == second
    assert render_batch_record(first, "r: 1\n").pdf == render_batch_record(second, "r: 1\n").pdf
