"""The auditor's view: read-only batch search, the signed PDF, verifying a PDF handed over.

Nothing here changes a batch. Verification uses the same function as
`POST /api/v1/reports/verify` and `ebr report verify --db`.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from api.deps import ServicesDep
from api.pages_common import (
    PageUserDep,
    forbidden,
    has_role,
    login_redirect,
    page_user,
    render,
)
from store.models import Batch, User

router = APIRouter(include_in_schema=False)
AUDIT_ROLES = ("auditor", "qa")
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
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    user = page_user(request, svc)
    if user is None:
        return login_redirect(request)
    if not has_role(user, *AUDIT_ROLES):
        return forbidden(request, user, AUDIT_ROLES)
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
    batches = [b for b in svc.records.list_batches() if _matches(b, q, state)]
    states = sorted({b.state for b in svc.records.list_batches()})
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
