"""Quality API under /api/v1/qms: deviations, investigation notes and the QA disposition
signed with a re-entered password, on the built-in QMS."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ServicesDep, UserDep, require_any_role, require_role
from api.routes_wms import IdempotencyKey, key_or_new, qms_of, refusals
from qms import messages as q

router = APIRouter(prefix="/api/v1/qms", tags=["qms"])

RAISERS = ("operator", "supervisor", "qa")


class DeviationIn(BaseModel):
    batch_id: str = Field(default="", max_length=64)
    phase_instance: str = Field(default="", max_length=200)
    classification: Literal["minor", "major", "critical"]
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    lots: list[str] = Field(default_factory=list, max_length=50)


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=5000)


class DispositionIn(BaseModel):
    disposition: Literal["accept", "reject", "rework"]
    rationale: str = Field(min_length=1, max_length=5000)
    capa_ref: str = Field(default="", max_length=64)
    password: str


@router.get("/deviations")
def deviations(user: UserDep, svc: ServicesDep,
               batch_id: Annotated[str, Query(max_length=64)] = "",
               status: Annotated[str, Query(max_length=16)] = "") -> list[dict[str, Any]]:
    return [dataclasses.asdict(d) for d in qms_of(svc).deviations(batch_id, status)]


@router.post("/deviations", status_code=201)
def open_deviation(body: DeviationIn, user: UserDep, svc: ServicesDep,
                   idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    require_any_role(user, *RAISERS)
    with refusals():
        ref = qms_of(svc).open_deviation(q.OpenDeviationRequest(
            key=key_or_new(idempotency_key), actor=user.username, origin=q.OPERATOR_RAISED,
            **body.model_dump()))
    return dataclasses.asdict(ref)


@router.get("/deviations/{deviation_id}")
def deviation(deviation_id: str, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    with refusals():
        return dataclasses.asdict(qms_of(svc).deviation(q.DeviationQuery(deviation_id)))


@router.post("/deviations/{deviation_id}/notes")
def add_note(deviation_id: str, body: NoteIn, user: UserDep, svc: ServicesDep,
             idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    require_any_role(user, "supervisor", "qa")
    with refusals():
        ref = qms_of(svc).add_note(q.NoteRequest(key=key_or_new(idempotency_key),
                                                 deviation_id=deviation_id, note=body.note,
                                                 actor=user.username))
    return dataclasses.asdict(ref)


@router.post("/deviations/{deviation_id}/disposition")
def disposition(deviation_id: str, body: DispositionIn, user: UserDep, svc: ServicesDep,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """QA signs accept, reject or rework: the password is re-checked now (Part 11)."""
    require_role(user, "qa")
    intent = svc.users.sign(user, body.password, f"deviation {body.disposition}", "qa")
    with refusals():
        ref = qms_of(svc).disposition(q.DispositionRequest(
            key=key_or_new(idempotency_key), deviation_id=deviation_id,
            disposition=body.disposition, rationale=body.rationale, capa_ref=body.capa_ref,
            signature=intent))
    return dataclasses.asdict(ref)
