"""The ERP boundary: process orders in, production confirmations out (exactly once).

In: an ISA-95 style production request as JSON —
`{"order_id", "product": {"code"}, "quantity": {"value", "unit"}, "due": "YYYY-MM-DD",
"recipe": {"id", "version"}}` — checked strictly and stored once per order id.

A process order is started as one batch (`start_order` links them). When that batch
ends (released, rejected or aborted), `confirm_finished` writes its confirmation (good
quantity, scrap, consumption by lot from the WMS genealogy) to `erp_outbox` with key
`confirmation:<batch>`; the same batch never gets a second message. `deliver_pending`
POSTs due messages with that key as `Idempotency-Key`; a 2xx marks the message
delivered, 429/5xx/timeouts leave it pending and due again after an exponential backoff,
and any other answer marks it failed for a person to look at. The ERP de-duplicates by
key, so a crash (or a timeout) between its 2xx and our commit re-sends a message it then
ignores: exactly once from the ERP's point of view. `wms.erp_relay` runs both in a loop.
On PostgreSQL relay rounds are serialised by an advisory lock (`wms.erp_relay`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from recipes.units import compatible, convert, unit_problem
from signatures.canonical import content_hash
from store import audit
from store.db import transaction
from store.models import Batch, utcnow
from wms.http_common import KEY_HEADER, VERSION_HEADER
from wms.messages import MESSAGE_VERSION, GenealogyQuery
from wms.models import Movement, OutboxMessage, ProcessOrder
from wms.port import IdempotencyConflict, WmsError, WmsPort

RECEIVED, STARTED, CONFIRMED = "received", "started", "confirmed"
# Batch states after which nothing more is produced or consumed.
FINISHED = ("released", "rejected", "aborted")


class OrderRefused(WmsError):
    pass


class UnknownOrder(WmsError):
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
    if quantity.adjusted() > 12 or quantity.as_tuple().exponent < -12:  # type: ignore[operator]
        raise OrderRefused("quantity.value is out of range: at most 12 digits before and 12 "
                           "after the decimal point.")
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


def enqueue_confirmation(engine: Engine, wms: WmsPort, *, order_id: str, batch_id: str,
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
        row = OutboxMessage(key=key, order_id=order_id, batch_id=batch_id,
                            payload_json=json.dumps(payload))
        s.add(row)
        audit.append(s, key=f"erp:{key}", actor=actor, action="erp.confirmation_queued",
                     subject=batch_id, detail={"order": order_id, "good": good,
                                               "scrap": scrap, "unit": unit})
        return row


def get_order(engine: Engine, order_id: str) -> ProcessOrder:
    with Session(engine) as s:
        row = s.exec(select(ProcessOrder).where(ProcessOrder.order_id == order_id)).first()
    if row is None:
        raise UnknownOrder(f"Process order {order_id} does not exist; the ERP must send its "
                           "production request first.")
    return row


def list_orders(engine: Engine) -> list[ProcessOrder]:
    with Session(engine) as s:
        return list(s.exec(select(ProcessOrder).order_by(col(ProcessOrder.id))))


def list_outbox(engine: Engine, status: str = "") -> list[OutboxMessage]:
    with Session(engine) as s:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if status:
            query = query.where(OutboxMessage.status == status)
        return list(s.exec(query))


def start_order(engine: Engine, order_id: str, batch_id: str, actor: str) -> ProcessOrder:
    """Link the order to the batch started for it; one batch per order, once."""
    with transaction(engine) as s:
        row = s.exec(select(ProcessOrder).where(ProcessOrder.order_id == order_id)
                     .with_for_update()).first()
        if row is None:
            raise UnknownOrder(f"Process order {order_id} does not exist.")
        if row.batch_id and row.batch_id != batch_id:
            raise IdempotencyConflict(f"Process order {order_id} already runs as batch "
                               f"{row.batch_id}; the ERP sends a new order for another batch.")
        if not row.batch_id:
            row.batch_id, row.status = batch_id, STARTED
            s.add(row)
            audit.append(s, key=f"erp:order:{order_id}:started", actor=actor,
                         action="erp.order_started", subject=order_id,
                         detail={"batch": batch_id})
        s.flush()
        s.expunge(row)
        return row


def _in_unit(value: Decimal, unit: str, to_unit: str) -> Decimal:
    return convert(value, unit, to_unit) if compatible(unit, to_unit) else value


def _produced(engine: Engine, batch_id: str, unit: str) -> Decimal | None:
    """What the batch put into stock (its output lots), in `unit`; None if not recorded."""
    with Session(engine) as s:
        rows = s.exec(select(Movement).where(Movement.batch_id == batch_id,
                                             Movement.kind == "produce")).all()
    if not rows:
        return None
    return sum((_in_unit(r.quantity, r.unit, unit) for r in rows), Decimal(0))


def _text(q: Decimal) -> str:
    return format(q.normalize(), "f") if q else "0"


def confirm_finished(engine: Engine, wms: WmsPort, actor: str = "erp-relay") -> int:
    """Queue the confirmation of every started order whose batch has ended; returns how many.

    Good quantity: what the batch recorded as output in the WMS, or else its batch size
    when QA released it. Scrap: the rest of the batch size (all of it when rejected or
    aborted). Both in the order's unit.
    """
    with Session(engine) as s:
        pairs = s.exec(select(ProcessOrder, Batch).where(
            ProcessOrder.status == STARTED, ProcessOrder.batch_id == Batch.batch_id,
            col(Batch.state).in_(FINISHED))).all()
    queued = 0
    for order, batch in pairs:
        planned = _in_unit(Decimal(batch.batch_size), batch.batch_unit, order.unit)
        produced = _produced(engine, batch.batch_id, order.unit)
        if batch.state == "released":
            good = produced if produced is not None else planned
            scrap = max(planned - good, Decimal(0))
        else:
            good, scrap = Decimal(0), produced if produced is not None else planned
        enqueue_confirmation(engine, wms, order_id=order.order_id, batch_id=batch.batch_id,
                             good=_text(good), scrap=_text(scrap), unit=order.unit, actor=actor)
        with transaction(engine) as s:
            row = s.get(ProcessOrder, order.id)
            if row is not None and row.status == STARTED:
                row.status = CONFIRMED
                s.add(row)
        queued += 1
    return queued


def backoff(attempts: int, max_s: float, base_s: float = 2.0) -> timedelta:
    """Wait before the next try: base, 2x, 4x, ... capped at `max_s`."""
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), max_s))


def deliver_pending(engine: Engine, url: str, *, timeout_s: float = 5.0,
                    backoff_max_s: float = 300.0,
                    now: Callable[[], datetime] = utcnow,
                    transport: httpx.BaseTransport | None = None) -> Delivery:
    """POST every due pending message once; returns what happened this round."""
    started = now()
    with Session(engine) as s:
        pending = [
            row for row in s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")
                                  .order_by(col(OutboxMessage.id))).all()
            if row.next_attempt_at is None or _aware(row.next_attempt_at) <= started
        ]
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
                row.next_attempt_at = (now() + backoff(row.attempts, backoff_max_s)
                                       if status == "pending" else None)
                if status == "delivered":
                    row.delivered_at = now()
                    audit.append(s, key=f"erp:delivered:{row.key}", actor="erp-relay",
                                 action="erp.confirmation_delivered", subject=row.order_id,
                                 detail={"key": row.key, "attempts": str(row.attempts)})
                elif status == "failed":
                    audit.append(s, key=f"erp:failed:{row.key}", actor="erp-relay",
                                 action="erp.confirmation_refused", subject=row.order_id,
                                 detail={"key": row.key, "error": error})
                s.add(row)
            delivered += status == "delivered"
            failed += status == "failed"
    return Delivery(delivered=delivered, pending=len(pending) - delivered - failed,
                    failed=failed)


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything ebr stores is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=utcnow().tzinfo)
