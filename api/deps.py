"""Request dependencies: the services and the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.services import Services
from signatures.sessions import SessionRegistry
from signatures.tokens import TokenClaims, TokenError, read_token
from store.models import User

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
    user = svc.users.get(claims.subject)
    if user is None or not user.active:
        raise ApiError(401, "not_authenticated", "This account is not active: log in again.")
    try:
        sessions(svc).check(claims, user)
    except TokenError as exc:
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


ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[User, Depends(current_user)]
ClaimsDep = Annotated[tuple[TokenClaims, User], Depends(current_claims)]
