"""Server-rendered pages (Jinja2, autoescaped). Thin: they read what the API reads."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import SESSION_COOKIE, ServicesDep, current_user
from api.errors import ApiError
from signatures.identity import AuthenticationFailed
from signatures.tokens import issue_token
from workflows.batch import BatchWorkflow
from workflows.messages import StateQuery

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _user_or_none(request: Request, svc: ServicesDep) -> Any:
    try:
        return current_user(request, svc, None)
    except ApiError:
        return None


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
async def login_form(
    request: Request,
    svc: ServicesDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    try:
        user = await asyncio.to_thread(svc.users.authenticate, username, password)
    except AuthenticationFailed as exc:
        return templates.TemplateResponse(
            request, "login.html", {"error": str(exc)}, status_code=401
        )
    token = issue_token(svc.settings.secrets.jwt_secret, user.username, svc.settings.token_ttl_s)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        max_age=svc.settings.token_ttl_s,
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, svc: ServicesDep) -> Response:
    user = _user_or_none(request, svc)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    context = {
        "user": user,
        "batches": svc.records.list_batches(),
        "recipes": svc.recipes.list(),
        "temporal_ui": f"http://127.0.0.1:{svc.settings.temporal_ui_port}",
    }
    return templates.TemplateResponse(request, "home.html", context)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
async def batch_page(batch_id: str, request: Request, svc: ServicesDep) -> Response:
    user = _user_or_none(request, svc)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    batch = svc.records.get_batch(batch_id)
    if batch is None:
        return templates.TemplateResponse(
            request, "missing.html", {"user": user, "batch_id": batch_id}, status_code=404
        )
    view = None
    try:
        handle = (await svc.temporal()).get_workflow_handle(batch_id)
        view = asdict(await handle.query(BatchWorkflow.view, StateQuery()))
    except Exception:
        view = None
    record = svc.records.assemble_record(batch_id)
    return templates.TemplateResponse(
        request, "batch.html", {"user": user, "batch": batch, "view": view, "record": record}
    )
