"""Quality API under /api/v1/qms: deviations opened by a person with a reason, investigation
notes and the QA disposition signed with a re-entered password, on the wired QMS (built-in,
or the HTTP adapter when EBR_QMS_URL is set)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
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
from api.routes_wms import IdempotencyKey, builtin_qms, key_or_new, qms_of, refusals, wms_of
from qms import messages as q
from wms.messages import LotQuery

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
    username: str | None = Field(default=None, max_length=64,
                                 description="user id: needed on a session's first signature")


@router.get("/deviations")
def deviations(user: UserDep, svc: ServicesDep,
               batch_id: Annotated[str, Query(max_length=64)] = "",
               status: Annotated[str, Query(max_length=16)] = "") -> list[dict[str, Any]]:
    """Deviations of the batches in your areas (and those raised on no batch)."""
    if outside_areas(svc, user, batch_id):
        raise ApiError(404, "not_found", f"Batch {batch_id} does not exist.")
    builtin = builtin_qms(svc)
    if builtin is not None:
        found = builtin.deviations(batch_id, status)
    else:
        # An external QMS answers one question through the port: a batch's open deviations.
        if not batch_id or status == q.CLOSED:
            raise ApiError(409, "external_qms", "The external QMS (EBR_QMS_URL) lists its own "
                           "deviations; here only ?batch_id= for a batch's open ones.")
        with refusals():
            found = qms_of(svc).open_deviations(q.OpenDeviationsQuery(batch_id)).deviations
        found = [d for d in found if not status or d.status == status]
    seen: dict[str, bool] = {}
    return [dataclasses.asdict(d) for d in found
            if seen.setdefault(d.batch_id, _visible(svc, user, d.batch_id))]


def _visible(svc: ServicesDep, user: UserDep, batch_id: str) -> bool:
    return not outside_areas(svc, user, batch_id)


def _deviation(svc: ServicesDep, user: UserDep, deviation_id: str) -> Any:
    """The deviation, or 404 when it belongs to a batch outside your areas."""
    with refusals():
        found = qms_of(svc).deviation(q.DeviationQuery(deviation_id))
    if not _visible(svc, user, found.batch_id):
        raise ApiError(404, "not_found", f"Deviation {deviation_id} does not exist.")
    return found


def _check_affected(svc: ServicesDep, body: DeviationIn, user: UserDep) -> None:
    """What a deviation names must exist: a typo would hide it from the batch's review.
    A batch outside the user's areas is answered as one that does not exist."""
    if body.batch_id:
        batch = svc.records.get_batch(body.batch_id)
        if batch is None or not user.sees_area(batch.area):
            raise ApiError(404, "unknown_batch", f"Batch {body.batch_id} does not exist: name "
                           "the batch the deviation concerns, or leave batch_id empty for "
                           "material outside a batch.")
        if body.phase_instance and batch.plan_step(body.phase_instance) is None:
            raise ApiError(404, "unknown_phase", f"Batch {body.batch_id} has no phase "
                           f"'{body.phase_instance}'; use its step id (as on the batch page).")
    elif body.phase_instance:
        raise ApiError(422, "invalid_request", "A phase needs its batch: give batch_id too.")
    with refusals():
        for lot in body.lots:
            wms_of(svc).lot(LotQuery(lot))  # an unknown lot is refused (404 unknown_lot)


@router.post("/deviations", status_code=201)
def open_deviation(body: DeviationIn, user: UserDep, svc: ServicesDep,
                   idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    require_any_role(user, *RAISERS)
    _check_affected(svc, body, user)
    with refusals():
        ref = qms_of(svc).open_deviation(q.OpenDeviationRequest(
            key=key_or_new(idempotency_key), actor=user.username, origin=q.OPERATOR_RAISED,
            **body.model_dump()))
    return dataclasses.asdict(ref)


@router.get("/deviations/{deviation_id}")
def deviation(deviation_id: str, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    return dataclasses.asdict(_deviation(svc, user, deviation_id))


@router.post("/deviations/{deviation_id}/notes")
def add_note(deviation_id: str, body: NoteIn, user: UserDep, svc: ServicesDep,
             idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    require_any_role(user, "supervisor", "qa")
    _deviation(svc, user, deviation_id)
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
    _deviation(svc, user, deviation_id)
    intent = sign_now(svc, user, body.password, f"deviation {body.disposition}", "qa",
                      body.username)
    with refusals():
        ref = qms_of(svc).disposition(q.DispositionRequest(
            key=key_or_new(idempotency_key), deviation_id=deviation_id,
            disposition=body.disposition, rationale=body.rationale, capa_ref=body.capa_ref,
            signature=intent))
    return dataclasses.asdict(ref)
