"""The operator's tablet page: the active steps, the scale, entries and signatures.

Every action calls the JSON API's own route function (`api.routes_batches`), so the page
and the API refuse and record exactly the same things. The step panel polls a cheap
fingerprint of the batch's state every 2 s and is replaced only when it changed, so a
half-typed password is not wiped by a refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api import routes_auth, routes_batches, routes_wms
from api.deps import ServicesDep, batch_visible, sessions, visible_batches
from api.pages_common import (
    REFUSALS,
    PageUserDep,
    Refused,
    attempt,
    forbidden,
    has_role,
    is_htmx,
    page_viewer,
    refusal_message,
    render,
)
from api.schemas import HoldRequestBody, LoginRequest, ScanBody, StepComplete
from recipes.plan import VALUE_DECIMAL, VALUE_INTEGER
from signatures.sessions import bind_session
from signatures.tokens import read_token
from store.models import User
from workflows.messages import HELD, OPERATOR, RUNNING, SUPERVISOR

router = APIRouter(include_in_schema=False)
OPERATE_ROLES = (OPERATOR, SUPERVISOR)
OperatorDep = Annotated[User, page_viewer(*OPERATE_ROLES)]

StepField = Annotated[str, Form(min_length=1, max_length=300)]
KeyField = Annotated[str, Form(min_length=1, max_length=128)]
PasswordField = Annotated[str, Form(min_length=1, max_length=256)]


@router.get("/operate", response_class=HTMLResponse)
def operate_list(request: Request, svc: ServicesDep, user: OperatorDep) -> Response:
    batches = [b for b in visible_batches(svc, user) if b.state in (RUNNING, HELD)]
    return render(request, "operate_list.html", {"user": user, "batches": batches})


@router.get("/operate/{batch_id}", response_class=HTMLResponse)
async def operate_page(
    batch_id: str, request: Request, svc: ServicesDep, user: OperatorDep
) -> Response:
    return await _panel(request, svc, user, batch_id, full=True)


@router.get("/operate/{batch_id}/panel", response_class=HTMLResponse)
async def operate_panel(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep, v: str = ""
) -> Response:
    """The step panel, or 204 (htmx leaves the page alone) when nothing changed since `v`."""
    try:
        batch = await attempt(routes_batches.get_batch(batch_id, svc, user))
    except Refused as exc:
        if not batch_visible(svc, user, batch_id):
            return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
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
    username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    body = StepComplete(password=password, value=value or None, comment=comment,
                        username=username or None)
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
        bind_session(second, claims.jti)
        try:
            # Their session's first (and only) signature: user id and password, both typed.
            body = StepComplete(password=verifier_password, username=verifier)
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


@router.post("/operate/{batch_id}/scan", response_class=HTMLResponse)
async def operate_scan(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    step_id: StepField, raw: Annotated[str, Form(max_length=500)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A container label scanned at the step (a handheld scanner types it and Enter).

    A pick step records its scan through the batch API (`POST …/steps/{step}/scan`): the
    WMS checks the label and the workflow keeps the lot that signing will issue. At a
    weigh step the scan is a check at the tablet (`POST /api/v1/wms/scan/verify`'s
    function): the material this step needs, a lot that exists, matches its label's
    expiry and may be used; the weighed quantity is issued from FEFO lots when signed.
    """
    if not has_role(user, *OPERATE_ROLES):
        return forbidden(request, user, OPERATE_ROLES)
    if not batch_visible(svc, user, batch_id):
        return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
    planned = _planned(svc, batch_id, step_id)
    material = (planned.get("material") or {}).get("material_code")
    if not material:
        return await _panel(request, svc, user, batch_id, step_id=step_id,
                            error=f"Step {step_id} takes no material: there is nothing to scan.")
    if planned.get("kind") == "pick":
        return await _pick_scan(request, svc, user, batch_id, step_id, raw, key)
    body = routes_wms.ScanIn(raw=raw, material_code=material)
    try:
        # The WMS route is synchronous (database): off the event loop.
        found = await asyncio.to_thread(routes_wms.verify_scan, body, user, svc)
    except REFUSALS as exc:
        return await _panel(request, svc, user, batch_id, step_id=step_id,
                            error=f"Scan refused: {refusal_message(exc)}")
    expiry = f", expires {found['expiry']}" if found["expiry"] else ""
    note = (f"Label verified: {found['material_code']} lot {found['lot_number']}{expiry}, "
            f"{found['lot_status']}.")
    return await _panel(request, svc, user, batch_id, message=note, step_id=step_id)


async def _pick_scan(
    request: Request, svc: ServicesDep, user: User, batch_id: str, step_id: str, raw: str,
    key: str,
) -> Response:
    try:
        body = ScanBody(barcode=raw)
        picked = await attempt(
            routes_batches.scan_material(batch_id, step_id, body, svc, user, key or None))
    except ValidationError:
        return await _panel(request, svc, user, batch_id, step_id=step_id,
                            error="Scan refused: the scan was empty. Scan the container label.")
    except Refused as exc:
        return await _panel(request, svc, user, batch_id, step_id=step_id,
                            error=f"Scan refused: {exc}")
    note = (f"Picked lot {picked['lot_number']} of {picked['material_code']}: "
            f"{picked['quantity']} {picked['unit']}. Sign to issue it.")
    return await _panel(request, svc, user, batch_id, message=note, step_id=step_id)


@router.post("/operate/{batch_id}/request-hold", response_class=HTMLResponse)
async def operate_request_hold(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    key: KeyField, password: PasswordField,
    reason: Annotated[str, Form(max_length=2000)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The operator stops the batch, signed with a reason; a supervisor or QA restarts it."""
    if not reason.strip():
        return await _panel(request, svc, user, batch_id,
                            error="A hold needs a reason: say what is wrong.")
    # The user id is asked for on the first signature of a session, when the page asks.
    extra = {"username": username} if username else {}
    body = HoldRequestBody(password=password, reason=reason.strip(), **extra)
    try:
        await attempt(routes_batches.request_hold(batch_id, body, svc, user, key))
    except Refused as exc:
        return await _panel(request, svc, user, batch_id, error=str(exc))
    return await _panel(request, svc, user, batch_id,
                        message=f"Held by {user.full_name}: {reason.strip()}")


@router.post("/operate/{batch_id}/check", response_class=HTMLResponse)
def operate_check_value(
    batch_id: str, request: Request, svc: ServicesDep, user: PageUserDep,
    step_id: StepField, value: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """On-screen validation of an entry while it is typed (nothing is recorded here)."""
    if not batch_visible(svc, user, batch_id):
        return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
    planned = _planned(svc, batch_id, step_id)
    level, text = check_entry(value, planned.get("limits"), planned.get("alert_limits"),
                              planned.get("value_type") or VALUE_DECIMAL)
    return render(request, "operate_check.html", {"level": level, "text": text})


def _planned(svc: ServicesDep, batch_id: str, step_id: str) -> dict[str, Any]:
    """The plan's step (loop instances `id#2` share their plan step); {} if unknown."""
    batch = svc.records.get_batch(batch_id)
    return (batch.plan_step(step_id) if batch else None) or {}


# Levels of an entry as typed: "" (nothing yet), "bad" (not a number), "action"
# (outside the action limits: the recipe's on_fail applies), "alert" (inside the action
# limits, outside the alert limits: flagged for QA), "ok".
NUMBER_HINT = "Enter a number such as 1.25 (a dot for decimals, no unit)."


def check_entry(
    value: str, limits: dict[str, str] | None, alert_limits: dict[str, str] | None = None,
    value_type: str = VALUE_DECIMAL,
) -> tuple[str, str]:
    """(level, message) for an entry; the workflow decides again when it is signed."""
    value = value.strip()
    if not value:
        return "", "Enter the measured value."
    try:
        number = Decimal(value)
    except InvalidOperation:
        return "bad", NUMBER_HINT
    if not number.is_finite():
        return "bad", NUMBER_HINT
    if value_type == VALUE_INTEGER and number != number.to_integral_value():
        return "bad", "Enter a whole number such as 12."
    if limits is None and alert_limits is None:
        return "ok", "A number: it can be signed."
    if limits is not None and not _within(number, limits):
        return "action", (
            f"Outside the action limits {limits['low']} to {limits['high']} {limits['unit']}: "
            "signing records the step as failed and the recipe's rule for a failure applies."
        )
    if alert_limits is not None and not _within(number, alert_limits):
        return "alert", (
            f"Outside the alert limits {alert_limits['low']} to {alert_limits['high']} "
            f"{alert_limits['unit']}: it can be signed and is flagged for QA."
        )
    shown = limits or alert_limits
    assert shown is not None
    return "ok", f"Within the limits {shown['low']} to {shown['high']} {shown['unit']}."


def _within(number: Decimal, limits: dict[str, str]) -> bool:
    # `not (lo <= x <= hi)` elsewhere: written positively here, NaN was refused above.
    return Decimal(limits["low"]) <= number <= Decimal(limits["high"])


async def _panel(
    request: Request, svc: ServicesDep, user: User, batch_id: str, *, full: bool = False,
    message: str = "", error: str = "", step_id: str = "",
) -> Response:
    batch = None
    try:
        batch = await attempt(routes_batches.get_batch(batch_id, svc, user))
    except Refused as exc:
        error = error or str(exc)
        if not batch_visible(svc, user, batch_id):
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
    scan = execution.get("pending_scan")
    for sid in card_ids:
        plan_id = sid.split("#")[0]  # loop instances are step_id#2, #3…
        context["cards"].append({
            "step_id": sid,
            "plan": planned.get(plan_id, {}),
            "view": views.get(sid, {}),
            "actions": actions.get(sid, []),
            "reading": reading if reading and _reading_for(reading, sid, execution) else None,
            # The view carries the one pending pick scan: it belongs to the pick awaiting
            # its signature.
            "scan": scan if scan and planned.get(plan_id, {}).get("kind") == "pick"
            and "perform" in actions.get(sid, []) else None,
            # A fresh key per rendered form: a double tap is one action, a new form a new one.
            "key": uuid.uuid4().hex,
        })
    context["steps"] = execution["steps"]
    context["fingerprint"] = _fingerprint(batch)
    context["hold_key"] = uuid.uuid4().hex
    context["awaiting"] = {w["action"] for w in execution["awaiting"]}
    return context


def _reading_for(reading: dict[str, Any], step_id: str, execution: dict[str, Any]) -> bool:
    # The view carries one pending reading; it belongs to the weigh step awaiting signature.
    step = next((s for s in execution["steps"] if s["step_id"] == step_id), None)
    return step is not None and step["kind"] == "weigh"
