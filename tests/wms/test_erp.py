"""ERP boundary: process orders from a production request, stored once; the batch's
confirmation queued once and delivered once to a fake ERP on loopback despite outages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from sqlmodel import Session, select

from tests.wms.fake_server import FakeServer, Fault, serve
from wms import messages as m
from wms.erp import OrderRefused, create_process_order, deliver_pending, enqueue_confirmation
from wms.models import OutboxMessage
from wms.port import IdempotencyConflict

REQUEST = {"order_id": "PO-4711", "product": {"code": "VC-BLEND-500"},
           "quantity": {"value": "2", "unit": "kg"}, "due": "2026-12-01",
           "recipe": {"id": "VC-BLEND", "version": "1.0.0"}}


@dataclass(frozen=True)
class Confirmation:
    message_version: str
    order_id: str
    batch_id: str
    good: dict[str, str]
    scrap: dict[str, str]
    consumption: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Ack:
    received: bool


def test_production_request_becomes_one_process_order(engine):
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
    (json.dumps({**REQUEST, "quantity": {"value": "1", "unit": "KG"}}), "unknown unit"),
    (json.dumps({**REQUEST, "due": "tomorrow"}), "YYYY-MM-DD"),
])
def test_malformed_production_requests_are_refused(engine, body, message):
    with pytest.raises(OrderRefused, match=message):
        create_process_order(engine, body, "erp")


def test_confirmation_is_delivered_exactly_once_through_outages(wms, engine):
    wms.issue(m.IssueRequest(key="i-1", batch_id="B-1", phase_instance="p", line=1,
                             material_code="RM-ASC", lot_number="ASC-2601", quantity="1.2",
                             unit="kg", actor="olivia"))
    received: list[Confirmation] = []

    def erp(confirmation: Confirmation) -> Ack:
        received.append(confirmation)
        return Ack(received=True)

    for _ in range(2):  # the batch completion is reported twice: one message
        enqueue_confirmation(engine, wms, order_id="PO-4711", batch_id="B-1", good="1.98",
                             scrap="0.02", unit="kg", actor="workflow")
    fake = FakeServer(routes={"confirmations": (erp, Confirmation)}, business_errors=())
    fake.faults["confirmations"] = [Fault(status=503, body={})]
    with serve(fake):
        url = f"{fake.url}/confirmations"
        assert deliver_pending(engine, url, timeout_s=1).pending == 1
        assert deliver_pending(engine, url, timeout_s=1).delivered == 1
        assert deliver_pending(engine, url, timeout_s=1).delivered == 0
    assert len(received) == 1
    assert received[0].consumption == [{"lot": "ASC-2601", "material": "RM-ASC",
                                        "quantity": "1.2", "unit": "kg"}]
    assert {h["Idempotency-Key"] for _, h, _ in fake.seen} == {"confirmation:B-1"}
    with Session(engine) as s:
        row = s.exec(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("delivered", 2)


def test_a_refused_confirmation_is_parked_for_a_person(wms, engine):
    enqueue_confirmation(engine, wms, order_id="PO-1", batch_id="B-2", good="1", scrap="0",
                         unit="kg", actor="workflow")
    fake = FakeServer(routes={}, business_errors=())
    fake.faults["confirmations"] = [Fault(status=422, body={"error": "unknown order"})]
    with serve(fake):
        result = deliver_pending(engine, f"{fake.url}/confirmations", timeout_s=1)
    assert (result.failed, result.pending) == (1, 0)
