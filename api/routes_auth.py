"""Log in: a short-lived session token. Signing always asks for the password again."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import Field

from api.deps import ClaimsDep, ServicesDep, UserDep, sessions
from api.errors import ApiError
from api.schemas import LoginRequest, Strict, TokenResponse
from signatures.identity import AccountLocked, IdentityError
from signatures.passwords import PasswordPolicyError
from store.models import User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginResponse(TokenResponse):
    password_change_required: str | None = Field(
        default=None, description="why the password must be changed before signing, if so"
    )


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


def _session_response(svc: ServicesDep, user: User) -> LoginResponse:
    ttl = svc.settings.token_ttl_s
    token = sessions(svc).open(svc.settings.secrets.jwt_secret, user, ttl)
    return LoginResponse(
        access_token=token,
        expires_in=ttl,
        full_name=user.full_name,
        roles=user.role_list,
        password_change_required=svc.users.password_change_reason(user),
    )


@router.post("/login", response_model=LoginResponse)
async def login(body: LoginRequest, svc: ServicesDep) -> LoginResponse:
    try:
        user = await asyncio.to_thread(svc.users.authenticate, body.username, body.password)
    except AccountLocked as exc:
        raise ApiError(423, "account_locked", str(exc)) from exc
    return await asyncio.to_thread(_session_response, svc, user)


@router.post("/logout")
def logout(claims_user: ClaimsDep, svc: ServicesDep) -> dict[str, str]:
    sessions(svc).logout(claims_user[0])
    return {"status": "logged out"}


@router.post("/password", response_model=LoginResponse)
async def change_password(body: PasswordChange, user: UserDep, svc: ServicesDep) -> LoginResponse:
    """Change your own password. Every earlier token is revoked; a fresh one is returned."""
    try:
        changed = await asyncio.to_thread(
            svc.users.change_password, user.username, body.current_password, body.new_password
        )
    except AccountLocked as exc:
        raise ApiError(423, "account_locked", str(exc)) from exc
    except PasswordPolicyError as exc:
        raise ApiError(422, "password_policy", str(exc)) from exc
    except IdentityError as exc:
        if exc.__class__ is IdentityError:
            raise ApiError(422, "password_refused", str(exc)) from exc
        raise
    return await asyncio.to_thread(_session_response, svc, changed)


@router.get("/me")
def me(user: UserDep, svc: ServicesDep) -> dict[str, object]:
    expires = svc.users.password_expires_at(user)
    return {
        "username": user.username,
        "full_name": user.full_name,
        "roles": user.role_list,
        "password_expires_at": expires.isoformat() if expires else None,
        "password_change_required": svc.users.password_change_reason(user),
    }
