"""The operator's tablet page: the active steps, the scale, entries and signatures.

Every action calls the JSON API's own route function (`api.routes_batches`), so the page
and the API refuse and record exactly the same things. The step panel polls a cheap
fingerprint of the batch's state every 2 s and is replaced only when it changed, so a
half-typed password is not wiped by a refresh.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api import routes_auth, routes_batches
from api.deps import ServicesDep, sessions
from api.pages_common import (
    PageUserDep,
    Refused,
    attempt,
    forbidden,
    has_role,
    is_htmx,
    login_redirect,
    page_user,
    render,
)
from api.schemas import LoginRequest, StepComplete
from signatures.tokens import read_token
from store.models import User
from workflows.messages import HELD, OPERATOR, RUNNING, SUPERVISOR

router = APIRouter(include_in_schema=False)
OPERATE_ROLES = (OPERATOR, SUPERVISOR)

StepField = Annotated[str, Form(min_length=1, max_length=300)]
KeyField = Annotated[str, Form(min_length=1, max_length=128)]
PasswordField = Annotated[str, Form(min_length=1, max_length=256)]


@router.get("/operate", response_class=HTMLResponse)
def operate_list(request: Request, svc: ServicesDep) -> Response:
    user = page_user(request, svc)
    if user is None:
        return login_redirect(request)
    if not has_role(user, *OPERATE_ROLES):
        return forbidden(request, user, OPERATE_ROLES)
    batches = [b for b in svc.records.list_batches() if b.state in (RUNNING, HELD)]
    return render(request, "operate_list.html", {"user": user, "batches": batches})


@router.get("/operate/{batch_id}", response_class=HTMLResponse)
async def operate_page(batch_id: str, request: Request, svc: ServicesDep) -> Response:
    user = page_user(request, svc)
    if user is None:
        return login_redirect(request)
    if not has_role(user, *OPERATE_ROLES):
        return forbidden(request, user, OPERATE_ROLES)
    return await _panel(request, svc, user, batch_id, full=True)


@router.get("/operate/{batch_id}/panel", response_class=HTMLResponse)
async def operate_panel(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep, v: str = ""
) -> Response:
    """The step panel, or 204 (htmx leaves the page alone) when nothing changed since `v`."""
    try:
        batch = await attempt(routes_batches.get_batch(batch_id, svc, user))
    except Refused as exc:
        return render(request, "operate_panel.html", _context(user, None, error=str(exc)))
    if _fingerprint(batch) == v:
        return Response(status_code=204)
    return render(request, "operate_panel.html", _context(user, batch))


@router.post("/operate/{batch_id}/weigh", response_class=HTMLResponse)
async def operate_weigh(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    step_id: StepField, key: KeyField,
) -> Response:
    try:
        reading = await attempt(routes_batches.capture_weight(batch_id, step_id, svc, user, key))
    except Refused as exc:
        return await _panel(request, svc, user, batch_id, error=str(exc), step_id=step_id)
    verdict = "within tolerance" if reading["in_tolerance"] else "OUT OF TOLERANCE"
    note = f"Scale {reading['equipment_id']} read {reading['value']} {reading['unit']}: {verdict}."
    if reading["in_tolerance"]:
        return await _panel(request, svc, user, batch_id, message=note, step_id=step_id)
    return await _panel(request, svc, user, batch_id, error=note, step_id=step_id)


@router.post("/operate/{batch_id}/complete", response_class=HTMLResponse)
async def operate_complete(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    step_id: StepField, key: KeyField, password: PasswordField,
    value: Annotated[str | None, Form(max_length=64)] = None,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    body = StepComplete(password=password, value=value or None, comment=comment)
    try:
        outcome = await attempt(
            routes_batches.complete_step(batch_id, step_id, body, svc, user, key)
        )
    except Refused as exc:
        return await _panel(request, svc, user, batch_id, error=str(exc), step_id=step_id)
    title = _planned(svc, batch_id, step_id).get("title", step_id)
    note = f"Signed by {user.full_name}: {title} recorded as {outcome['result']}."
    return await _panel(request, svc, user, batch_id, message=note, step_id=step_id)


@router.post("/operate/{batch_id}/verify", response_class=HTMLResponse)
async def operate_verify(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    step_id: StepField, key: KeyField,
    verifier: Annotated[str, Form(min_length=1, max_length=64)],
    verifier_password: PasswordField,
) -> Response:
    """A second person signs at this tablet: they log in here, sign, and are logged out."""
    try:
        login = await attempt(
            routes_auth.login(LoginRequest(username=verifier, password=verifier_password), svc)
        )
        claims = read_token(svc.settings.secrets.jwt_secret, login.access_token)
        second = svc.users.get(claims.subject)
        assert second is not None  # the login just found them
        try:
            body = StepComplete(password=verifier_password)
            await attempt(routes_batches.verify_step(batch_id, step_id, body, svc, second, key))
        finally:
            # The second person's session ends with their signature: the tablet stays the
            # operator's, and nobody can act later under the verifier's name.
            sessions(svc).logout(claims)
    except Refused as exc:
        return await _panel(request, svc, user, batch_id, error=str(exc), step_id=step_id)
    title = _planned(svc, batch_id, step_id).get("title", step_id)
    note = f"Verified by {second.full_name}: {title}."
    return await _panel(request, svc, user, batch_id, message=note, step_id=step_id)


@router.post("/operate/{batch_id}/check", response_class=HTMLResponse)
def operate_check_value(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    step_id: StepField, value: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """On-screen validation of an entry while it is typed (nothing is recorded here)."""
    ok, text = check_entry(value, _planned(svc, batch_id, step_id).get("limits"))
    return render(request, "operate_check.html", {"ok": ok, "text": text})


def _planned(svc: ServicesDep, batch_id: str, step_id: str) -> dict[str, Any]:
    """The plan's step (loop instances `id#2` share their plan step); {} if unknown."""
    batch = svc.records.get_batch(batch_id)
    return (batch.plan_step(step_id) if batch else None) or {}


def check_entry(value: str, limits: dict[str, str] | None) -> tuple[bool | None, str]:
    """(ok, message): None while empty, False for non-numbers and out-of-limit values."""
    value = value.strip()
    if not value:
        return None, "Enter the measured value."
    try:
        number = Decimal(value)
    except InvalidOperation:
        return False, "Enter a number such as 1.25 (a dot for decimals, no unit)."
    if not number.is_finite():
        return False, "Enter a number such as 1.25 (a dot for decimals, no unit)."
    if limits is None:
        return True, "A number: it can be signed."
    low, high, unit = Decimal(limits["low"]), Decimal(limits["high"]), limits["unit"]
    if not (low <= number <= high):
        return False, (
            f"Outside the limits {limits['low']} to {limits['high']} {unit}: signing records "
            "the step as failed and QA will see it."
        )
    return True, f"Within the limits {limits['low']} to {limits['high']} {unit}."


async def _panel(
    request: Request, svc: ServicesDep, user: User, batch_id: str, *, full: bool = False,
    message: str = "", error: str = "", step_id: str = "",
) -> Response:
    batch = None
    try:
        batch = await attempt(routes_batches.get_batch(batch_id, svc, user))
    except Refused as exc:
        error = error or str(exc)
        if svc.records.get_batch(batch_id) is None:
            return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
    context = _context(user, batch, message=message, error=error, step_id=step_id)
    if full or not is_htmx(request):
        return render(request, "operate.html", context)
    return render(request, "operate_panel.html", context)


def _fingerprint(batch: dict[str, Any]) -> str:
    state = json.dumps([batch["state"], batch["execution"]], sort_keys=True, default=str)
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def _context(
    user: User, batch: dict[str, Any] | None, *, message: str = "", error: str = "",
    step_id: str = "",
) -> dict[str, Any]:
    """What the templates need: each active step with its plan, view and allowed actions."""
    context: dict[str, Any] = {
        "user": user, "batch": batch, "message": message, "error": error,
        "message_step": step_id, "cards": [], "steps": [], "fingerprint": "",
        "awaiting": set(),
    }
    if batch is None:
        return context
    execution = batch["execution"]
    planned = {s["step_id"]: s for s in batch["plan"]["steps"]}
    views = {s["step_id"]: s for s in execution["steps"]}
    actions: dict[str, list[str]] = {}
    for waiting in execution["awaiting"]:
        if waiting["step_id"]:
            actions.setdefault(waiting["step_id"], []).append(waiting["action"])
    card_ids = list(dict.fromkeys(execution["active_step_ids"] + list(actions)))
    reading = execution["pending_reading"]
    for sid in card_ids:
        plan_id = sid.split("#")[0]  # loop instances are step_id#2, #3…
        context["cards"].append({
            "step_id": sid,
            "plan": planned.get(plan_id, {}),
            "view": views.get(sid, {}),
            "actions": actions.get(sid, []),
            "reading": reading if reading and _reading_for(reading, sid, execution) else None,
            # A fresh key per rendered form: a double tap is one action, a new form a new one.
            "key": uuid.uuid4().hex,
        })
    context["steps"] = execution["steps"]
    context["fingerprint"] = _fingerprint(batch)
    context["awaiting"] = {w["action"] for w in execution["awaiting"]}
    return context


def _reading_for(reading: dict[str, Any], step_id: str, execution: dict[str, Any]) -> bool:
    # The view carries one pending reading; it belongs to the weigh step awaiting signature.
    step = next((s for s in execution["steps"] if s["step_id"] == step_id), None)
    return step is not None and step["kind"] == "weigh"
