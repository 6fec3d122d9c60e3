"""Batches: start, follow, complete steps with e-signatures, release, fetch the eBMR.

Operator actions are Temporal Updates. The workflow's validators decide whether
an action is allowed; a refusal comes back as 409 (or 403) before anything is
written. The client's `Idempotency-Key` header is the update id, so a retried
request is applied once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import FileResponse
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ServicesDep, UserDep, require_role, sign, visible_batch, visible_batches
from api.errors import UPDATE_STATUS, ApiError
from api.schemas import (
    BatchCreate,
    Comment,
    Correction,
    Disposition,
    HoldRequestBody,
    Release,
    ScanBody,
    StateChange,
    StepComplete,
)
from recipes.plan import BatchPlan
from reports.publish import sha256_hex
from signatures.manifestation import annotate
from store.models import Batch, User
from workflows.batch import BatchWorkflow
from workflows.messages import (
    ABORT_MEANING,
    HOLD_MEANING,
    OPERATOR,
    PERFORMED,
    QA,
    RESTART_MEANING,
    REVIEWED,
    SUPERVISOR,
    VERIFIED,
    BatchInput,
    CaptureWeightRequest,
    CommentRequest,
    CompleteStepRequest,
    CorrectValueRequest,
    DispositionUpdate,
    HoldRequest,
    ReleaseRequest,
    ScanMaterialRequest,
    Signer,
    StateChangeRequest,
    StateQuery,
    VerifyStepRequest,
)

router = APIRouter(prefix="/api/v1/batches", tags=["batches"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
# A worker accepts or refuses an update within milliseconds; silence means none is running.
ACCEPT_TIMEOUT_S = 10.0
# The already-done check is a shortcut: if the batch does not answer quickly, skip it.
QUERY_TIMEOUT_S = 2.0
STATE_CHANGES = {"hold": HOLD_MEANING, "restart": RESTART_MEANING, "abort": ABORT_MEANING}


def _row(batch: Batch) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id,
        "recipe_id": batch.recipe_id,
        "recipe_version": batch.recipe_version,
        "product_code": batch.product_code,
        "product_name": batch.product_name,
        "batch_size": batch.batch_size,
        "batch_unit": batch.batch_unit,
        "state": batch.state,
        "area": batch.area,
        "created_by": batch.created_by,
        "report_sha256": batch.report_sha256,
    }


@router.get("")
def list_batches(svc: ServicesDep, user: UserDep) -> list[dict[str, Any]]:
    """The batches of the areas granted to you."""
    return [_row(b) for b in visible_batches(svc, user)]


@router.post("", status_code=201)
async def start_batch(body: BatchCreate, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    require_role(user, "supervisor")
    plan = await asyncio.to_thread(
        svc.recipes.plan_for, body.recipe_id, body.version, body.batch_size
    )
    check_validity(plan, datetime.now(UTC).date())
    equipment = svc.register.bind(plan)
    # Equipment at a weighing station is reached through that station's worker.
    task_queues = svc.register.task_queues(equipment)
    area = _area(svc, user, body.area, equipment)
    batch, _ = await asyncio.to_thread(
        svc.records.create_batch, body.batch_id, plan, equipment, user.username, area
    )
    client = await svc.temporal()
    await client.start_workflow(
        BatchWorkflow.run,
        BatchInput(batch_id=body.batch_id, plan=plan, equipment=equipment,
                   created_by=user.username, inventory=svc.settings.use_wms,
                   quality=svc.settings.use_qms, task_queues=task_queues),
        id=body.batch_id,
        task_queue=svc.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return _row(batch) | {"equipment": equipment, "steps": [s.step_id for s in plan.steps]}


def check_validity(plan: BatchPlan, today: date) -> None:
    """A master recipe version runs only inside its effective/expiry window (UTC dates)."""
    name = f"{plan.recipe_id} {plan.recipe_version}"
    if plan.effective and today < date.fromisoformat(plan.effective):
        raise ApiError(
            409, "recipe_not_effective",
            f"Recipe {name} is effective from {plan.effective}; today is {today.isoformat()}. "
            "Start the batch on or after that date, or use a version that is effective now.",
        )
    if plan.expiry and today > date.fromisoformat(plan.expiry):
        raise ApiError(
            409, "recipe_expired",
            f"Recipe {name} expired on {plan.expiry}: approve a new version (or extend its "
            "validity in a new version) before starting batches with it.",
        )


def _area(svc: ServicesDep, user: User, asked: str | None, equipment: dict[str, str]) -> str:
    """The request's area, else the bound equipment's, else the site default; the
    supervisor must be granted it (nobody starts a batch they could not see)."""
    area = asked or svc.register.area_of(equipment) or svc.settings.default_area
    if area not in svc.settings.areas:
        raise ApiError(422, "unknown_area", f"Area {area!r} is not one of the site's areas "
                       f"({', '.join(svc.settings.areas)}).")
    if not user.sees_area(area):
        raise ApiError(403, "not_permitted", f"You are not granted area {area}: ask an "
                       "administrator, or start the batch in one of your areas.")
    return area


@router.get("/{batch_id}")
async def get_batch(batch_id: str, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    batch = _batch(svc, user, batch_id)
    handle = (await svc.temporal()).get_workflow_handle(batch_id)
    try:
        view = await handle.query(BatchWorkflow.view, StateQuery())
    except RPCError as exc:
        raise ApiError(503, "engine_unavailable", f"Batch engine did not answer: {exc}") from exc
    now = datetime.now(UTC)
    # The workflow reports when things began; how long they have run is read now, and
    # kept beside `execution` so the batch's state (what pages fingerprint) stays still.
    held_now = _seconds_since(view.held_since, now)
    elapsed = {
        "hold_elapsed_s": held_now,
        "held_total_s": view.held_total_s + (held_now or 0),
        "steps": {s.step_id: _seconds_since(s.active_since, now) for s in view.steps
                  if s.status not in ("pending", "done")},
    }
    return _row(batch) | {"plan": json.loads(batch.plan_json), "execution": asdict(view),
                          "equipment": json.loads(batch.equipment_json), "elapsed": elapsed}


def _seconds_since(iso: str | None, now: datetime) -> int | None:
    if not iso:
        return None
    return max(0, int((now - datetime.fromisoformat(iso)).total_seconds()))


@router.post("/{batch_id}/steps/{step_id:path}/weigh")
async def capture_weight(
    batch_id: str, step_id: str, svc: ServicesDep, user: UserDep, key: IdempotencyKey = None
) -> dict[str, Any]:
    require_role(user, OPERATOR)
    _batch(svc, user, batch_id)
    req = CaptureWeightRequest(step_id=step_id, requested_by=_signer(user))
    reading = await _update(svc, batch_id, BatchWorkflow.capture_weight, req, key)
    return asdict(reading)


@router.post("/{batch_id}/steps/{step_id:path}/complete")
async def complete_step(
    batch_id: str,
    step_id: str,
    body: StepComplete,
    svc: ServicesDep,
    user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    planned = _batch(svc, user, batch_id).plan_step(step_id) or {}
    await _refuse_if_already_done(svc, batch_id, step_id, key)
    # A sign-off names its role and meaning; every other step is the operator's "performed".
    meaning = planned.get("sign_meaning") or PERFORMED
    role = planned.get("perform_role") or OPERATOR
    intent = await sign(svc, user, body, meaning, role)
    value = body.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    req = CompleteStepRequest(
        step_id=step_id, signature=intent,
        entered_value=None if value is None else str(value), comment=body.comment,
    )
    outcome = await _update(svc, batch_id, BatchWorkflow.complete_step, req, key)
    return asdict(outcome)


@router.post("/{batch_id}/steps/{step_id:path}/scan")
async def scan_material(
    batch_id: str, step_id: str, body: ScanBody, svc: ServicesDep, user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """A pick step: the scanned GS1 label of the picked container, checked by the WMS
    (material, lot, expiry, status); a refusal is 409 with what is wrong."""
    planned = _batch(svc, user, batch_id).plan_step(step_id) or {}
    require_role(user, planned.get("perform_role") or OPERATOR)
    req = ScanMaterialRequest(step_id=step_id, barcode=body.barcode, requested_by=_signer(user))
    return asdict(await _update(svc, batch_id, BatchWorkflow.scan_material, req, key))


@router.post("/{batch_id}/request-hold")
async def request_hold(
    batch_id: str, body: HoldRequestBody, svc: ServicesDep, user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Any operator of the batch holds it, signed with the reason; supervisor or QA restart."""
    _batch(svc, user, batch_id)
    role = next((r for r in (OPERATOR, SUPERVISOR, QA) if r in user.role_list), OPERATOR)
    intent = await sign(svc, user, body, HOLD_MEANING, role)
    req = HoldRequest(reason=body.reason, signature=intent)
    return asdict(await _update(svc, batch_id, BatchWorkflow.request_hold, req, key))


@router.post("/{batch_id}/steps/{step_id:path}/verify")
async def verify_step(
    batch_id: str,
    step_id: str,
    body: StepComplete,
    svc: ServicesDep,
    user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """A second person's signature on a performed step (the recipe names their role)."""
    planned = _batch(svc, user, batch_id).plan_step(step_id)
    if planned is None or not planned.get("verify_role"):
        raise ApiError(409, "wrong_step", f"Step {step_id} does not need verification.")
    intent = await sign(svc, user, body, VERIFIED, planned["verify_role"])
    req = VerifyStepRequest(step_id=step_id, signature=intent)
    return asdict(await _update(svc, batch_id, BatchWorkflow.verify_step, req, key))


@router.post("/{batch_id}/steps/{step_id:path}/correct")
async def correct_value(
    batch_id: str,
    step_id: str,
    body: Correction,
    svc: ServicesDep,
    user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Replace an entered value with a reason; the original stays in the record."""
    _batch(svc, user, batch_id)
    role = OPERATOR if OPERATOR in user.role_list else SUPERVISOR
    intent = await sign(svc, user, body, PERFORMED, role)
    req = CorrectValueRequest(step_id=step_id, value=body.value, reason=body.reason,
                              signature=intent)
    return asdict(await _update(svc, batch_id, BatchWorkflow.correct_value, req, key))


@router.post("/{batch_id}/deviations/{deviation_id}/disposition")
async def dispose_deviation(
    batch_id: str,
    deviation_id: str,
    body: Disposition,
    svc: ServicesDep,
    user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """QA's signed disposition of a deviation that holds a step (accept, reject, rework)."""
    _batch(svc, user, batch_id)
    intent = await sign(svc, user, body, REVIEWED, QA)
    req = DispositionUpdate(deviation_id=deviation_id, disposition=body.disposition,
                            rationale=body.rationale, signature=intent, capa_ref=body.capa_ref)
    return asdict(await _update(svc, batch_id, BatchWorkflow.disposition, req, key))


@router.post("/{batch_id}/release")
async def release_batch(
    batch_id: str, body: Release, svc: ServicesDep, user: UserDep, key: IdempotencyKey = None
) -> dict[str, Any]:
    _batch(svc, user, batch_id)
    intent = await sign(svc, user, body, body.decision, QA)
    req = ReleaseRequest(signature=intent, reason=body.reason)
    outcome = await _update(svc, batch_id, BatchWorkflow.release, req, key)
    return asdict(outcome)


@router.post("/{batch_id}/{action}", include_in_schema=True)
async def change_state(
    batch_id: str,
    action: str,
    body: StateChange,
    svc: ServicesDep,
    user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Hold, restart or abort the batch: a supervisor's or QA's signed decision with a reason."""
    if action not in STATE_CHANGES:
        raise ApiError(404, "not_found", f"Unknown batch action '{action}'.")
    _batch(svc, user, batch_id)
    role = SUPERVISOR if SUPERVISOR in user.role_list else QA
    intent = await sign(svc, user, body, STATE_CHANGES[action], role)
    update = getattr(BatchWorkflow, action)
    req = StateChangeRequest(signature=intent, reason=body.reason)
    return asdict(await _update(svc, batch_id, update, req, key))


@router.post("/{batch_id}/steps/{step_id:path}/comments")
async def add_comment(
    batch_id: str, step_id: str, body: Comment, svc: ServicesDep, user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    _batch(svc, user, batch_id)
    req = CommentRequest(step_id=step_id, author=_signer(user), text=body.text)
    return asdict(await _update(svc, batch_id, BatchWorkflow.comment, req, key))


@router.get("/{batch_id}/record")
def batch_record(batch_id: str, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    """The executed record; every signature carries its manifestation in the site's
    time zone, and one whose record changed after signing is marked altered."""
    _batch(svc, user, batch_id)
    return annotate(svc.records.assemble_record(batch_id), svc.settings.site_timezone)


@router.get("/{batch_id}/report.pdf", response_class=FileResponse)
def batch_report(batch_id: str, svc: ServicesDep, user: UserDep) -> FileResponse:
    batch = _batch(svc, user, batch_id)
    if not batch.report_path:
        raise ApiError(
            404, "no_report", f"Batch {batch_id} has no signed eBMR yet: QA must release or "
            "reject it first."
        )
    path = svc.settings.report_file(batch.report_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ApiError(
            404, "report_missing",
            f"The eBMR file of {batch_id} is not at {path.name} in the reports directory; "
            "restore it from a backup (ebr restore).",
        ) from exc
    if sha256_hex(data) != batch.report_sha256:
        raise ApiError(
            409, "report_altered",
            f"The eBMR file of {batch_id} no longer matches its recorded SHA-256.",
        )
    return FileResponse(path, media_type="application/pdf", filename=f"{batch_id}.pdf")


def _batch(svc: ServicesDep, user: User, batch_id: str) -> Batch:
    return visible_batch(svc, user, batch_id)


def _signer(user: Any) -> Signer:
    return Signer(
        user_id=user.id or 0, username=user.username, full_name=user.full_name,
        roles=user.role_list,
    )


async def _refuse_if_already_done(
    svc: ServicesDep, batch_id: str, step_id: str, key: str | None
) -> None:
    """A double tap or a second tablet: answered 409 at once, naming who was first, before
    the password hash and without taking one of the few update slots Temporal gives a
    workflow. The workflow's own validator stays the authority; this only saves work, so any
    doubt (no answer, a retry of the request that did complete it) goes the normal way."""
    handle = (await svc.temporal()).get_workflow_handle(batch_id)
    try:
        view = await asyncio.wait_for(handle.query(BatchWorkflow.view, StateQuery()),
                                      timeout=QUERY_TIMEOUT_S)
    except (TimeoutError, RPCError, WorkflowQueryFailedError):
        return
    done = next((s for s in view.steps if s.step_id == step_id and s.status == "done"), None)
    if done is None or (key and svc.records.signed_under(batch_id, key)):
        return
    raise ApiError(
        409, "duplicate",
        f"Step {step_id} was already completed by {done.signed_by or 'the system'} at "
        f"{done.signed_at or 'an earlier time'}.",
    )


async def _update(svc: ServicesDep, batch_id: str, update: Any, arg: Any, key: str | None) -> Any:
    handle = (await svc.temporal()).get_workflow_handle(batch_id)
    try:
        accepted = await asyncio.wait_for(
            handle.start_update(
                update, arg, id=key or str(uuid.uuid4()),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            ),
            timeout=ACCEPT_TIMEOUT_S,
        )
        return await accepted.result()
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise ApiError(
            503, "engine_unavailable",
            f"No batch worker answered within {ACCEPT_TIMEOUT_S:.0f} s. Retry the same action "
            "with the same Idempotency-Key once the worker is back; it is applied at most once.",
        ) from exc
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = cause.cause
        if cause is None:
            raise ApiError(409, "refused", str(exc.cause or exc)) from exc
        status = UPDATE_STATUS.get(cause.type or "", 409)
        raise ApiError(status, _snake(cause.type or "refused"), cause.message) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "not_running", f"Batch {batch_id} is not running.") from exc
        raise ApiError(503, "engine_unavailable", f"Batch engine did not answer: {exc}") from exc


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
