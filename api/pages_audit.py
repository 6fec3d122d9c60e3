"""The auditor's view: read-only batch search, the signed PDF, verifying a PDF handed over.

Nothing here changes a batch. Verification uses the same function as
`POST /api/v1/reports/verify` and `ebr report verify --db`.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from api import routes_audit
from api.deps import ServicesDep, visible_batches
from api.pages_common import (
    REFUSALS,
    PageUserDep,
    forbidden,
    has_role,
    page_viewer,
    refusal_message,
    render,
)
from store.models import Batch, User

router = APIRouter(include_in_schema=False)
AUDIT_ROLES = ("auditor", "qa")
# The full audit trail is the auditor's (the API's READERS); QA reads each batch's trail
# on its review page.
TRAIL_ROLES = routes_audit.READERS
AuditorDep = Annotated[User, page_viewer(*AUDIT_ROLES)]
TrailReaderDep = Annotated[User, page_viewer(*TRAIL_ROLES)]
TRAIL_PAGE = 100
# Same bound as the API's verify route: a far larger upload is not an ebr record.
MAX_PDF_BYTES = 64 * 1024 * 1024


def _verifier() -> Callable[..., dict[str, Any]] | None:
    """The API's PDF verification, when this build has it (issue 8 adds it)."""
    try:
        module = importlib.import_module("api.routes_reports")
    except ImportError:
        return None
    return getattr(module, "verify_against_store", None)


@router.get("/audit-view", response_class=HTMLResponse)
def audit_view(
    request: Request,
    svc: ServicesDep,
    user: AuditorDep,
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _page(request, svc, user, q, state)


@router.post("/audit-view/verify", response_class=HTMLResponse)
async def audit_verify(
    request: Request,
    svc: ServicesDep,
    user: PageUserDep,
    file: Annotated[UploadFile, File(description="the signed eBMR PDF")],
) -> Response:
    if not has_role(user, *AUDIT_ROLES):
        return forbidden(request, user, AUDIT_ROLES)
    verify = _verifier()
    if verify is None:
        return _page(request, svc, user, error="PDF verification is not available in this build.")
    data = await file.read(MAX_PDF_BYTES + 1)
    if len(data) > MAX_PDF_BYTES:
        return _page(request, svc, user, error="The file is larger than 64 MiB: not an eBMR.")
    try:
        # pyHanko validation blocks: keep it off the event loop.
        result = await asyncio.to_thread(
            verify, data, svc.settings.pki_dir / "root.pem", svc.records
        )
    except Exception as exc:  # VerificationError and anything a damaged file provokes
        return _page(request, svc, user, error=f"Could not verify {file.filename}: {exc}")
    return _page(request, svc, user, result=result, filename=file.filename or "upload.pdf")


def _page(
    request: Request, svc: ServicesDep, user: User, q: str = "", state: str = "", *,
    result: dict[str, Any] | None = None, filename: str = "", error: str = "",
) -> Response:
    visible = visible_batches(svc, user)
    batches = [b for b in visible if _matches(b, q, state)]
    states = sorted({b.state for b in visible})
    context = {
        "user": user, "batches": batches, "q": q, "state": state, "states": states,
        "result": result, "filename": filename, "error": error,
        "can_verify": _verifier() is not None,
    }
    return render(request, "audit_view.html", context, status_code=422 if error else 200)


def _matches(batch: Batch, q: str, state: str) -> bool:
    if state and batch.state != state:
        return False
    needle = q.strip().lower()
    if not needle:
        return True
    haystack = " ".join(
        [batch.batch_id, batch.product_code, batch.product_name, batch.recipe_id,
         batch.created_by]
    ).lower()
    return needle in haystack


Filter = Annotated[str, Query(max_length=200)]


@router.get("/audit-view/trail", response_class=HTMLResponse)
def audit_trail(
    request: Request,
    svc: ServicesDep,
    user: TrailReaderDep,
    batch: Filter = "",
    object: Filter = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    after_id: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The audit trail with filters, a page at a time, and export links for the same filter."""
    form = {"batch": batch, "object": object, "actor": actor, "action": action,
            "since": since, "until": until}
    context: dict[str, Any] = {"user": user, "form": form, "entries": [], "error": "",
                               "next_url": "", "export": {}, "zone": _zone_name(svc)}
    try:
        query = _trail_query(svc, form)
        page = routes_audit.browse(user, svc, limit=TRAIL_PAGE, after_id=after_id, **query)
    except (ValueError, *REFUSALS) as exc:
        context["error"] = refusal_message(exc)
        return render(request, "audit_trail.html", context, status_code=422)
    params = {k: v.isoformat() if isinstance(v, datetime) else v
              for k, v in query.items() if v}
    context["entries"] = page["entries"]
    context["export"] = {fmt: "/api/v1/audit/export?" + urlencode({"format": fmt, **params})
                         for fmt in ("csv", "json")}
    if page["next_after_id"] is not None:
        context["next_url"] = "/audit-view/trail?" + urlencode(
            {**{k: v for k, v in form.items() if v}, "after_id": page["next_after_id"]})
    return render(request, "audit_trail.html", context)


def _trail_query(svc: ServicesDep, form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's filter. Times are typed in the site's time zone."""
    batch, obj = form["batch"].strip(), form["object"].strip()
    if batch and obj:
        raise ValueError("Filter by a batch or by another object, not both at once.")
    return {
        "subject": batch or obj or None,
        "actor": form["actor"].strip() or None,
        "action": form["action"].strip() or None,
        "since": _local_time(svc, form["since"], "From"),
        "until": _local_time(svc, form["until"], "To"),
    }


def _zone_name(svc: ServicesDep) -> str:
    return svc.settings.site_timezone


def _local_time(svc: ServicesDep, text: str, label: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{label}: '{text}' is not a date and time such as "
                         "2026-11-22T08:00.") from exc
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(_zone_name(svc)))
        except ZoneInfoNotFoundError as exc:
            raise ValueError(f"The site time zone {_zone_name(svc)} is unknown.") from exc
    return moment
