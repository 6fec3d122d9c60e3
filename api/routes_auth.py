"""Log in: a short-lived session token. Signing always asks for the password again."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api.deps import ServicesDep, UserDep
from api.schemas import LoginRequest, TokenResponse
from signatures.tokens import issue_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=TokenResponse)
async def login(body: LoginRequest, svc: ServicesDep) -> TokenResponse:
    user = await asyncio.to_thread(svc.users.authenticate, body.username, body.password)
    ttl = svc.settings.token_ttl_s
    return TokenResponse(
        access_token=issue_token(svc.settings.secrets.jwt_secret, user.username, ttl),
        expires_in=ttl,
        full_name=user.full_name,
        roles=user.role_list,
    )


@router.get("/me")
def me(user: UserDep) -> dict[str, object]:
    return {"username": user.username, "full_name": user.full_name, "roles": user.role_list}
