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
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import FileResponse
from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ServicesDep, UserDep, require_role
from api.errors import UPDATE_STATUS, ApiError
from api.schemas import (
    BatchCreate,
    Comment,
    Correction,
    Disposition,
    Release,
    StateChange,
    StepComplete,
)
from reports.publish import sha256_hex
from store.models import Batch
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
    ReleaseRequest,
    Signer,
    StateChangeRequest,
    StateQuery,
    VerifyStepRequest,
)

router = APIRouter(prefix="/api/v1/batches", tags=["batches"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
# A worker accepts or refuses an update within milliseconds; silence means none is running.
ACCEPT_TIMEOUT_S = 10.0
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
        "created_by": batch.created_by,
        "report_sha256": batch.report_sha256,
    }


@router.get("")
def list_batches(svc: ServicesDep, _: UserDep) -> list[dict[str, Any]]:
    return [_row(b) for b in svc.records.list_batches()]


@router.post("", status_code=201)
async def start_batch(body: BatchCreate, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    require_role(user, "supervisor")
    plan = await asyncio.to_thread(
        svc.recipes.plan_for, body.recipe_id, body.version, body.batch_size
    )
    equipment = svc.register.bind(plan)
    batch, _ = await asyncio.to_thread(
        svc.records.create_batch, body.batch_id, plan, equipment, user.username
    )
    client = await svc.temporal()
    await client.start_workflow(
        BatchWorkflow.run,
        BatchInput(batch_id=body.batch_id, plan=plan, equipment=equipment,
                   created_by=user.username, inventory=svc.settings.use_wms,
                   quality=svc.settings.use_qms),
        id=body.batch_id,
        task_queue=svc.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return _row(batch) | {"equipment": equipment, "steps": [s.step_id for s in plan.steps]}


@router.get("/{batch_id}")
async def get_batch(batch_id: str, svc: ServicesDep, _: UserDep) -> dict[str, Any]:
    batch = _batch(svc, batch_id)
    handle = (await svc.temporal()).get_workflow_handle(batch_id)
    try:
        view = await handle.query(BatchWorkflow.view, StateQuery())
    except RPCError as exc:
        raise ApiError(503, "engine_unavailable", f"Batch engine did not answer: {exc}") from exc
    return _row(batch) | {"plan": json.loads(batch.plan_json), "execution": asdict(view)}


@router.post("/{batch_id}/steps/{step_id:path}/weigh")
async def capture_weight(
    batch_id: str, step_id: str, svc: ServicesDep, user: UserDep, key: IdempotencyKey = None
) -> dict[str, Any]:
    require_role(user, OPERATOR)
    _batch(svc, batch_id)
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
    _batch(svc, batch_id)
    intent = await asyncio.to_thread(svc.users.sign, user, body.password, PERFORMED, OPERATOR)
    req = CompleteStepRequest(
        step_id=step_id, signature=intent, entered_value=body.value, comment=body.comment
    )
    outcome = await _update(svc, batch_id, BatchWorkflow.complete_step, req, key)
    return asdict(outcome)


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
    planned = _batch(svc, batch_id).plan_step(step_id)
    if planned is None or not planned.get("verify_role"):
        raise ApiError(409, "wrong_step", f"Step {step_id} does not need verification.")
    intent = await asyncio.to_thread(
        svc.users.sign, user, body.password, VERIFIED, planned["verify_role"]
    )
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
    _batch(svc, batch_id)
    role = OPERATOR if OPERATOR in user.role_list else SUPERVISOR
    intent = await asyncio.to_thread(svc.users.sign, user, body.password, PERFORMED, role)
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
    _batch(svc, batch_id)
    intent = await asyncio.to_thread(svc.users.sign, user, body.password, REVIEWED, QA)
    req = DispositionUpdate(deviation_id=deviation_id, disposition=body.disposition,
                            rationale=body.rationale, signature=intent, capa_ref=body.capa_ref)
    return asdict(await _update(svc, batch_id, BatchWorkflow.disposition, req, key))


@router.post("/{batch_id}/release")
async def release_batch(
    batch_id: str, body: Release, svc: ServicesDep, user: UserDep, key: IdempotencyKey = None
) -> dict[str, Any]:
    _batch(svc, batch_id)
    intent = await asyncio.to_thread(svc.users.sign, user, body.password, body.decision, QA)
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
    _batch(svc, batch_id)
    role = SUPERVISOR if SUPERVISOR in user.role_list else QA
    intent = await asyncio.to_thread(
        svc.users.sign, user, body.password, STATE_CHANGES[action], role
    )
    update = getattr(BatchWorkflow, action)
    req = StateChangeRequest(signature=intent, reason=body.reason)
    return asdict(await _update(svc, batch_id, update, req, key))


@router.post("/{batch_id}/steps/{step_id:path}/comments")
async def add_comment(
    batch_id: str, step_id: str, body: Comment, svc: ServicesDep, user: UserDep,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    _batch(svc, batch_id)
    req = CommentRequest(step_id=step_id, author=_signer(user), text=body.text)
    return asdict(await _update(svc, batch_id, BatchWorkflow.comment, req, key))


@router.get("/{batch_id}/record")
def batch_record(batch_id: str, svc: ServicesDep, _: UserDep) -> dict[str, Any]:
    _batch(svc, batch_id)
    return svc.records.assemble_record(batch_id)


@router.get("/{batch_id}/report.pdf", response_class=FileResponse)
def batch_report(batch_id: str, svc: ServicesDep, _: UserDep) -> FileResponse:
    batch = _batch(svc, batch_id)
    if not batch.report_path:
        raise ApiError(
            404, "no_report", f"Batch {batch_id} has no signed eBMR yet: QA must release or "
            "reject it first."
        )
    with open(batch.report_path, "rb") as handle:
        if sha256_hex(handle.read()) != batch.report_sha256:
            raise ApiError(
                409, "report_altered",
                f"The eBMR file of {batch_id} no longer matches its recorded SHA-256.",
            )
    return FileResponse(batch.report_path, media_type="application/pdf",
                        filename=f"{batch_id}.pdf")


def _batch(svc: ServicesDep, batch_id: str) -> Batch:
    batch = svc.records.get_batch(batch_id)
    if batch is None:
        raise ApiError(404, "not_found", f"Batch {batch_id} does not exist.")
    return batch


def _signer(user: Any) -> Signer:
    return Signer(
        user_id=user.id or 0, username=user.username, full_name=user.full_name,
        roles=user.role_list,
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
