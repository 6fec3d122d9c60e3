"""What every page module shares: templates, the signed-in user, refusals as messages.

Pages call the same route functions as the JSON API, so a refusal arrives as the same
exceptions the API turns into its error format; here they become a message on the page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import ServicesDep, current_user, sessions
from api.errors import ApiError
from recipes.errors import RecipeError
from runtime.equipment import EquipmentError
from signatures.identity import IdentityError
from signatures.manifestation import format_local
from signatures.tokens import TokenError
from store.batch_record import RecordError
from store.models import User
from store.recipes import RecipeStoreError

T = TypeVar("T")

# Jinja2Templates autoescapes every .html template: user text (comments, reasons,
# names, instructions) is never markup. Nothing in the templates uses `|safe`.
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def step_anchor(step_id: str) -> str:
    """A fragment id for a step, stable across pages: `step-dispensing-weigh-weigh-mcc`."""
    return "step-" + re.sub(r"[^A-Za-z0-9_-]+", "-", step_id)


templates.env.filters["anchor"] = step_anchor


def local_time(value: object, tz: str) -> str:
    """A stored UTC time as people read it: the site's zone with its UTC offset
    (signatures/manifestation.py, the same text as the eBMR); '' when there is none."""
    if not value:
        return ""
    if not isinstance(value, (str, datetime)):
        return str(value)
    try:
        return format_local(value, tz)
    except ValueError:
        return str(value)  # not a time after all: show it as it is


templates.env.filters["local"] = local_time


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


class PageDenied(Exception):
    """The answer instead of a page: the login redirect, or the 403 page (see `install`)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def page_viewer(*roles: str) -> Any:
    """A dependency for showing a page (GET): the signed-in user, holding one of `roles`
    when any are named. Nobody signed in: to the login page and back here; a user without
    the role: the 403 page naming the roles that may see it."""

    def viewer(request: Request, svc: ServicesDep) -> User:
        user = page_user(request, svc)
        if user is None:
            raise PageDenied(login_redirect(request))
        if roles and not has_role(user, *roles):
            raise PageDenied(forbidden(request, user, roles))
        return user

    return Depends(viewer)


def install(app: FastAPI) -> None:
    @app.exception_handler(PageDenied)
    async def _denied(_: Request, exc: PageDenied) -> Response:
        return exc.response


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
    return render(request, "forbidden.html", {"user": user, "roles": roles}, status_code=403)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


# What the API turns into its error format; anything else is a bug and propagates.
REFUSALS = (ApiError, IdentityError, TokenError, EquipmentError, RecordError,
            RecipeStoreError, RecipeError)


def refusal_message(exc: BaseException) -> str:
    """The message the API's error format would carry for this refusal."""
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, RecipeError):
        return "; ".join(str(p) for p in exc.problems)
    return str(exc)


def refusal_status(exc: BaseException) -> int:
    return exc.status if isinstance(exc, ApiError) else 409


async def attempt(action: Awaitable[T]) -> T:
    """Run an API action; a refusal becomes `Refused` with the API's `error.message`."""
    try:
        return await action
    except REFUSALS as exc:
        raise Refused(refusal_message(exc)) from exc


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    # Every page shows times in the site's zone (`| local(tz)`).
    context.setdefault("tz", request.app.state.services.settings.site_timezone)
    user = context.get("user")
    if isinstance(user, User) and "needs_user_id" not in context:
        # The first signature of a session asks for the user id too (21 CFR 11.200).
        registry = sessions(request.app.state.services)
        context = context | {"needs_user_id": registry.first_signature_pending(user)}
    return templates.TemplateResponse(request, name, context, status_code=status_code)
