"""The built-in QMS: deviation lifecycle with a signed disposition, and lot holds/releases
that the WMS enforces at once."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from qms import messages as q
from qms.port import (
    DeviationClosed,
    DispositionRefused,
    InvalidDeviation,
    LotHasOpenDeviation,
    QmsIdempotencyConflict,
)
from store.audit import verify_chain
from tests.qms.conftest import signature
from wms import messages as m
from wms.port import LotOnHold


def open_major(qms, key: str = "d-1", lots: list[str] | None = None) -> q.DeviationRef:
    return qms.open_deviation(q.OpenDeviationRequest(
        key=key, batch_id="B-1", phase_instance="dispensing/weigh/weigh-ascorbic-acid#1",
        classification=q.MAJOR, title="Weight out of tolerance",
        description="1213.4 g dispensed against 1200 g +/- 1 %", actor="workflow",
        lots=lots or ["ASC-2601"], origin=q.AUTOMATIC))


def test_deviation_lifecycle_open_investigate_disposition(qms, engine):
    ref = open_major(qms)
    assert ref.deviation_id == "DEV-000001" and ref.status == q.OPEN
    assert open_major(qms).replayed  # the workflow's retry opens no second deviation
    assert [d.deviation_id for d in qms.open_deviations(q.OpenDeviationsQuery("B-1")).deviations
            ] == ["DEV-000001"]

    qa = signature("quinn", ["qa"])
    decision = q.DispositionRequest(key="disp-1", deviation_id=ref.deviation_id,
                                    disposition=q.ACCEPT, rationale="Within validated range",
                                    signature=qa, capa_ref="CAPA-2026-014")
    with pytest.raises(DispositionRefused, match="record the investigation"):
        qms.disposition(decision)
    note = qms.add_note(q.NoteRequest(key="n-1", deviation_id=ref.deviation_id,
                                      note="Scale verified; operator overshot", actor="sam"))
    assert note.status == q.INVESTIGATING
    with pytest.raises(DispositionRefused, match="CAPA reference"):
        qms.disposition(q.DispositionRequest(key="disp-0", deviation_id=ref.deviation_id,
                                             disposition=q.ACCEPT, rationale="ok", signature=qa))
    assert qms.disposition(decision).status == q.CLOSED

    closed = qms.deviation(q.DeviationQuery(ref.deviation_id))
    assert (closed.disposition, closed.disposition_by, closed.capa_ref) == (
        q.ACCEPT, "quinn", "CAPA-2026-014")
    assert len(closed.signature_hash) == 64 and closed.notes[0].author == "sam"
    assert qms.open_deviations(q.OpenDeviationsQuery("B-1")).deviations == []
    with pytest.raises(DeviationClosed):
        qms.add_note(q.NoteRequest(key="n-2", deviation_id=ref.deviation_id, note="late",
                                   actor="sam"))
    with Session(engine) as s:
        assert verify_chain(s).ok


def test_disposition_needs_qa_and_a_second_person(qms):
    ref = qms.open_deviation(q.OpenDeviationRequest(
        key="d-2", batch_id="B-1", phase_instance="p#1", classification=q.MINOR,
        title="Label torn", description="Container label torn on arrival", actor="quinn"))
    request = q.DispositionRequest(key="x", deviation_id=ref.deviation_id,
                                   disposition=q.ACCEPT, rationale="Relabelled",
                                   signature=signature("sam", ["supervisor"]))
    with pytest.raises(DispositionRefused, match="QA role"):
        qms.disposition(request)
    with pytest.raises(DispositionRefused, match="another QA person"):
        qms.disposition(q.DispositionRequest(key="y", deviation_id=ref.deviation_id,
                                             disposition=q.ACCEPT, rationale="Relabelled",
                                             signature=signature("quinn", ["qa"])))
    done = qms.disposition(q.DispositionRequest(key="z", deviation_id=ref.deviation_id,
                                                disposition=q.REWORK, rationale="Relabel",
                                                signature=signature("quentin", ["qa"])))
    assert done.status == q.CLOSED


def test_invalid_deviations_and_reused_keys_are_refused(qms):
    with pytest.raises(InvalidDeviation, match="minor, major, critical"):
        qms.open_deviation(q.OpenDeviationRequest(key="d", batch_id="B-1", phase_instance="p",
                                                  classification="severe", title="t",
                                                  description="d", actor="sam"))
    open_major(qms)
    with pytest.raises(QmsIdempotencyConflict):
        open_major(qms, lots=["ASC-2602"])


def test_qms_hold_blocks_the_next_issue_and_release_waits_for_deviations(qms, wms):
    ref = open_major(qms, lots=["ASC-2601"])
    changed = qms.hold_lot(q.LotHoldRequest(key="h-1", lot_number="ASC-2601",
                                            reason="Suspected contamination", actor="quinn",
                                            deviation_id=ref.deviation_id))
    assert (changed.old_status, changed.status) == (m.RELEASED, m.ON_HOLD)
    with pytest.raises(LotOnHold, match="DEV-000001"):
        wms.issue(m.IssueRequest(key="i-1", batch_id="B-2", phase_instance="p", line=1,
                                 material_code="RM-ASC", lot_number="ASC-2601", quantity="1",
                                 unit="kg", actor="olivia"))
    release = q.LotReleaseRequest(key="rel-1", lot_number="ASC-2601", reason="Assay passes",
                                  signature=signature("quentin", ["qa"]))
    with pytest.raises(LotHasOpenDeviation, match="DEV-000001"):
        qms.release_lot(release)
    qms.add_note(q.NoteRequest(key="n", deviation_id=ref.deviation_id, note="Retested",
                               actor="sam"))
    qms.disposition(q.DispositionRequest(key="disp", deviation_id=ref.deviation_id,
                                         disposition=q.ACCEPT, rationale="Assay passes",
                                         signature=signature("quentin", ["qa"]),
                                         capa_ref="CAPA-1"))
    assert qms.release_lot(release).status == m.RELEASED
    assert qms.release_lot(release).replayed
    wms.issue(m.IssueRequest(key="i-2", batch_id="B-2", phase_instance="p", line=1,
                             material_code="RM-ASC", lot_number="ASC-2601", quantity="1",
                             unit="kg", actor="olivia"))


def test_only_qa_releases_lots(qms):
    with pytest.raises(DispositionRefused, match="only QA releases"):
        qms.release_lot(q.LotReleaseRequest(key="r", lot_number="MCC-2602", reason="ok",
                                            signature=signature("sam", ["supervisor"])))


def test_a_qms_hold_on_a_reserved_lot_blocks_its_pick_at_once(qms, wms):
    reserved = wms.reserve(m.ReserveRequest(key="res-1", batch_id="B-3", phase_instance="p#1",
                                            line=1, material_code="RM-ASC", quantity="2",
                                            unit="kg", actor="olivia"))
    (line,) = reserved.picks
    assert line.lot_number == "ASC-2601"
    qms.hold_lot(q.LotHoldRequest(key="h-2", lot_number="ASC-2601", reason="Foreign particle",
                                  actor="quinn"))
    with pytest.raises(LotOnHold, match="Foreign particle"):
        wms.pick(m.PickRequest(key="pick-1", batch_id="B-3", phase_instance="p#1", line=1,
                               lot_number="ASC-2601", from_bin=line.bin_code,
                               to_bin="DISP-STAGE", quantity="2", unit="kg", actor="olivia"))
    # A new reservation goes to the next released lot by FEFO.
    again = wms.reserve(m.ReserveRequest(key="res-2", batch_id="B-3", phase_instance="p#1",
                                         line=1, material_code="RM-ASC", quantity="2",
                                         unit="kg", actor="olivia"))
    assert [p.lot_number for p in again.picks] == ["ASC-2602"]
