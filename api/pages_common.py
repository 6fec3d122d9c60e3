"""What every page module shares: templates, the signed-in user, refusals as messages.

Pages call the same route functions as the JSON API, so a refusal arrives as the same
exceptions the API turns into its error format; here they become a message on the page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import ServicesDep, current_user
from api.errors import ApiError
from runtime.equipment import EquipmentError
from signatures.identity import IdentityError
from signatures.tokens import TokenError
from store.batch_record import RecordError
from store.models import User

T = TypeVar("T")

# Jinja2Templates autoescapes every .html template: user text (comments, reasons,
# names, instructions) is never markup. Nothing in the templates uses `|safe`.
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def step_anchor(step_id: str) -> str:
    """A fragment id for a step, stable across pages: `step-dispensing-weigh-weigh-mcc`."""
    return "step-" + re.sub(r"[^A-Za-z0-9_-]+", "-", step_id)


templates.env.filters["anchor"] = step_anchor


class Refused(Exception):
    """An action the system refused, with the message the person should read."""


def page_user(request: Request, svc: ServicesDep) -> User | None:
    try:
        return current_user(request, svc, None)
    except ApiError:
        return None


def require_page_user(request: Request, svc: ServicesDep) -> User:
    """For page actions (POST): 401 in the API's error format, before any form is read."""
    return current_user(request, svc, None)


PageUserDep = Annotated[User, Depends(require_page_user)]


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if target == "/":
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only same-site paths: `//evil.example` or `https://…` would leave ebr after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def has_role(user: User, *roles: str) -> bool:
    return bool(set(roles) & set(user.role_list))


def forbidden(request: Request, user: User, roles: tuple[str, ...]) -> Response:
    return templates.TemplateResponse(
        request, "forbidden.html", {"user": user, "roles": roles}, status_code=403
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def attempt(action: Awaitable[T]) -> T:
    """Run an API action; a refusal becomes `Refused` with the API's `error.message`."""
    try:
        return await action
    except ApiError as exc:
        raise Refused(exc.message) from exc
    except (IdentityError, TokenError, EquipmentError, RecordError) as exc:
        raise Refused(str(exc)) from exc


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)
