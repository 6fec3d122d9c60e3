"""Markup typed into any free-text field of a batch is printed as text in the signed eBMR.

A batch written to a real record store with the built-in WMS and QMS, every free-text
field carrying its own piece of HTML/script; the published PDF (WeasyPrint, sealed by
pyHanko) is read back with pypdf: each piece appears literally in the page text, and the
PDF holds no script or link, and no attachment but the record's own two.
"""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.reports import ReportActivities
from qms.builtin import BuiltinQms
from qms.messages import DispositionRequest, NoteRequest, OpenDeviationRequest
from reports.pki import ensure_signing_identity
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from store.recipes import RecipeStore
from tests.sample_plan import PLAN
from wms.builtin import BuiltinWms
from workflows.messages import (
    ReleaseRecordInput,
    ReportInput,
    SignatureIntent,
    Signer,
    StateChangeRecordInput,
    StepRecordInput,
    WeightReading,
)

pypdf = pytest.importorskip("pypdf", reason="pypdf is in the test extras: make install")

BATCH = "B-MARKUP"
OPERATOR = Signer(3, "operator", "Olivia Operator", ["operator"])
SUPERVISOR = Signer(4, "supervisor", "Sam Supervisor", ["supervisor"])
QA = Signer(5, "qa", "Quinn Quality", ["qa"])

# One piece per field, each naming its field, so a missing one says which field lost it.
FIELDS = ("product", "comment", "correction", "hold", "restart", "devtitle", "devtext",
          "devnote", "rationale", "release")


def markup(field: str) -> str:
    return f"<script>x('{field}')</script><b>{field}</b>"


def sig(signer: Signer, meaning: str, at: str) -> SignatureIntent:
    return SignatureIntent(signer=signer, meaning=meaning, signed_at=at)


def run_marked_batch(engine) -> BatchRecordStore:  # type: ignore[no-untyped-def]
    store = BatchRecordStore(engine, site_name="Test plant", site_timezone="UTC")
    plan = dataclasses.replace(PLAN, product_name=markup("product"))
    store.create_batch(BATCH, plan, {"scale": "SCALE-01", "mixer": "MIXER-01"}, "supervisor")
    weigh, lod = PLAN.steps[0], next(s for s in PLAN.steps if s.kind == "check")
    reading = WeightReading(equipment_id="SCALE-01", value="1200.00", unit="g",
                            device_value="1.20000", device_unit="kg",
                            raw_frames=["S S      1.20000 kg"], device_serial="B1",
                            read_at="2026-11-21T22:31:00+00:00", in_tolerance=True)
    store.record_step(StepRecordInput(
        BATCH, weigh.step_id, "u-weigh", "weigh", weigh.title, "pass",
        {"value": "1200.00", "unit": "g", "comment": markup("comment")},
        sig(OPERATOR, "performed", "2026-11-21T22:31:05+00:00"), reading=reading))
    store.record_step(StepRecordInput(
        BATCH, lod.step_id, "u-lod", "check", lod.title, "pass",
        {"value": "1.2", "unit": "percent"}, sig(OPERATOR, "performed", "2026-11-21T22:40:00Z")))
    store.record_step(StepRecordInput(
        BATCH, lod.step_id, "u-lod-2", "check", lod.title, "pass",
        {"value": "1.6", "unit": "percent"}, sig(SUPERVISOR, "performed", "2026-11-21T22:45:00Z"),
        reason=markup("correction")))
    store.record_state_change(StateChangeRecordInput(
        BATCH, "u-hold", "running", "held", markup("hold"),
        sig(SUPERVISOR, "held", "2026-11-21T22:50:00+00:00")))
    store.record_state_change(StateChangeRecordInput(
        BATCH, "u-restart", "held", "running", markup("restart"),
        sig(SUPERVISOR, "restarted", "2026-11-21T23:20:00+00:00")))
    qms = BuiltinQms(engine, BuiltinWms(engine))
    ref = qms.open_deviation(OpenDeviationRequest(
        key=f"deviation:{BATCH}:lod", batch_id=BATCH, phase_instance=lod.step_id,
        classification="minor", title=markup("devtitle"), description=markup("devtext"),
        actor="operator", lots=[], origin="operator"))
    qms.add_note(NoteRequest(key="n1", deviation_id=ref.deviation_id, note=markup("devnote"),
                             actor="qa"))
    qms.disposition(DispositionRequest(
        key="d1", deviation_id=ref.deviation_id, disposition="accept",
        rationale=markup("rationale"), capa_ref="",
        signature=sig(QA, "reviewed", "2026-11-21T23:30:00+00:00")))
    store.record_release(ReleaseRecordInput(
        BATCH, "u-release", "released", markup("release"),
        sig(QA, "released", "2026-11-21T23:40:00+00:00")))
    return store


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    var = tmp_path_factory.mktemp("markup")
    engine = make_engine(f"sqlite:///{var / 'ebr.db'}")
    create_schema(engine)
    store = run_marked_batch(engine)
    identity = ensure_signing_identity(var / "pki", b"pass")
    activities = ReportActivities(store, RecipeStore(engine), var / "reports", identity,
                                  "Test plant")
    ref = ActivityEnvironment().run(activities.publish_report, ReportInput(batch_id=BATCH))
    return Path(ref.path).read_bytes()


def page_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "".join(page.extract_text() or "" for page in reader.pages)
    return re.sub(r"\s+", "", text)  # line wrapping may split a piece anywhere


@pytest.mark.parametrize("field", FIELDS)
def test_markup_in_each_free_text_field_is_printed_as_text(published: bytes, field: str):
    assert re.sub(r"\s+", "", markup(field)) in page_text(published)


def test_the_pdf_holds_no_script_or_link_and_only_its_own_attachments(published: bytes):
    for marker in (b"/JavaScript", b"/JS", b"/Launch", b"/URI", b"/OpenAction"):
        assert marker not in published, marker
    attached = set(pypdf.PdfReader(io.BytesIO(published)).attachments)
    assert attached == {"record.json", "recipe.yaml"}
