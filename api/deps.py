"""Request dependencies: the services and the signed-in user."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.schemas import SignRequest
from api.services import Services
from signatures.identity import NotPermitted
from signatures.sessions import SessionRegistry
from signatures.tokens import TokenClaims, TokenError, read_token
from store.models import Batch, User
from workflows.messages import SignatureIntent

_bearer = HTTPBearer(auto_error=False)
SESSION_COOKIE = "ebr_session"


def services(request: Request) -> Services:
    return request.app.state.services


def sessions(svc: Services) -> SessionRegistry:
    return SessionRegistry(svc.engine, svc.settings.idle_timeout_s)


def current_claims(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[TokenClaims, User]:
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(401, "not_authenticated", "Log in first: no session token was sent.")
    try:
        claims = read_token(svc.settings.secrets.jwt_secret, token)
    except TokenError as exc:
        raise ApiError(401, "not_authenticated", str(exc)) from exc
    try:
        user = sessions(svc).resolve(claims, svc.users)
    except (TokenError, NotPermitted) as exc:
        raise ApiError(401, "not_authenticated", str(exc)) from exc
    return claims, user


def current_user(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    return current_claims(request, svc, credentials)[1]


def require_role(user: User, role: str) -> None:
    if role not in user.role_list:
        raise ApiError(403, "not_permitted", f"This action needs the {role} role.")


def require_any_role(user: User, *roles: str) -> None:
    if not set(roles) & set(user.role_list):
        raise ApiError(
            403, "not_permitted", f"This action needs one of the roles: {', '.join(roles)}."
        )


async def sign(
    svc: Services, user: User, body: SignRequest, meaning: str, required_role: str
) -> SignatureIntent:
    """The one way a route signs: password re-checked now, and the user id too on the
    session's first signature. Hashing runs off the event loop."""
    return await asyncio.to_thread(
        sign_now, svc, user, body.password, meaning, required_role, body.username
    )


def sign_now(
    svc: Services, user: User, password: str, meaning: str, required_role: str,
    username: str | None,
) -> SignatureIntent:
    """`sign` for synchronous routes (already on the thread pool)."""
    return sessions(svc).sign(svc.users, user, password, meaning, required_role, username)


# --- areas: a user sees only batches of the areas granted to them ----------------------


def visible_batch(svc: Services, user: User, batch_id: str) -> Batch:
    """The batch, or 404 — the same answer whether it does not exist or lies outside the
    user's areas, so nobody learns which batch ids exist elsewhere."""
    batch = svc.records.get_batch(batch_id)
    if batch is None or not user.sees_area(batch.area):
        raise ApiError(404, "not_found", f"Batch {batch_id} does not exist.")
    return batch


def visible_batches(svc: Services, user: User, limit: int = 100) -> list[Batch]:
    return svc.records.list_batches(limit=limit, areas=user.area_list)


def find_visible_batch(svc: Services, user: User, batch_id: str) -> Batch | None:
    batch = svc.records.get_batch(batch_id)
    return batch if batch is not None and user.sees_area(batch.area) else None


def batch_visible(svc: Services, user: User, batch_id: str) -> bool:
    return find_visible_batch(svc, user, batch_id) is not None


def outside_areas(svc: Services, user: User, batch_id: str) -> bool:
    """True for a batch the store holds in an area not granted to the user. Records that
    name a batch the store does not hold (e.g. another system's) are not area-scoped."""
    batch = svc.records.get_batch(batch_id) if batch_id else None
    return batch is not None and not user.sees_area(batch.area)


ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[User, Depends(current_user)]
ClaimsDep = Annotated[tuple[TokenClaims, User], Depends(current_claims)]
