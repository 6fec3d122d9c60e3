"""Warehouse API under /api/v1/wms: materials, lots, stock, receipts, lot status (through
the QMS), scan verification and genealogy both ways, on the built-in WMS.

Writes take an `Idempotency-Key` header: a re-sent request returns the first answer.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field

from api.deps import ServicesDep, UserDep, require_any_role, require_role
from api.errors import ApiError
from api.services import Services
from qms import messages as q
from qms.builtin import BuiltinQms
from qms.port import QmsError, UnknownDeviation
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.port import (
    BadQuantity,
    BadScan,
    UnknownBin,
    UnknownLot,
    UnknownMaterial,
    WmsError,
)

router = APIRouter(prefix="/api/v1/wms", tags=["wms"])

WAREHOUSE = ("supervisor", "admin")
NOT_FOUND = (UnknownLot, UnknownMaterial, UnknownBin, UnknownDeviation)
UNPROCESSABLE = (BadQuantity, BadScan)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@contextmanager
def refusals() -> Iterator[None]:
    """WMS/QMS refusals in the API's one error format; the code is the refusal's name."""
    try:
        yield
    except (WmsError, QmsError) as exc:
        status = 404 if isinstance(exc, NOT_FOUND) else 422 if isinstance(
            exc, UNPROCESSABLE) else 409
        raise ApiError(status, _snake(type(exc).__name__), str(exc)) from exc
    except ValueError as exc:  # e.g. a GTIN whose check digit is wrong (biip)
        raise ApiError(422, "invalid_request", str(exc)) from exc


def wms_of(svc: Services) -> BuiltinWms:
    return BuiltinWms(svc.engine)


def qms_of(svc: Services) -> BuiltinQms:
    return BuiltinQms(svc.engine, wms_of(svc))


def key_or_new(key: str | None) -> str:
    return key or f"api:{uuid.uuid4()}"


class MaterialIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=32)
    gtin: str = Field(default="", max_length=14)


class ReceiptIn(BaseModel):
    material_code: str = Field(max_length=64)
    lot_number: str = Field(min_length=1, max_length=64)
    quantity: str = Field(max_length=40)
    unit: str = Field(max_length=32)
    bin_code: str = Field(max_length=64)
    expiry: str = ""
    retest: str = ""
    potency: str = ""
    supplier_lot: str = ""
    sscc: str = Field(default="", max_length=18)


class LotStatusIn(BaseModel):
    status: Literal["on_hold", "released"]
    reason: str = Field(min_length=1, max_length=500)
    deviation_id: str = ""
    password: str = Field(default="", description="QA's password: releasing is a signature")


class ScanIn(BaseModel):
    raw: str = Field(max_length=500)
    material_code: str = Field(max_length=64)
    expected_lot: str = ""


@router.get("/materials")
def materials(user: UserDep, svc: ServicesDep) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in wms_of(svc).materials()]


@router.post("/materials", status_code=201)
def create_material(body: MaterialIn, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    require_any_role(user, *WAREHOUSE)
    with refusals():
        row = wms_of(svc).create_material(body.code, body.name, body.unit, body.gtin,
                                          user.username)
    return row.model_dump(mode="json")


@router.get("/lots")
def lots(user: UserDep, svc: ServicesDep,
         material: Annotated[str, Query(max_length=64)] = "") -> list[dict[str, Any]]:
    return [dataclasses.asdict(x) for x in wms_of(svc).lots(material)]


@router.get("/lots/{lot_number}")
def lot(lot_number: str, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    with refusals():
        return dataclasses.asdict(wms_of(svc).lot(m.LotQuery(lot_number)))


@router.get("/stock")
def stock(user: UserDep, svc: ServicesDep, lot: Annotated[str, Query(max_length=64)] = "",
          material: Annotated[str, Query(max_length=64)] = "") -> list[dict[str, str]]:
    return wms_of(svc).stock(lot_number=lot, material_code=material)


@router.post("/receipts", status_code=201)
def receive(body: ReceiptIn, user: UserDep, svc: ServicesDep,
            idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    require_any_role(user, *WAREHOUSE)
    with refusals():
        # Received goods always start in quarantine: only QA releases (POST …/status).
        result = wms_of(svc).receive(m.ReceiptRequest(
            key=key_or_new(idempotency_key), actor=user.username, status=m.QUARANTINE,
            **body.model_dump()))
    return dataclasses.asdict(result)


@router.post("/lots/{lot_number}/status")
def set_status(lot_number: str, body: LotStatusIn, user: UserDep, svc: ServicesDep,
               idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """QA holds a lot (effective on the next pick or issue) or releases it, signing."""
    require_role(user, "qa")
    key = key_or_new(idempotency_key)
    with refusals():
        if body.status == m.ON_HOLD:
            changed = qms_of(svc).hold_lot(q.LotHoldRequest(
                key=key, lot_number=lot_number, reason=body.reason, actor=user.username,
                deviation_id=body.deviation_id))
        else:
            intent = svc.users.sign(user, body.password, "released", "qa")
            changed = qms_of(svc).release_lot(q.LotReleaseRequest(
                key=key, lot_number=lot_number, reason=body.reason, signature=intent))
    return dataclasses.asdict(changed)


@router.post("/scan/verify")
def verify_scan(body: ScanIn, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    with refusals():
        return dataclasses.asdict(wms_of(svc).verify_scan(m.ScanRequest(**body.model_dump())))


Depth = Annotated[int, Query(ge=1, le=50)]


@router.get("/genealogy/forward/{lot_number}")
def forward(lot_number: str, user: UserDep, svc: ServicesDep, depth: Depth = 10
            ) -> dict[str, Any]:
    """Where did this lot go: batches it was issued to, their output lots, and onwards."""
    with refusals():
        return dataclasses.asdict(wms_of(svc).forward(m.GenealogyQuery(lot_number, depth)))


@router.get("/genealogy/backward/{ref}")
def backward(ref: str, user: UserDep, svc: ServicesDep, depth: Depth = 10) -> dict[str, Any]:
    """What went into this batch (or the batch that produced this lot), and into those."""
    with refusals():
        return dataclasses.asdict(wms_of(svc).backward(m.GenealogyQuery(ref, depth)))
