"""The built-in WMS on a real SQLite store: FEFO, refusals, exactly-once issue, genealogy."""

from __future__ import annotations

import concurrent.futures
from datetime import date

import pytest
from sqlmodel import Session, select

from store.audit import verify_chain
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.models import Movement
from wms.port import (
    BadQuantity,
    IdempotencyConflict,
    InsufficientStock,
    LotExpired,
    LotNotReleased,
    LotOnHold,
    WrongMaterial,
)
from wms.seed import seed_inventory


def on_hand(wms: BuiltinWms, lot: str) -> str:
    return wms.lot(m.LotQuery(lot)).on_hand


def issue(lot: str, qty: str, unit: str = "kg", *, batch: str = "B-1", line: int = 1,
          material: str = "RM-ASC", phase: str = "dispensing/weigh/weigh-ascorbic-acid#1",
          key: str | None = None, bin_code: str = "") -> m.IssueRequest:
    return m.IssueRequest(key=key or m.issue_key(batch, phase, line), batch_id=batch,
                          phase_instance=phase, line=line, material_code=material,
                          lot_number=lot, quantity=qty, unit=unit, actor="olivia",
                          bin_code=bin_code)


def reserve(qty: str, material: str = "RM-ASC", key: str = "r-1") -> m.ReserveRequest:
    return m.ReserveRequest(key=key, batch_id="B-1", phase_instance="p#1", line=1,
                            material_code=material, quantity=qty, unit="kg", actor="sam")


def test_fefo_reserves_earliest_expiry_first_and_spans_lots(wms):
    reservation = wms.reserve(reserve("30"))
    # ASC-2603 expires before ASC-2602 but is on hold; ASC-2401 is expired: both skipped.
    assert [(p.lot_number, p.quantity) for p in reservation.picks] == [
        ("ASC-2601", "25"), ("ASC-2602", "5")]
    # Reserved stock is not offered again: the next 20 kg come from ASC-2602 only.
    nxt = wms.reserve(reserve("20", key="r-2"))
    assert [(p.lot_number, p.quantity) for p in nxt.picks] == [("ASC-2602", "20")]


def test_reservation_is_replayed_not_repeated(wms):
    first = wms.reserve(reserve("10"))
    again = wms.reserve(reserve("10"))
    assert again.replayed and again.picks == first.picks
    assert wms.reserve(reserve("40", key="r-2")).picks[-1].quantity == "25"


def test_too_little_released_stock_is_refused_with_the_available_amount(wms):
    with pytest.raises(InsufficientStock, match="Only 50 kg of RM-ASC is released"):
        wms.reserve(reserve("51"))


def test_issue_converts_units_exactly(wms):
    wms.issue(issue("ASC-2601", "1200", "g"))
    assert on_hand(wms, "ASC-2601") == "23.8"
    with pytest.raises(BadQuantity, match="does not convert"):
        wms.issue(issue("ASC-2601", "5", "min", line=2))
    with pytest.raises(BadQuantity, match="positive"):
        wms.issue(issue("ASC-2601", "-1", "kg", line=3))


def test_issue_is_applied_once_under_retries(wms, engine):
    request = issue("ASC-2601", "1.2")
    first = wms.issue(request)
    retried = wms.issue(request)
    assert not first.replayed and retried.replayed
    assert on_hand(wms, "ASC-2601") == "23.8"
    with Session(engine) as s:
        assert len(s.exec(select(Movement).where(Movement.kind == "issue")).all()) == 1


def test_concurrent_retries_of_one_issue_post_once(wms, engine):
    request = issue("ASC-2601", "2")
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: wms.issue(request), range(8)))
    assert sum(not r.replayed for r in results) == 1
    assert on_hand(wms, "ASC-2601") == "23"


def test_reusing_a_key_for_a_different_issue_is_refused(wms):
    wms.issue(issue("ASC-2601", "1.2"))
    with pytest.raises(IdempotencyConflict, match="already used"):
        wms.issue(issue("ASC-2601", "1.3"))


def test_partial_pick_across_lots_then_issue_from_staging(wms):
    reservation = wms.reserve(reserve("30"))
    for n, p in enumerate(reservation.picks):
        wms.pick(m.PickRequest(key=f"pick-{n}", batch_id="B-1", phase_instance="p#1", line=1,
                               lot_number=p.lot_number, from_bin=p.bin_code,
                               to_bin="DISP-STAGE", quantity=p.quantity, unit=p.unit,
                               actor="olivia"))
    staged = {(s["lot_number"], s["quantity"])
              for s in wms.stock() if s["bin_code"] == "DISP-STAGE"}
    assert staged == {("ASC-2601", "25"), ("ASC-2602", "5")}
    wms.issue(issue("ASC-2601", "25", phase="p#1"))
    wms.issue(issue("ASC-2602", "5", phase="p#1", line=2, key="i-2"))
    assert not [s for s in wms.stock() if s["bin_code"] == "DISP-STAGE"]
    assert on_hand(wms, "ASC-2602") == "20"


def test_issue_cannot_take_stock_reserved_for_another_line(wms):
    wms.reserve(reserve("25"))  # all of ASC-2601, for line 1 of p#1
    with pytest.raises(InsufficientStock, match="partial pick"):
        wms.issue(issue("ASC-2601", "1", batch="B-2"))


def test_expired_lot_is_refused_from_the_day_after_expiry(wms, calendar):
    wms.receive(m.ReceiptRequest(key="rc-1", material_code="RM-ASC", lot_number="ASC-T1",
                                 quantity="5", unit="kg", bin_code="WH-A-01", actor="sam",
                                 expiry="2027-01-31", status=m.RELEASED))
    calendar.day = date(2027, 1, 31)
    wms.issue(issue("ASC-T1", "1"))
    calendar.day = date(2027, 2, 1)
    with pytest.raises(LotExpired, match="ASC-T1 expired on 2027-01-31"):
        wms.issue(issue("ASC-T1", "1", line=2))
    with pytest.raises(LotExpired):
        wms.issue(issue("ASC-2401", "1", line=3))
    assert wms.lot(m.LotQuery("ASC-T1")).status == m.EXPIRED


def test_lot_past_retest_date_is_not_used(wms, calendar):
    calendar.day = date(2027, 7, 1)
    with pytest.raises(LotNotReleased, match="retest"):
        wms.issue(issue("ASC-2601", "1"))


def test_held_and_quarantined_lots_are_refused(wms):
    with pytest.raises(LotOnHold, match="ASC-2603 is on hold"):
        wms.issue(issue("ASC-2603", "1"))
    with pytest.raises(LotNotReleased, match="quarantine"):
        wms.issue(issue("MCC-2602", "1", material="RM-MCC"))


def test_a_hold_takes_effect_on_the_next_issue(wms):
    wms.issue(issue("ASC-2601", "1"))
    wms.set_lot_status(m.LotStatusRequest(key="h-1", lot_number="ASC-2601", status=m.ON_HOLD,
                                          reason="OOS assay", actor="quinn"))
    with pytest.raises(LotOnHold, match="OOS assay"):
        wms.issue(issue("ASC-2601", "1", line=2))
    # And FEFO now skips it.
    assert wms.reserve(reserve("1")).picks[0].lot_number == "ASC-2602"


def test_issuing_a_lot_of_another_material_is_refused(wms):
    with pytest.raises(WrongMaterial, match="MCC-2601 is RM-MCC"):
        wms.issue(issue("MCC-2601", "1", material="RM-ASC"))


def test_genealogy_backward_and_forward_with_returns(wms):
    wms.issue(issue("ASC-2601", "1.2", batch="B-1"))
    wms.issue(issue("MCC-2601", "0.9", batch="B-1", material="RM-MCC", line=2))
    wms.return_material(m.ReturnRequest(key="ret-1", batch_id="B-1", phase_instance="p", line=2,
                                        lot_number="MCC-2601", quantity="100", unit="g",
                                        to_bin="WH-A-01", actor="olivia"))
    with pytest.raises(BadQuantity, match=r"Only 0\.8 kg"):
        wms.return_material(m.ReturnRequest(key="ret-2", batch_id="B-1", phase_instance="p",
                                            line=2, lot_number="MCC-2601", quantity="0.9",
                                            unit="kg", to_bin="WH-A-01", actor="olivia"))
    out = wms.record_output(m.OutputRequest(key="out-1", batch_id="B-1",
                                            material_code="VC-BLEND-500", lot_number="VC-0001",
                                            quantity="1.98", unit="kg", to_bin="FG-01",
                                            actor="sam"))
    assert {(x.input_lot, x.quantity) for x in out.inputs} == {("ASC-2601", "1.2"),
                                                               ("MCC-2601", "0.8")}
    assert wms.lot(m.LotQuery("VC-0001")).status == m.QUARANTINE

    # The blend lot is released and goes into a second batch.
    wms.set_lot_status(m.LotStatusRequest(key="rel", lot_number="VC-0001", status=m.RELEASED,
                                          reason="QA release", actor="quinn"))
    wms.issue(issue("VC-0001", "1.5", batch="B-2", material="VC-BLEND-500"))
    wms.record_output(m.OutputRequest(key="out-2", batch_id="B-2", material_code="VC-BLEND-500",
                                      lot_number="VC-0002", quantity="1.5", unit="kg",
                                      to_bin="FG-01", actor="sam"))

    forward = wms.forward(m.GenealogyQuery("ASC-2601"))
    assert [(x.batch_id, x.output_lot, x.depth) for x in forward.links] == [
        ("B-1", "VC-0001", 1), ("B-2", "VC-0002", 2)]
    backward = wms.backward(m.GenealogyQuery("VC-0002"))
    assert {(x.input_lot, x.batch_id, x.quantity, x.depth) for x in backward.links} == {
        ("VC-0001", "B-2", "1.5", 1), ("ASC-2601", "B-1", "1.2", 2),
        ("MCC-2601", "B-1", "0.8", 2)}
    # A batch id works too, also while the batch has no output yet.
    wms.issue(issue("ASC-2602", "1", batch="B-3"))
    in_progress = wms.backward(m.GenealogyQuery("B-3"))
    assert [(x.input_lot, x.output_lot) for x in in_progress.links] == [("ASC-2602", "")]


def test_every_wms_write_is_audited_in_the_hash_chain(wms, engine):
    wms.issue(issue("ASC-2601", "1"))
    wms.adjust(m.AdjustRequest(key="adj-1", lot_number="ASC-2602", bin_code="WH-A-02",
                               delta="-0.5", unit="kg", reason="cycle count CC-17",
                               actor="sam"))
    wms.move(m.MoveRequest(key="mv-1", lot_number="ASC-2602", from_bin="WH-A-02",
                           to_bin="WH-A-01", quantity="4.5", unit="kg", actor="sam"))
    with Session(engine) as s:
        assert verify_chain(s).ok
        actions = {e for e in s.exec(select(Movement.kind))}
    assert {"receipt", "issue", "adjust", "move"} <= actions
    assert on_hand(wms, "ASC-2602") == "24.5"


def test_seeding_twice_changes_nothing(wms, engine):
    before = wms.stock()
    seed_inventory(engine)
    assert wms.stock() == before


@pytest.mark.parametrize("quantity", ["1E+999999999", "1E-999999999", "NaN", "0", "-1"])
def test_absurd_quantities_are_refused_before_any_arithmetic(wms, quantity):
    with pytest.raises(BadQuantity):
        wms.issue(issue("ASC-2601", quantity))
    assert on_hand(wms, "ASC-2601") == "25"
