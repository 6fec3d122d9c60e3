"""QA review portal: batches awaiting release, review by exception, signed decision.

The record shown is the one the API serves (`GET /api/v1/batches/{id}/record`) and the
decision goes through the API's release route, so the page signs exactly what the API
would. Exceptions come first, each linking to its step or audit entry further down.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api import routes_batches, routes_qms
from api.deps import ServicesDep, find_visible_batch, visible_batches
from api.errors import ApiError
from api.pages_common import (
    PageUserDep,
    Refused,
    attempt,
    local_time,
    page_viewer,
    render,
    step_anchor,
)
from api.schemas import Release
from signatures.identity import IdentityError
from store.models import User
from workflows.messages import COMPLETE, QA

router = APIRouter(include_in_schema=False)
REVIEW_ROLES = (QA,)
ReviewerDep = Annotated[User, page_viewer(*REVIEW_ROLES)]
DECIDED = ("released", "rejected")
# Audit actions QA must see before signing, whatever the steps say.
NOTABLE_ACTIONS = {
    "batch.held": "Hold",
    "batch.restarted": "Restart",
    "batch.aborted": "Abort",
    "comment.added": "Comment",
}


@router.get("/review", response_class=HTMLResponse)
def review_list(request: Request, svc: ServicesDep, user: ReviewerDep) -> Response:
    batches = visible_batches(svc, user)
    context = {
        "user": user,
        "awaiting": [b for b in batches if b.state == COMPLETE],
        "in_progress": [b for b in batches if b.state not in (COMPLETE, *DECIDED)],
        "decided": [b for b in batches if b.state in DECIDED],
    }
    return render(request, "review_list.html", context)


@router.get("/review/{batch_id}", response_class=HTMLResponse)
async def review_batch(
    batch_id: str, request: Request, svc: ServicesDep, user: ReviewerDep
) -> Response:
    return await _review(request, svc, user, batch_id)


@router.post("/review/{batch_id}/decide", response_class=HTMLResponse)
async def review_decide(
    batch_id: str,
    request: Request,
    svc: ServicesDep,
    user: PageUserDep,
    decision: Annotated[Literal["released", "rejected"], Form()],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    key: Annotated[str, Form(min_length=1, max_length=128)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    reason = reason.strip()
    if decision == "rejected" and not reason:
        return await _review(
            request, svc, user, batch_id, error="A rejection needs a reason for the record.",
            status_code=422,
        )
    body = Release(password=password, decision=decision, reason=reason,
                   username=username or None)
    try:
        await attempt(routes_batches.release_batch(batch_id, body, svc, user, key))
    except Refused as exc:
        return await _review(request, svc, user, batch_id, error=str(exc), status_code=409)
    verb = "Released" if decision == "released" else "Rejected"
    return await _review(
        request, svc, user, batch_id,
        message=f"{verb} {batch_id}, signed by {user.full_name}. The signed eBMR is being "
        "generated; its link appears below when it is ready.",
    )


@router.post("/review/{batch_id}/deviations/{deviation_id}", response_class=HTMLResponse)
async def review_disposition(
    batch_id: str,
    deviation_id: str,
    request: Request,
    svc: ServicesDep,
    user: PageUserDep,
    disposition: Annotated[Literal["accept", "rework", "reject"], Form()],
    rationale: Annotated[str, Form(min_length=1, max_length=5000)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    key: Annotated[str, Form(min_length=1, max_length=128)],
    capa_ref: Annotated[str, Form(max_length=64)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """QA's signed disposition of a deviation, through the QMS API's own route."""
    body = routes_qms.DispositionIn(
        disposition=disposition, rationale=rationale, capa_ref=capa_ref, password=password,
        username=username or None,
    )
    try:
        # The route is synchronous (password hashing, database): off the event loop.
        await asyncio.to_thread(routes_qms.disposition, deviation_id, body, user, svc, key)
    except ApiError as exc:
        return await _review(request, svc, user, batch_id, error=exc.message, status_code=409)
    except IdentityError as exc:
        return await _review(request, svc, user, batch_id, error=str(exc), status_code=409)
    return await _review(
        request, svc, user, batch_id,
        message=f"Deviation {deviation_id}: {disposition}, signed by {user.full_name}.",
    )


@router.get("/review/{batch_id}/report-link", response_class=HTMLResponse)
def review_report_link(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep
) -> Response:
    """Polled after a decision until the signed PDF exists."""
    batch = find_visible_batch(svc, user, batch_id)
    if batch is None:
        return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
    return render(request, "review_report_link.html", {"batch": batch})


async def _review(
    request: Request, svc: ServicesDep, user: User, batch_id: str, *, message: str = "",
    error: str = "", status_code: int = 200,
) -> Response:
    batch = find_visible_batch(svc, user, batch_id)
    if batch is None:
        return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
    record = routes_batches.batch_record(batch_id, svc, user)
    deviations = routes_qms.deviations(user, svc, batch_id=batch_id, status="")
    context = {
        "user": user,
        "batch": batch,
        "record": record,
        "exceptions": deviation_exceptions(deviations)
        + exceptions(record, svc.settings.site_timezone),
        "deviations": deviations,
        "audit": [_audit_row(i, a) for i, a in enumerate(record["audit"])],
        "message": message,
        "error": error,
        "can_decide": batch.state == COMPLETE,
        # One key per rendered form: a double click signs once.
        "key": uuid.uuid4().hex,
    }
    return render(request, "review.html", context, status_code=status_code)


def exceptions(record: dict[str, Any], tz: str = "UTC") -> list[dict[str, str]]:
    """What QA reviews first: excursions, altered signatures, corrections, comments, holds.

    Each item: kind, text, and `href` to the step or audit entry in the record below.
    """
    found: list[dict[str, str]] = []
    for step in record["steps"]:
        href = "#" + step_anchor(step["step_id"])
        title = step["title"]
        values = step.get("values") or {}
        value = " ".join(v for v in (values.get("value"), values.get("unit")) if v)
        if step["result"] != "pass":
            limits = step.get("limits")
            allowed = (
                f"; limits {limits['low']} to {limits['high']} {limits['unit']}" if limits else ""
            )
            found.append({"kind": "Excursion", "href": href,
                          "text": f"{title}: result {step['result']}, value {value or '-'}"
                                  f"{allowed}."})
        if not step["signature_verified"]:
            found.append({"kind": "Signature", "href": href,
                          "text": f"{title}: the signature no longer matches the recorded data."})
        for old in step.get("corrections") or []:
            old_values = old.get("values") or {}
            found.append({"kind": "Correction", "href": href,
                          "text": f"{title}: {old_values.get('value', '-')} corrected to "
                                  f"{value or '-'} "
                                  f"({step.get('correction_reason') or 'no reason'}), "
                                  f"signed by {step['signature']['full_name']}."})
        if step.get("comment"):
            found.append({"kind": "Comment", "href": href,
                          "text": f"{title}: {step['comment']} "
                                  f"({step['signature']['full_name']})"})
    for index, entry in enumerate(record["audit"]):
        kind = NOTABLE_ACTIONS.get(entry["action"])
        if kind is None:
            continue
        detail = _detail(entry)
        said = detail.get("comment") or detail.get("reason") or ""
        # The audit entry always exists below; a commented step may have no record yet.
        where = f" on {detail['step']}" if detail.get("step") else ""
        found.append({"kind": kind, "href": f"#audit-{index}",
                      "text": f"{entry['actor']}{where} at {local_time(entry['at'], tz)}: "
                              f"{said or entry['action']}"})
    return found


def deviation_exceptions(deviations: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Deviations come first: an open one blocks release until QA disposes of it."""
    return [
        {"kind": "Deviation", "href": f"#dev-{d['deviation_id']}",
         "text": f"{d['deviation_id']} ({d['classification']}): {d['title']} - "
                 f"{d['disposition'] or d['status']}"}
        for d in deviations
    ]


def _detail(entry: dict[str, Any]) -> dict[str, Any]:
    try:
        detail = json.loads(entry.get("detail") or "{}")
    except (TypeError, ValueError):
        return {}
    return detail if isinstance(detail, dict) else {}


def _audit_row(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    detail = _detail(entry)
    text = ", ".join(f"{k}: {v}" for k, v in sorted(detail.items()) if k != "sha256")
    return {"id": f"audit-{index}", **entry, "text": text}
