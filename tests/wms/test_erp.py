"""ERP boundary: process orders from a production request, stored once; when the order's
batch ends, one confirmation (good, scrap, consumption by lot) in the outbox; delivery to
a fake ERP on loopback exactly once, through outages (with backoff), a timed-out
attempt the ERP had applied, and the relay loop."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from settings.config import Settings
from store.db import transaction
from store.models import Batch
from tests.wms.fake_erp import DOWN, REFUSE, SLOW_AFTER_APPLYING, FakeErp, serve_erp
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.erp import (
    CONFIRMED,
    STARTED,
    OrderRefused,
    backoff,
    confirm_finished,
    create_process_order,
    deliver_pending,
    enqueue_confirmation,
    get_order,
    start_order,
)
from wms.erp_relay import run_relay
from wms.models import OutboxMessage
from wms.port import IdempotencyConflict

REQUEST = {"order_id": "PO-4711", "product": {"code": "VC-BLEND-500"},
           "quantity": {"value": "2", "unit": "kg"}, "due": "2026-12-01",
           "recipe": {"id": "VC-BLEND", "version": "1.0.0"}}


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def batch_row(engine: Engine, batch_id: str, state: str, size: str = "2000",
              unit: str = "g") -> None:
    with transaction(engine) as s:
        s.add(Batch(batch_id=batch_id, recipe_id="VC-BLEND", recipe_version="1.0.0",
                    recipe_sha256="0" * 64, product_code="VC-BLEND-500",
                    product_name="Vitamin C 500 mg blend", batch_size=size, batch_unit=unit,
                    plan_json=json.dumps({"steps": [{"step_id": "dispensing/weigh/weigh-mcc"}]}),
                    created_by="sam", state=state))


def set_state(engine: Engine, batch_id: str, state: str) -> None:
    with transaction(engine) as s:
        row = s.get(Batch, batch_id)
        assert row is not None
        row.state = state
        s.add(row)


def outbox(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage)))


def ordered_batch(engine: Engine, wms: BuiltinWms, batch_id: str = "B-1") -> None:
    """Order PO-4711 runs as batch B-1, which consumed 1.2 kg ASC-2601 net of a return."""
    create_process_order(engine, json.dumps(REQUEST), "erp")
    batch_row(engine, batch_id, "running")
    start_order(engine, "PO-4711", batch_id, "sam")
    wms.issue(m.IssueRequest(key="i-1", batch_id=batch_id, phase_instance="p#1", line=1,
                             material_code="RM-ASC", lot_number="ASC-2601", quantity="1.25",
                             unit="kg", actor="olivia"))
    wms.return_material(m.ReturnRequest(key="r-1", batch_id=batch_id, phase_instance="p#1",
                                        line=1, lot_number="ASC-2601", quantity="50", unit="g",
                                        to_bin="WH-A-01", actor="olivia"))


class TestProcessOrders:
    def test_production_request_becomes_one_process_order(self, engine):
        order, created = create_process_order(engine, json.dumps(REQUEST), "erp")
        assert created and (order.order_id, str(order.quantity), order.recipe_id) == (
            "PO-4711", "2", "VC-BLEND")
        assert create_process_order(engine, json.dumps(REQUEST), "erp")[1] is False
        changed = {**REQUEST, "quantity": {"value": "3", "unit": "kg"}}
        with pytest.raises(IdempotencyConflict, match="new order id"):
            create_process_order(engine, json.dumps(changed), "erp")

    @pytest.mark.parametrize(("body", "message"), [
        ("not json", "not JSON"),
        (json.dumps({k: v for k, v in REQUEST.items() if k != "recipe"}), "lacks 'recipe.id'"),
        (json.dumps({**REQUEST, "quantity": {"value": "-1", "unit": "kg"}}), "positive"),
        (json.dumps({**REQUEST, "quantity": {"value": "1E+999999999", "unit": "kg"}}),
         "out of range"),
        (json.dumps({**REQUEST, "quantity": {"value": "1", "unit": "KG"}}), "unknown unit"),
        (json.dumps({**REQUEST, "due": "tomorrow"}), "YYYY-MM-DD"),
    ])
    def test_malformed_production_requests_are_refused(self, engine, body, message):
        with pytest.raises(OrderRefused, match=message):
            create_process_order(engine, body, "erp")

    def test_an_order_runs_as_one_batch(self, engine):
        create_process_order(engine, json.dumps(REQUEST), "erp")
        assert start_order(engine, "PO-4711", "B-1", "sam").status == STARTED
        assert start_order(engine, "PO-4711", "B-1", "sam").batch_id == "B-1"  # a retry
        with pytest.raises(IdempotencyConflict, match="already runs as batch B-1"):
            start_order(engine, "PO-4711", "B-2", "sam")


class TestConfirmations:
    def test_released_batch_confirms_output_scrap_and_net_consumption_once(self, wms, engine):
        ordered_batch(engine, wms)
        assert confirm_finished(engine, wms) == 0  # still running: nothing to confirm
        wms.record_output(m.OutputRequest(key="o-1", batch_id="B-1", material_code="VC-BLEND-500",
                                          lot_number="VC-0001", quantity="1950", unit="g",
                                          to_bin="FG-01", actor="sam"))
        set_state(engine, "B-1", "released")
        assert confirm_finished(engine, wms) == 1
        assert confirm_finished(engine, wms) == 0  # the order is confirmed: once per batch
        (row,) = outbox(engine)
        payload = json.loads(row.payload_json)
        assert (row.key, row.batch_id, row.status) == ("confirmation:B-1", "B-1", "pending")
        assert (payload["good"], payload["scrap"]) == ({"value": "1.95", "unit": "kg"},
                                                       {"value": "0.05", "unit": "kg"})
        assert payload["consumption"] == [{"lot": "ASC-2601", "material": "RM-ASC",
                                           "quantity": "1.2", "unit": "kg"}]
        assert get_order(engine, "PO-4711").status == CONFIRMED

    def test_released_batch_without_recorded_output_confirms_its_batch_size(self, wms, engine):
        ordered_batch(engine, wms)
        set_state(engine, "B-1", "released")
        confirm_finished(engine, wms)
        payload = json.loads(outbox(engine)[0].payload_json)
        assert (payload["good"]["value"], payload["scrap"]["value"]) == ("2", "0")

    @pytest.mark.parametrize("state", ["rejected", "aborted"])
    def test_a_rejected_or_aborted_batch_confirms_no_good_quantity(self, wms, engine, state):
        ordered_batch(engine, wms)
        set_state(engine, "B-1", state)
        confirm_finished(engine, wms)
        payload = json.loads(outbox(engine)[0].payload_json)
        assert (payload["good"]["value"], payload["scrap"]["value"]) == ("0", "2")
        assert payload["consumption"][0]["quantity"] == "1.2"  # material was still used

    def test_enqueueing_twice_writes_one_message(self, wms, engine):
        for _ in range(2):
            enqueue_confirmation(engine, wms, order_id="PO-1", batch_id="B-9", good="1",
                                 scrap="0", unit="kg", actor="erp-relay")
        assert len(outbox(engine)) == 1


class TestDelivery:
    def test_failing_then_recovering_erp_gets_it_once_after_backoff(self, wms, engine):
        enqueue_confirmation(engine, wms, order_id="PO-1", batch_id="B-1", good="2",
                             scrap="0", unit="kg", actor="erp-relay")
        clock = Clock()
        with serve_erp(FakeErp(script=[DOWN, DOWN])) as erp:
            def round_() -> tuple[int, int]:
                r = deliver_pending(engine, erp.url, timeout_s=1, now=clock)
                return r.delivered, r.pending

            assert round_() == (0, 1)  # 503
            clock.at += timedelta(seconds=1)
            assert round_() == (0, 0)  # not due yet: backoff 2 s
            clock.at += timedelta(seconds=1)
            assert round_() == (0, 1)  # 503 again; next wait 4 s
            clock.at += timedelta(seconds=3)
            assert round_() == (0, 0)
            clock.at += timedelta(seconds=1)
            assert round_() == (1, 0)
            assert round_() == (0, 0)  # delivered: never sent again
        assert [v for _, v in erp.attempts] == ["1", "1", "1"]
        assert {k for k, _ in erp.attempts} == {"confirmation:B-1"}
        assert list(erp.ledger) == ["confirmation:B-1"]
        (row,) = outbox(engine)
        assert (row.status, row.attempts, row.next_attempt_at) == ("delivered", 3, None)

    def test_backoff_doubles_up_to_the_maximum(self):
        waits = [backoff(n, max_s=30).total_seconds() for n in range(1, 7)]
        assert waits == [2, 4, 8, 16, 30, 30]

    def test_an_attempt_the_erp_applied_but_did_not_answer_in_time_is_applied_once(
            self, wms, engine):
        enqueue_confirmation(engine, wms, order_id="PO-1", batch_id="B-1", good="2",
                             scrap="0", unit="kg", actor="erp-relay")
        clock = Clock()
        with serve_erp(FakeErp(script=[SLOW_AFTER_APPLYING])) as erp:
            first = deliver_pending(engine, erp.url, timeout_s=0.3, now=clock)
            assert first.pending == 1  # timed out: we cannot know it arrived
            assert "ReadTimeout" in outbox(engine)[0].last_error
            clock.at += timedelta(minutes=1)
            assert deliver_pending(engine, erp.url, timeout_s=1, now=clock).delivered == 1
        assert [k for k, _ in erp.attempts] == ["confirmation:B-1"] * 2  # sent twice...
        assert len(erp.ledger) == 1  # ...taken once, by its key
        assert (outbox(engine)[0].status, outbox(engine)[0].attempts) == ("delivered", 2)

    def test_a_refused_confirmation_is_parked_for_a_person(self, wms, engine):
        enqueue_confirmation(engine, wms, order_id="PO-1", batch_id="B-2", good="1",
                             scrap="0", unit="kg", actor="erp-relay")
        with serve_erp(FakeErp(script=[REFUSE])) as erp:
            result = deliver_pending(engine, erp.url, timeout_s=1)
            assert (result.failed, result.pending) == (1, 0)
            assert deliver_pending(engine, erp.url, timeout_s=1).failed == 0  # not resent
        assert len(erp.attempts) == 1 and erp.ledger == {}
        (row,) = outbox(engine)
        assert row.status == "failed" and "422" in row.last_error


def test_relay_loop_confirms_a_finished_batch_and_delivers_it(wms, engine, tmp_path):
    ordered_batch(engine, wms)
    set_state(engine, "B-1", "released")
    stop = threading.Event()
    with serve_erp(FakeErp(script=[DOWN])) as erp:
        settings = Settings(var_dir=tmp_path, env="test", erp_url=erp.url, erp_poll_s=0.05,
                            erp_backoff_max_s=0.1, _env_file=None)
        relay = threading.Thread(target=run_relay, args=(settings, stop, engine))
        relay.start()
        try:
            assert erp.received.wait(timeout=30), "the relay never delivered"
        finally:
            stop.set()
            relay.join(timeout=30)
    assert not relay.is_alive()
    assert list(erp.ledger) == ["confirmation:B-1"]
    assert erp.ledger["confirmation:B-1"]["order_id"] == "PO-4711"
    assert outbox(engine)[0].status == "delivered"
