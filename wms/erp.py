"""The ERP boundary: process orders in, production confirmations out (exactly once).

In: an ISA-95 style production request as JSON —
`{"order_id", "product": {"code"}, "quantity": {"value", "unit"}, "due": "YYYY-MM-DD",
"recipe": {"id", "version"}}` — checked strictly and stored once per order id.

Out: when a batch completes, its confirmation (good quantity, scrap, consumption by lot
from the WMS genealogy) is written to `erp_outbox` with key `confirmation:<batch>`; the
same batch never gets a second message. `deliver_pending` POSTs pending messages with
that key as `Idempotency-Key`; a 2xx marks the message delivered, 429/5xx/timeouts leave
it pending for the next round, and any other answer marks it failed for a person to
look at. The ERP de-duplicates by key, so a crash between its 2xx and our commit
re-sends a message it then ignores: exactly once from the ERP's point of view.
Run one delivery loop per database (the loop does not claim rows across processes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from recipes.units import unit_problem
from signatures.canonical import content_hash
from store import audit
from store.db import transaction
from store.models import utcnow
from wms.builtin import BuiltinWms
from wms.http_common import KEY_HEADER, VERSION_HEADER
from wms.messages import MESSAGE_VERSION, GenealogyQuery
from wms.models import OutboxMessage, ProcessOrder
from wms.port import IdempotencyConflict, WmsError


class OrderRefused(WmsError):
    pass


@dataclass(frozen=True)
class Delivery:
    delivered: int
    pending: int
    failed: int


def _field(data: Any, *path: str) -> Any:
    value = data
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise OrderRefused(f"The production request lacks '{'.'.join(path)}'.")
        value = value[name]
    return value


def create_process_order(engine: Engine, text: str, actor: str) -> tuple[ProcessOrder, bool]:
    """Store a production request; the same request again returns the stored order."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OrderRefused(f"The production request is not JSON: {exc}.") from exc
    order_id = str(_field(data, "order_id"))
    product = str(_field(data, "product", "code"))
    unit = str(_field(data, "quantity", "unit"))
    recipe_id = str(_field(data, "recipe", "id"))
    recipe_version = str(data["recipe"].get("version", ""))
    try:
        quantity = Decimal(str(_field(data, "quantity", "value")))
        due = date.fromisoformat(str(_field(data, "due")))
    except (InvalidOperation, ValueError) as exc:
        raise OrderRefused("quantity.value must be a number and due a YYYY-MM-DD date.") from exc
    if not quantity.is_finite() or quantity <= 0:
        raise OrderRefused("quantity.value must be positive.")
    problem = unit_problem(unit)
    if problem:
        raise OrderRefused(problem)
    fingerprint = content_hash({"order_id": order_id, "product": product, "unit": unit,
                                "quantity": format(quantity, "f"), "due": due.isoformat(),
                                "recipe": [recipe_id, recipe_version]})
    with transaction(engine) as s:
        row = s.exec(select(ProcessOrder).where(ProcessOrder.order_id == order_id)).first()
        if row is not None:
            if row.request_hash != fingerprint:
                raise IdempotencyConflict(f"Process order {order_id} exists with different "
                                          "content; the ERP must send a new order id.")
            return row, False
        row = ProcessOrder(order_id=order_id, product_code=product, quantity=quantity,
                           unit=unit, due=due, recipe_id=recipe_id,
                           recipe_version=recipe_version, request_hash=fingerprint)
        s.add(row)
        audit.append(s, key=f"erp:order:{order_id}", actor=actor, action="erp.order_received",
                     subject=order_id, detail={"product": product, "quantity": str(quantity),
                                               "unit": unit, "recipe": recipe_id})
        return row, True


def enqueue_confirmation(engine: Engine, wms: BuiltinWms, *, order_id: str, batch_id: str,
                         good: str, scrap: str, unit: str, actor: str) -> OutboxMessage:
    """The batch's confirmation, once per batch; consumption comes from the genealogy."""
    key = f"confirmation:{batch_id}"
    try:
        links = wms.backward(GenealogyQuery(batch_id, max_depth=1)).links
    except WmsError:
        links = []  # nothing was issued through the WMS
    seen: set[str] = set()
    consumption = []
    for x in links:
        if x.input_lot not in seen:
            seen.add(x.input_lot)
            consumption.append({"lot": x.input_lot, "material": x.input_material,
                                "quantity": x.quantity, "unit": x.unit})
    payload = {"message_version": MESSAGE_VERSION, "order_id": order_id, "batch_id": batch_id,
               "good": {"value": good, "unit": unit}, "scrap": {"value": scrap, "unit": unit},
               "consumption": consumption}
    with transaction(engine) as s:
        row = s.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()
        if row is not None:
            return row
        row = OutboxMessage(key=key, order_id=order_id, payload_json=json.dumps(payload))
        s.add(row)
        audit.append(s, key=f"erp:{key}", actor=actor, action="erp.confirmation_queued",
                     subject=batch_id, detail={"order": order_id, "good": good,
                                               "scrap": scrap, "unit": unit})
        return row


def deliver_pending(engine: Engine, url: str, *, timeout_s: float = 5.0,
                    transport: httpx.BaseTransport | None = None) -> Delivery:
    with Session(engine) as s:
        pending = s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")
                         .order_by(col(OutboxMessage.id))).all()
    delivered = failed = 0
    with httpx.Client(timeout=httpx.Timeout(timeout_s), transport=transport) as http:
        for message in pending:
            status, error = "pending", ""
            try:
                r = http.post(url, content=message.payload_json,
                              headers={KEY_HEADER: message.key, VERSION_HEADER: MESSAGE_VERSION,
                                       "Content-Type": "application/json"})
                if 200 <= r.status_code < 300:
                    status = "delivered"
                elif r.status_code == 429 or r.status_code >= 500:
                    error = f"ERP answered {r.status_code}; will retry"
                else:
                    status, error = "failed", f"ERP refused with {r.status_code}: {r.text[:500]}"
            except httpx.HTTPError as exc:
                error = f"{exc.__class__.__name__}: {exc}; will retry"
            with transaction(engine) as s:
                row = s.get(OutboxMessage, message.id)
                assert row is not None
                row.attempts += 1
                row.status, row.last_error = status, error
                if status == "delivered":
                    row.delivered_at = utcnow()
                    audit.append(s, key=f"erp:delivered:{row.key}", actor="erp-outbox",
                                 action="erp.confirmation_delivered", subject=row.order_id,
                                 detail={"key": row.key, "attempts": str(row.attempts)})
                s.add(row)
            delivered += status == "delivered"
            failed += status == "failed"
    return Delivery(delivered=delivered, pending=len(pending) - delivered - failed,
                    failed=failed)
