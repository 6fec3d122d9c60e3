"""A batch run against an external WMS and QMS (the HTTP adapters, talking to fake
systems on loopback backed by their own database): its executed record still lists the
issued lots and quantities and the deviation with QA's disposition, from what ebr
journaled when those systems confirmed them; the rendered eBMR names the systems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from qms import messages as q
from qms.builtin import BuiltinQms
from qms.http_adapter import HttpQms
from qms.port import QmsError
from reports.render import render_html
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from store.external_journal import WMS_ISSUED, JournaledQms, JournaledWms
from store.models import AuditEvent
from tests.sample_plan import PLAN_CONNECTED
from tests.wms.fake_server import FakeServer, serve
from tests.workflows.conftest import _rig
from tests.workflows.rig import OPERATOR, QA_USER, Rig, complete_when_mixed, sign
from tests.workflows.test_materials_and_deviations import DISCHARGE, LOD, WEIGH, dispose, weigh
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.http_adapter import HttpWms
from wms.models import Movement
from wms.port import WmsError
from wms.seed import seed_inventory
from workflows.batch import BatchWorkflow
from workflows.messages import CompleteStepRequest, ReleaseRequest, StateQuery


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[FakeServer, FakeServer]]:
    """The external WMS and QMS: ebr's built-ins on a database of their own, behind HTTP,
    so nothing they do lands in the record store's WMS/QMS tables."""
    engine = make_engine(f"sqlite:///{tmp_path / 'external.db'}")
    create_schema(engine)
    seed_inventory(engine)
    wms = BuiltinWms(engine)
    qms = BuiltinQms(engine, wms)
    wms_routes = {
        "scan/verify": (wms.verify_scan, m.ScanRequest),
        "reservations": (wms.reserve, m.ReserveRequest),
        "picks": (wms.pick, m.PickRequest),
        "issues": (wms.issue, m.IssueRequest),
        "returns": (wms.return_material, m.ReturnRequest),
        "outputs": (wms.record_output, m.OutputRequest),
        "lots/get": (wms.lot, m.LotQuery),
        "genealogy/backward": (wms.backward, m.GenealogyQuery),
    }
    qms_routes = {
        "deviations/open": (qms.open_deviation, q.OpenDeviationRequest),
        "deviations/notes": (qms.add_note, q.NoteRequest),
        "deviations/disposition": (qms.disposition, q.DispositionRequest),
        "deviations/open-for-batch": (qms.open_deviations, q.OpenDeviationsQuery),
    }
    try:
        with (serve(FakeServer(routes=wms_routes, business_errors=(WmsError,))) as fake_wms,
              serve(FakeServer(routes=qms_routes, business_errors=(QmsError,))) as fake_qms):
            yield fake_wms, fake_qms
    finally:
        engine.dispose()


@pytest.fixture
async def external_rig(temporal_env, engine: Engine, tmp_path: Path,  # type: ignore[no-untyped-def]
                       remote: tuple[FakeServer, FakeServer]) -> AsyncIterator[Rig]:
    fake_wms, fake_qms = remote
    store = BatchRecordStore(engine, external_wms_url=fake_wms.url,
                             external_qms_url=fake_qms.url)
    wms = JournaledWms(HttpWms(fake_wms.url, timeout_s=5.0), engine, fake_wms.url)
    qms = JournaledQms(HttpQms(fake_qms.url, timeout_s=5.0), engine, fake_qms.url)
    try:
        async with _rig(temporal_env, engine, tmp_path, store=store, wms=wms, qms=qms) as made:
            yield made
    finally:
        wms.close()
        qms.close()


async def test_the_record_lists_external_issues_and_deviations(external_rig, remote):
    rig = external_rig
    fake_wms, fake_qms = remote
    handle = await rig.start(plan=PLAN_CONNECTED, connected=True)
    await weigh(handle, rig)
    await complete_when_mixed(handle)
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(LOD, sign(OPERATOR), "2.7"))
    view = await handle.query(BatchWorkflow.view, StateQuery())
    (deviation_id, _), = view.open_deviations.items()
    await handle.execute_update(BatchWorkflow.disposition, dispose(deviation_id, "accept"))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(DISCHARGE, sign(OPERATOR)))
    await handle.execute_update(BatchWorkflow.release, ReleaseRequest(sign(QA_USER, "released")))

    # The calls crossed the wire; the record store's own WMS tables stayed empty.
    assert "issues" in [path for path, _, _ in fake_wms.seen]
    assert "deviations/disposition" in [path for path, _, _ in fake_qms.seen]
    with Session(rig.store.engine) as session:
        assert session.exec(select(Movement).where(Movement.batch_id == handle.id)).all() == []

    record = rig.store.assemble_record(handle.id)
    steps = {s["step_id"]: s for s in record["steps"]}
    issued = [mv for mv in steps[WEIGH]["materials"] if mv["kind"] == "issue"]
    assert [(mv["lot_number"], Decimal(mv["quantity"]), mv["unit"]) for mv in issued] in (
        [("ASC-2601", Decimal("1200"), "g")], [("ASC-2601", Decimal("1.2"), "kg")])
    assert issued[0]["recorded_by"] == f"external WMS {fake_wms.url}"
    inputs = record["genealogy"]["inputs"]
    assert [lot["lot_number"] for lot in inputs] == ["ASC-2601"]
    assert fake_wms.url in record["genealogy"]["source"]

    (dev,) = record["deviations"]
    assert (dev["deviation_id"], dev["phase_instance"], dev["disposition"], dev["status"]) == (
        deviation_id, LOD, "accept", "closed")
    assert dev["signature"]["full_name"] == QA_USER.full_name
    assert dev["rationale"] == "Re-tested on a fresh sample"
    assert set(record["external_systems"]) == {"wms", "qms"}
    assert fake_qms.url in record["external_systems"]["qms"]

    text = render_html(record, "")
    assert "ASC-2601" in text and deviation_id in text and "ACCEPT" in text
    assert f"External WMS:</b> material issues recorded by the external WMS {fake_wms.url}" in text


def test_a_retried_issue_is_journaled_once(engine: Engine, remote):
    fake_wms, _ = remote
    wms = JournaledWms(HttpWms(fake_wms.url, timeout_s=5.0), engine, fake_wms.url)
    request = m.IssueRequest(key=m.issue_key("B-J", "d/w/weigh-a", 1), batch_id="B-J",
                             phase_instance="d/w/weigh-a", line=1, material_code="RM-ASC",
                             lot_number="ASC-2601", quantity="250", unit="g", actor="op")
    try:
        first, again = wms.issue(request), wms.issue(request)
    finally:
        wms.close()
    assert (first.replayed, again.replayed) == (False, True)
    with Session(engine) as session:
        journaled = session.exec(
            select(AuditEvent).where(AuditEvent.action == WMS_ISSUED)).all()
    assert [e.subject for e in journaled] == ["B-J/d/w/weigh-a"]


def test_a_batch_that_journaled_nothing_still_names_its_external_systems(engine: Engine):
    store = BatchRecordStore(engine, external_wms_url="http://wms.example/v1")
    store.create_batch("B-E", PLAN_CONNECTED, {}, "sup")
    record = BatchRecordStore(engine).assemble_record("B-E")  # configuration changed since
    assert record["external_systems"] == {"wms": (
        "material issues recorded by the external WMS http://wms.example/v1: this record "
        "lists those ebr journaled when the WMS confirmed them")}
    assert "see the external WMS named above" in render_html(record, "")
    # A batch on the built-in WMS/QMS names no external system.
    BatchRecordStore(engine).create_batch("B-B", PLAN_CONNECTED, {}, "sup")
    assert BatchRecordStore(engine).assemble_record("B-B")["external_systems"] == {}


def test_a_deviation_not_dispositioned_through_ebr_says_where_to_look(engine: Engine, remote):
    _, fake_qms = remote
    store = BatchRecordStore(engine, external_qms_url=fake_qms.url)
    store.create_batch("B-Q", PLAN_CONNECTED, {}, "sup")
    qms = JournaledQms(HttpQms(fake_qms.url, timeout_s=5.0), engine, fake_qms.url)
    try:
        ref = qms.open_deviation(q.OpenDeviationRequest(
            key="op-1", batch_id="B-Q", phase_instance=LOD, classification=q.MINOR,
            title="Label smudged", description="Relabelled the drum", actor="olivia"))
        qms.add_note(q.NoteRequest(key="note-1", deviation_id=ref.deviation_id,
                                   note="Printer ribbon worn", actor="qa"))
    finally:
        qms.close()
    (dev,) = store.assemble_record("B-Q")["deviations"]
    assert (dev["title"], dev["disposition"], [n["note"] for n in dev["notes"]]) == (
        "Label smudged", "", ["Printer ribbon worn"])
    assert dev["rationale"] == f"not recorded through ebr: see the external QMS {fake_qms.url}"
    assert "No disposition was signed through ebr" in render_html(
        store.assemble_record("B-Q"), "")
