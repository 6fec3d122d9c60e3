"""ERP boundary under /api/v1/erp: process orders from ISA-95 style production requests,
a batch started from an order (through the batch API's own start path), and the
confirmation outbox the relay delivers (`wms.erp`, `wms.erp_relay`)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, Field, ValidationError

from api import routes_batches
from api.deps import ServicesDep, UserDep, require_any_role, require_role
from api.errors import ApiError
from api.routes_wms import refusals
from api.schemas import BatchCreate
from recipes.units import compatible, convert
from store.recipes import EFFECTIVE, RUNNABLE
from wms import erp
from wms.models import OutboxMessage, ProcessOrder

router = APIRouter(prefix="/api/v1/erp", tags=["erp"])

PLANNERS = ("supervisor", "admin")
READERS = ("supervisor", "admin", "qa", "auditor")


class StartIn(BaseModel):
    batch_id: str = Field(default="", max_length=64, description="default: the order id")


def _order(row: ProcessOrder) -> dict[str, Any]:
    return {"order_id": row.order_id, "product_code": row.product_code,
            "quantity": format(row.quantity, "f"), "unit": row.unit, "due": row.due.isoformat(),
            "recipe_id": row.recipe_id, "recipe_version": row.recipe_version,
            "status": row.status, "batch_id": row.batch_id}


def _message(row: OutboxMessage) -> dict[str, Any]:
    return {"key": row.key, "order_id": row.order_id, "batch_id": row.batch_id,
            "status": row.status, "attempts": row.attempts, "last_error": row.last_error,
            "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
            "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
            "payload": json.loads(row.payload_json)}


@router.post("/process-orders", status_code=201)
def receive_order(response: Response, user: UserDep, svc: ServicesDep,
                  request: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
    """An ISA-95 style production request: `{"order_id", "product": {"code"}, "quantity":
    {"value", "unit"}, "due", "recipe": {"id", "version"}}`. The same request again
    answers 200 with the stored order; the same order id with other content is 409."""
    require_any_role(user, *PLANNERS)
    with refusals():
        row, created = erp.create_process_order(svc.engine, json.dumps(request), user.username)
    if not created:
        response.status_code = 200
    return _order(row)


@router.get("/process-orders")
def orders(user: UserDep, svc: ServicesDep) -> list[dict[str, Any]]:
    require_any_role(user, *READERS)
    return [_order(r) for r in erp.list_orders(svc.engine)]


@router.get("/process-orders/{order_id}")
def order(order_id: str, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    require_any_role(user, *READERS)
    with refusals():
        return _order(erp.get_order(svc.engine, order_id))


def _runnable_version(svc: ServicesDep, recipe_id: str) -> str:
    rows = [r for r in svc.recipes.list() if r.recipe_id == recipe_id and r.status in RUNNABLE]
    if not rows:
        raise ApiError(409, "no_runnable_recipe", f"Recipe {recipe_id} has no approved or "
                       "effective version: approve one, or name the version in the order.")
    effective = [r for r in rows if r.status == EFFECTIVE]
    return (effective or rows)[-1].version


@router.post("/process-orders/{order_id}/start", status_code=201)
async def start(order_id: str, body: StartIn, user: UserDep, svc: ServicesDep
                ) -> dict[str, Any]:
    """Start the order's batch at the ordered quantity (converted to the recipe's batch
    unit) with the batch API's start path; repeating it answers the same batch."""
    require_role(user, "supervisor")
    with refusals():
        row = await asyncio.to_thread(erp.get_order, svc.engine, order_id)
    batch_id = body.batch_id or row.batch_id or row.order_id
    if row.batch_id and row.batch_id != batch_id:
        raise ApiError(409, "order_started", f"Process order {order_id} already runs as batch "
                       f"{row.batch_id}.")
    version = row.recipe_version or _runnable_version(svc, row.recipe_id)
    nominal = await asyncio.to_thread(svc.recipes.plan_for, row.recipe_id, version, None)
    if nominal.product_code != row.product_code:
        raise ApiError(409, "wrong_product", f"Recipe {row.recipe_id} {version} makes "
                       f"{nominal.product_code}, but order {order_id} is for "
                       f"{row.product_code}: the ERP must correct the order.")
    if not compatible(row.unit, nominal.batch_unit):
        raise ApiError(422, "wrong_unit", f"Order {order_id} is in {row.unit}; recipe "
                       f"{row.recipe_id} sizes batches in {nominal.batch_unit}.")
    # Plain digits without trailing zeros: "10", never "1E+1" or "10.000", in the record.
    size = Decimal(format(convert(Decimal(row.quantity), row.unit, nominal.batch_unit)
                          .normalize(), "f"))
    try:
        create = BatchCreate(batch_id=batch_id, recipe_id=row.recipe_id, version=version,
                             batch_size=size)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", f"Batch id '{batch_id}' is not valid: use "
                       "letters, digits, '.', '_' and '-' (at most 64).") from exc
    started = await routes_batches.start_batch(create, svc, user)
    with refusals():
        row = await asyncio.to_thread(erp.start_order, svc.engine, order_id, batch_id,
                                      user.username)
    return {"order": _order(row), "batch": started}


@router.get("/outbox")
def outbox(user: UserDep, svc: ServicesDep, status: str = "") -> list[dict[str, Any]]:
    """Confirmations to the ERP: pending (with the next retry), delivered, or failed."""
    require_any_role(user, *READERS)
    return [_message(r) for r in erp.list_outbox(svc.engine, status)]
