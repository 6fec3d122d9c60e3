"""Warehouse API under /api/v1/wms: materials, bins, lots, stock, receipts, moves,
adjustments, returns and batch output, lot status (through the QMS), scan verification and
genealogy both ways.

Port operations (lots, scans, returns, output, status, genealogy) go to whichever WMS the
API was wired with (built-in, or the HTTP adapter when EBR_WMS_URL is set); master data
and stock movements exist only in the built-in WMS, and are refused with an external one.
Writes take an `Idempotency-Key` header: a re-sent request returns the first answer.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field

from api.deps import (
    ServicesDep,
    UserDep,
    outside_areas,
    require_any_role,
    require_role,
    sign_now,
)
from api.errors import ApiError
from api.services import Services
from qms import messages as q
from qms.builtin import BuiltinQms
from qms.port import QmsError, QmsPort, QmsUnavailable, UnknownDeviation
from store.models import User
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.erp import OrderRefused, UnknownOrder
from wms.port import (
    BadQuantity,
    BadScan,
    ContractViolation,
    UnknownBin,
    UnknownLot,
    UnknownMaterial,
    WmsError,
    WmsPort,
    WmsUnavailable,
)

router = APIRouter(prefix="/api/v1/wms", tags=["wms"])

WAREHOUSE = ("supervisor", "admin")
FLOOR = ("operator", "supervisor")
NOT_FOUND = (UnknownLot, UnknownMaterial, UnknownBin, UnknownDeviation, UnknownOrder)
UNPROCESSABLE = (BadQuantity, BadScan, OrderRefused)
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
    except (WmsUnavailable, QmsUnavailable) as exc:
        raise ApiError(503, "system_unavailable", f"{exc} Retry with the same "
                       "Idempotency-Key.") from exc
    except ContractViolation as exc:
        raise ApiError(502, "contract_violation", str(exc)) from exc
    except ValueError as exc:  # e.g. a GTIN whose check digit is wrong (biip)
        raise ApiError(422, "invalid_request", str(exc)) from exc


def wms_of(svc: Services) -> WmsPort:
    return svc.wms if svc.wms is not None else BuiltinWms(svc.engine)


def qms_of(svc: Services) -> QmsPort:
    return svc.qms if svc.qms is not None else BuiltinQms(svc.engine, wms_of(svc))


def builtin_wms(svc: Services) -> BuiltinWms:
    """Master data and stock movements: only ebr's own WMS keeps them."""
    wms = wms_of(svc)
    if not isinstance(wms, BuiltinWms):
        raise ApiError(409, "external_wms", "Materials, bins, stock and movements are kept in "
                       "the external WMS (EBR_WMS_URL): record them there.")
    return wms


def builtin_qms(svc: Services) -> BuiltinQms | None:
    qms = qms_of(svc)
    return qms if isinstance(qms, BuiltinQms) else None


def key_or_new(key: str | None) -> str:
    return key or f"api:{uuid.uuid4()}"


def keyed_write(
    operation: Callable[[Any], Any], request_type: Callable[..., Any], body: BaseModel,
    user: User, idempotency_key: str | None, **fields: Any,
) -> dict[str, Any]:
    """One idempotent stock write: the request is the body's fields plus the caller's
    Idempotency-Key (a new key without one) and the user as actor; refusals as API errors."""
    with refusals():
        request = request_type(key=key_or_new(idempotency_key), actor=user.username, **fields,
                               **body.model_dump())
        return dataclasses.asdict(operation(request))


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
    username: str | None = Field(default=None, max_length=64,
                                 description="user id: needed on a session's first signature")


class ScanIn(BaseModel):
    raw: str = Field(max_length=500)
    material_code: str = Field(max_length=64)
    expected_lot: str = ""


Quantity = Annotated[str, Field(min_length=1, max_length=40, description="Decimal, e.g. 1.25")]
Unit = Annotated[str, Field(min_length=1, max_length=32)]
Code = Annotated[str, Field(min_length=1, max_length=64)]


class BinIn(BaseModel):
    code: Code
    location: str = Field(default="", max_length=200)
    staging: bool = False


class MoveIn(BaseModel):
    lot_number: Code
    from_bin: Code
    to_bin: Code
    quantity: Quantity
    unit: Unit


class AdjustIn(BaseModel):
    lot_number: Code
    bin_code: Code
    delta: Quantity = Field(description="signed: -0.25 removes, 0.25 adds")
    unit: Unit
    reason: str = Field(min_length=1, max_length=500, description="e.g. cycle count CC-12")


class ReturnIn(BaseModel):
    batch_id: Code
    phase_instance: str = Field(default="", max_length=200)
    line: int = Field(default=0, ge=0)
    lot_number: Code
    quantity: Quantity
    unit: Unit
    to_bin: Code


class OutputIn(BaseModel):
    batch_id: Code
    material_code: Code
    lot_number: Code
    quantity: Quantity
    unit: Unit
    to_bin: Code
    expiry: str = Field(default="", max_length=10)


@router.get("/materials")
def materials(user: UserDep, svc: ServicesDep) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in builtin_wms(svc).materials()]


@router.post("/materials", status_code=201)
def create_material(body: MaterialIn, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    require_any_role(user, *WAREHOUSE)
    with refusals():
        row = builtin_wms(svc).create_material(body.code, body.name, body.unit, body.gtin,
                                               user.username)
    return row.model_dump(mode="json")


@router.get("/bins")
def bins(user: UserDep, svc: ServicesDep) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in builtin_wms(svc).bins()]


@router.post("/bins", status_code=201)
def create_bin(body: BinIn, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    require_any_role(user, *WAREHOUSE)
    row = builtin_wms(svc).create_bin(body.code, body.location, user.username, body.staging)
    return row.model_dump(mode="json")


@router.get("/lots")
def lots(user: UserDep, svc: ServicesDep,
         material: Annotated[str, Query(max_length=64)] = "") -> list[dict[str, Any]]:
    return [dataclasses.asdict(x) for x in builtin_wms(svc).lots(material)]


@router.get("/lots/{lot_number}")
def lot(lot_number: str, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    with refusals():
        return dataclasses.asdict(wms_of(svc).lot(m.LotQuery(lot_number)))


@router.get("/stock")
def stock(user: UserDep, svc: ServicesDep, lot: Annotated[str, Query(max_length=64)] = "",
          material: Annotated[str, Query(max_length=64)] = "") -> list[dict[str, str]]:
    return builtin_wms(svc).stock(lot_number=lot, material_code=material)


@router.post("/receipts", status_code=201)
def receive(body: ReceiptIn, user: UserDep, svc: ServicesDep,
            idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    require_any_role(user, *WAREHOUSE)
    # Received goods always start in quarantine: only QA releases (POST …/status).
    return keyed_write(builtin_wms(svc).receive, m.ReceiptRequest, body, user, idempotency_key,
                       status=m.QUARANTINE)


@router.post("/moves", status_code=201)
def move(body: MoveIn, user: UserDep, svc: ServicesDep,
         idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Move stock of one lot between bins (audited; reserved stock stays put)."""
    require_any_role(user, *WAREHOUSE)
    return keyed_write(builtin_wms(svc).move, m.MoveRequest, body, user, idempotency_key)


@router.post("/adjustments", status_code=201)
def adjust(body: AdjustIn, user: UserDep, svc: ServicesDep,
           idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """A counted correction with its reason (audited)."""
    require_any_role(user, *WAREHOUSE)
    return keyed_write(builtin_wms(svc).adjust, m.AdjustRequest, body, user, idempotency_key)


@router.post("/returns", status_code=201)
def return_material(body: ReturnIn, user: UserDep, svc: ServicesDep,
                    idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Unused material issued to a batch goes back to stock; genealogy nets it out."""
    require_any_role(user, *FLOOR)
    return keyed_write(wms_of(svc).return_material, m.ReturnRequest, body, user,
                       idempotency_key)


@router.post("/outputs", status_code=201)
def record_output(body: OutputIn, user: UserDep, svc: ServicesDep,
                  idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """The batch's produced lot (quarantined until QA releases it) and its input lots."""
    require_role(user, "supervisor")
    return keyed_write(wms_of(svc).record_output, m.OutputRequest, body, user,
                       idempotency_key)


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
            intent = sign_now(svc, user, body.password, "released", "qa", body.username)
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
    if outside_areas(svc, user, ref):
        raise ApiError(404, "not_found", f"Batch {ref} does not exist.")
    with refusals():
        return dataclasses.asdict(wms_of(svc).backward(m.GenealogyQuery(ref, depth)))
