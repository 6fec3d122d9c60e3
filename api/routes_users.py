"""User administration (admin role): create, change roles and areas, reset password,
unlock, deactivate. Users are never deleted, so a user id is never reused; every change
is audited with its old and new value and its reason. Administering users grants no
other right: an administrator signs nothing as QA unless also given the qa role."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from api.deps import ServicesDep, UserDep, require_role
from api.errors import ApiError
from api.schemas import Strict
from signatures.identity import ADMIN, IdentityError, NotPermitted
from signatures.passwords import PasswordPolicyError
from store.models import User

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Username = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
Reason = Field(min_length=1, max_length=2000, description="kept in the audit trail")


class UserCreate(Strict):
    username: str = Username
    full_name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=7)
    password: str = Field(min_length=1, max_length=256, description="must be changed by owner")
    reason: str = Reason
    areas: list[str] | None = Field(
        default=None, max_length=50,
        description="areas whose batches the user sees ('*' = every area); "
        "default: EBR_DEFAULT_AREA",
    )


class RolesChange(Strict):
    roles: list[str] = Field(min_length=1, max_length=7)
    reason: str = Reason


class AreasChange(Strict):
    areas: list[str] = Field(max_length=50, description="[] = none, ['*'] = every area")
    reason: str = Reason


class PasswordReset(Strict):
    password: str = Field(min_length=1, max_length=256)
    reason: str = Reason


class ReasonOnly(Strict):
    reason: str = Reason


def _view(svc: ServicesDep, user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "roles": user.role_list,
        "areas": user.area_list,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
        "deactivated_at": user.deactivated_at.isoformat() if user.deactivated_at else None,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "must_change_password": user.must_change_password,
        "password_change_required": svc.users.password_change_reason(user),
    }


async def _admin_call(fn: Any, *args: Any) -> User:
    try:
        return await asyncio.to_thread(fn, *args)
    except PasswordPolicyError as exc:
        raise ApiError(422, "password_policy", str(exc)) from exc
    except NotPermitted:
        raise
    except IdentityError as exc:
        status = 404 if str(exc).startswith("There is no user") else 409
        raise ApiError(status, "user_refused", str(exc)) from exc


@router.get("")
def list_users(user: UserDep, svc: ServicesDep) -> list[dict[str, Any]]:
    require_role(user, ADMIN)
    return [_view(svc, u) for u in svc.users.list_users()]


@router.post("", status_code=201)
async def create_user(body: UserCreate, user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    require_role(user, ADMIN)
    created = await _admin_call(
        svc.users.create_user, user, body.username, body.full_name, body.roles,
        body.password, body.reason, body.areas,
    )
    return _view(svc, created)


@router.put("/{username}/roles")
async def set_roles(
    username: str, body: RolesChange, user: UserDep, svc: ServicesDep
) -> dict[str, Any]:
    require_role(user, ADMIN)
    changed = await _admin_call(svc.users.set_roles, user, username, body.roles, body.reason)
    return _view(svc, changed)


@router.put("/{username}/areas")
async def set_areas(
    username: str, body: AreasChange, user: UserDep, svc: ServicesDep
) -> dict[str, Any]:
    require_role(user, ADMIN)
    changed = await _admin_call(svc.users.set_areas, user, username, body.areas, body.reason)
    return _view(svc, changed)


@router.post("/{username}/password")
async def reset_password(
    username: str, body: PasswordReset, user: UserDep, svc: ServicesDep
) -> dict[str, Any]:
    require_role(user, ADMIN)
    changed = await _admin_call(
        svc.users.reset_password, user, username, body.password, body.reason
    )
    return _view(svc, changed)


@router.post("/{username}/unlock")
async def unlock(username: str, body: ReasonOnly, user: UserDep, svc: ServicesDep) -> dict:
    require_role(user, ADMIN)
    return _view(svc, await _admin_call(svc.users.unlock, user, username, body.reason))


@router.post("/{username}/deactivate")
async def deactivate(username: str, body: ReasonOnly, user: UserDep, svc: ServicesDep) -> dict:
    require_role(user, ADMIN)
    return _view(svc, await _admin_call(svc.users.deactivate, user, username, body.reason))
