"""Server-rendered pages (Jinja2, autoescaped, htmx). Thin: they call what the API calls.

This module holds login, the batch list and the read-only batch page, and includes the
role pages: the operator's tablet (`pages_operate`), QA review (`pages_review`) and the
auditor's view (`pages_audit`). `api/app.py` includes only this router.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import pages_admin, pages_audit, pages_operate, pages_recipes, pages_review
from api.deps import SESSION_COOKIE, ServicesDep, find_visible_batch, visible_batches
from api.pages_common import page_viewer, render, safe_next
from signatures.identity import AuthenticationFailed
from signatures.tokens import issue_token
from store.models import User
from workflows.batch import BatchWorkflow
from workflows.messages import StateQuery

router = APIRouter(include_in_schema=False)
SignedInDep = Annotated[User, page_viewer()]


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> Response:
    return render(request, "login.html", {"error": None, "next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
async def login_form(
    request: Request,
    svc: ServicesDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    try:
        user = await asyncio.to_thread(svc.users.authenticate, username, password)
    except AuthenticationFailed as exc:
        return render(
            request, "login.html", {"error": str(exc), "next": safe_next(next)}, status_code=401
        )
    token = issue_token(svc.settings.secrets.jwt_secret, user.username, svc.settings.token_ttl_s)
    target = safe_next(next)
    if target == "/":
        target = _start_page(user.role_list)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        max_age=svc.settings.token_ttl_s,
    )
    return response


def _start_page(roles: list[str]) -> str:
    """Each role lands where its work is; anyone else gets the batch list."""
    if "operator" in roles:
        return "/operate"
    if "qa" in roles:
        return "/review"
    if "auditor" in roles:
        return "/audit-view"
    if "author" in roles or "approver" in roles:
        return "/recipes"
    if "admin" in roles:
        return "/admin/users"
    return "/batches"


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, svc: ServicesDep, user: SignedInDep) -> Response:
    return _batch_list(request, svc, user)


@router.get("/batches", response_class=HTMLResponse)
def batches_page(request: Request, svc: ServicesDep, user: SignedInDep) -> Response:
    return _batch_list(request, svc, user)


def _batch_list(request: Request, svc: ServicesDep, user: User) -> Response:
    context = {
        "user": user,
        "batches": visible_batches(svc, user),
        "recipes": svc.recipes.list(),
        "temporal_ui": f"http://127.0.0.1:{svc.settings.temporal_ui_port}",
    }
    return render(request, "home.html", context)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
async def batch_page(
    batch_id: str, request: Request, svc: ServicesDep, user: SignedInDep
) -> Response:
    batch = find_visible_batch(svc, user, batch_id)
    if batch is None:
        return render(request, "missing.html", {"user": user, "batch_id": batch_id}, 404)
    view = None
    try:
        handle = (await svc.temporal()).get_workflow_handle(batch_id)
        view = asdict(await handle.query(BatchWorkflow.view, StateQuery()))
    except Exception:
        # The record below comes from the store; the live view is a bonus when the
        # engine answers, so a stopped worker must not take the page down.
        view = None
    record = svc.records.assemble_record(batch_id)
    return render(
        request, "batch.html", {"user": user, "batch": batch, "view": view, "record": record}
    )


# Included after the routes above are defined; each module owns its URL prefix.
router.include_router(pages_operate.router)
router.include_router(pages_review.router)
router.include_router(pages_audit.router)
router.include_router(pages_recipes.router)
router.include_router(pages_admin.router)
