"""Administrator pages: user accounts and the equipment register.

User changes call the JSON API's own route functions (`api.routes_users`): the same
role check, password policy, reason requirement and audit entry as the API. The
equipment register is shown read-only, as the running process loaded it: it is edited
in its YAML file (docs/devices.md), not here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api import routes_users
from api.deps import ServicesDep
from api.pages_common import (
    REFUSALS,
    PageUserDep,
    forbidden,
    has_role,
    page_viewer,
    refusal_message,
    refusal_status,
    render,
)
from signatures.identity import ADMIN, ROLES
from store.models import User

router = APIRouter(include_in_schema=False)
ADMIN_ROLES = (ADMIN,)
AdminDep = Annotated[User, page_viewer(*ADMIN_ROLES)]

Reason = Annotated[str, Form(max_length=2000)]


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, svc: ServicesDep, user: AdminDep) -> Response:
    return _users(request, svc, user)


@router.post("/admin/users", response_class=HTMLResponse)
async def create_user_page(
    request: Request, svc: ServicesDep, user: PageUserDep,
    username: Annotated[str, Form(max_length=64)],
    full_name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=256)],
    roles: Annotated[list[str], Form()] = [],  # noqa: B006  (FastAPI reads it, never mutated)
    reason: Reason = "",
) -> Response:
    if not has_role(user, *ADMIN_ROLES):
        return forbidden(request, user, ADMIN_ROLES)

    async def create() -> Any:
        body = routes_users.UserCreate(username=username.strip(), full_name=full_name.strip(),
                                       roles=roles, password=password, reason=reason)
        return await routes_users.create_user(body, user, svc)

    error, status = await _run(create)
    if error:
        return _users(request, svc, user, error=error, status_code=status,
                      form={"username": username, "full_name": full_name, "roles": roles})
    return _users(request, svc, user, message=f"Created {username.strip()}: they must change "
                  "the password at first login.")


@router.get("/admin/users/{username}", response_class=HTMLResponse)
def user_page(username: str, request: Request, svc: ServicesDep, user: AdminDep) -> Response:
    return _user(request, svc, user, username)


@router.post("/admin/users/{username}/roles", response_class=HTMLResponse)
async def roles_page(
    username: str, request: Request, svc: ServicesDep, user: PageUserDep,
    roles: Annotated[list[str], Form()] = [],  # noqa: B006
    reason: Reason = "",
) -> Response:
    async def change() -> Any:
        body = routes_users.RolesChange(roles=roles, reason=reason)
        return await routes_users.set_roles(username, body, user, svc)

    return await _act(request, svc, user, username, change,
                      f"Roles of {username} are now: {', '.join(roles)}.")


@router.post("/admin/users/{username}/password", response_class=HTMLResponse)
async def reset_password_page(
    username: str, request: Request, svc: ServicesDep, user: PageUserDep,
    password: Annotated[str, Form(max_length=256)] = "", reason: Reason = "",
) -> Response:
    async def reset() -> Any:
        body = routes_users.PasswordReset(password=password, reason=reason)
        return await routes_users.reset_password(username, body, user, svc)

    return await _act(request, svc, user, username, reset,
                      f"Password of {username} reset: they must change it at next login.")


@router.post("/admin/users/{username}/unlock", response_class=HTMLResponse)
async def unlock_page(
    username: str, request: Request, svc: ServicesDep, user: PageUserDep, reason: Reason = "",
) -> Response:
    async def unlock() -> Any:
        return await routes_users.unlock(username, routes_users.ReasonOnly(reason=reason),
                                         user, svc)

    return await _act(request, svc, user, username, unlock, f"{username} is unlocked.")


@router.post("/admin/users/{username}/deactivate", response_class=HTMLResponse)
async def deactivate_page(
    username: str, request: Request, svc: ServicesDep, user: PageUserDep, reason: Reason = "",
) -> Response:
    async def deactivate() -> Any:
        return await routes_users.deactivate(username, routes_users.ReasonOnly(reason=reason),
                                             user, svc)

    return await _act(request, svc, user, username, deactivate,
                      f"{username} is deactivated: they can no longer log in or sign.")


@router.get("/admin/equipment", response_class=HTMLResponse)
def equipment_page(request: Request, svc: ServicesDep, user: AdminDep) -> Response:
    register = svc.register.devices
    today = datetime.now(UTC).date()
    rows = [_equipment_row(e, today) for _, e in sorted(register.entries.items())]
    return render(request, "admin_equipment.html",
                  {"user": user, "rows": rows, "source": register.source, "today": today})


def _equipment_row(entry: Any, today: date) -> dict[str, Any]:
    return {
        "entry": entry,
        "unfit": entry.unfit_reasons(today),
        "connection": type(entry.connection).__name__.replace("Connection", ""),
    }


async def _run(action: Callable[[], Awaitable[Any]]) -> tuple[str, int]:
    """('', 200) when the API route accepted; else its message and status."""
    try:
        await action()
    except ValidationError as exc:
        return _validation_message(exc), 422
    except REFUSALS as exc:
        return refusal_message(exc), refusal_status(exc)
    return "", 200


async def _act(
    request: Request, svc: ServicesDep, user: User, username: str,
    action: Callable[[], Awaitable[Any]], done: str,
) -> Response:
    if not has_role(user, *ADMIN_ROLES):
        return forbidden(request, user, ADMIN_ROLES)
    error, status = await _run(action)
    if error:
        return _user(request, svc, user, username, error=error, status_code=status)
    return _user(request, svc, user, username, message=done)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        text = str(err.get("msg"))
        if where == "username" and "pattern" in text:
            text = "use 2 to 64 lower-case letters, digits, '.', '_' or '-'"
        if where == "reason":
            text = "a reason is required for the audit trail"
        parts.append(f"{where.replace('_', ' ')}: {text}" if where else text)
    return "; ".join(parts)


def _users(
    request: Request, svc: ServicesDep, user: User, *, message: str = "", error: str = "",
    status_code: int = 200, form: dict[str, Any] | None = None,
) -> Response:
    context = {
        "user": user, "users": routes_users.list_users(user, svc), "roles": ROLES,
        "message": message, "error": error, "form": form or {"roles": []},
    }
    return render(request, "admin_users.html", context, status_code=status_code)


def _user(
    request: Request, svc: ServicesDep, user: User, username: str, *, message: str = "",
    error: str = "", status_code: int = 200,
) -> Response:
    # The API's own view of the account (roles, lock, password state).
    account = next((u for u in routes_users.list_users(user, svc) if u["username"] == username),
                   None)
    if account is None:
        return render(request, "missing.html",
                      {"user": user, "what": f"There is no user {username}."}, 404)
    context = {
        "user": user, "account": account, "roles": ROLES,
        "message": message, "error": error,
    }
    return render(request, "admin_user.html", context, status_code=status_code)
