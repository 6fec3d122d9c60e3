"""Master recipes: upload (validated), list, read, lifecycle, semantic diff, compile.

Lifecycle routes (see `store/recipes.py`): submit for review (author), return to draft,
approve with an e-signature, make effective and obsolete (approver). Every transition is
audited by the store in the same transaction.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from fastapi import APIRouter, Query, Response

from api.deps import ServicesDep, UserDep, require_role, sign
from api.errors import ApiError
from api.schemas import (
    RecipeApproveRequest,
    RecipeChange,
    RecipeCompiled,
    RecipeCompileRequest,
    RecipeDetail,
    RecipeDiff,
    RecipeHistoryEntry,
    RecipeReason,
    RecipeSummary,
    RecipeUpload,
)
from recipes.compile import plan_dict, plan_sha256
from store.models import RecipeVersion
from store.recipes import RecipeNotFound, RecipeStore
from workflows.messages import APPROVED

router = APIRouter(prefix="/api/v1/recipes", tags=["recipes"])

AUTHOR = "author"
APPROVER = "approver"


def _summary(row: RecipeVersion) -> RecipeSummary:
    return RecipeSummary(
        recipe_id=row.recipe_id,
        version=row.version,
        name=row.name,
        product_code=row.product_code,
        sha256=row.sha256,
        status=row.status,
        approved_by=row.approved_by,
    )


def _found(recipes: RecipeStore, recipe_id: str, version: str) -> RecipeVersion:
    try:
        return recipes.require(recipe_id, version)
    except RecipeNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@router.get("", response_model=list[RecipeSummary])
def list_recipes(svc: ServicesDep, _: UserDep) -> list[RecipeSummary]:
    return [_summary(r) for r in svc.recipes.list()]


@router.post("", response_model=RecipeSummary, status_code=201)
def upload_recipe(
    body: RecipeUpload, svc: ServicesDep, user: UserDep, response: Response
) -> RecipeSummary:
    require_role(user, AUTHOR)
    row, created = svc.recipes.add_version(body.yaml, body.filename, user.username)
    if not created:
        response.status_code = 200
    return _summary(row)


@router.get("/{recipe_id}/versions/{version}", response_model=RecipeDetail)
def get_recipe(recipe_id: str, version: str, svc: ServicesDep, _: UserDep) -> RecipeDetail:
    row = _found(svc.recipes, recipe_id, version)
    history = svc.recipes.history(recipe_id, version)
    return RecipeDetail(
        **_summary(row).model_dump(),
        created_by=row.created_by,
        created_at=row.created_at.isoformat(),
        approved_at=row.approved_at.isoformat() if row.approved_at else None,
        yaml=row.source_text,
        history=[
            RecipeHistoryEntry(at=h.at, actor=h.actor, action=h.action, detail=h.detail)
            for h in history
        ],
    )


@router.post("/{recipe_id}/versions/{version}/submit", response_model=RecipeSummary)
def submit_recipe(recipe_id: str, version: str, svc: ServicesDep, user: UserDep) -> RecipeSummary:
    require_role(user, AUTHOR)
    _found(svc.recipes, recipe_id, version)
    return _summary(svc.recipes.submit_for_review(recipe_id, version, user.username))


@router.post("/{recipe_id}/versions/{version}/return", response_model=RecipeSummary)
def return_recipe(
    recipe_id: str, version: str, body: RecipeReason, svc: ServicesDep, user: UserDep
) -> RecipeSummary:
    require_role(user, APPROVER)
    _found(svc.recipes, recipe_id, version)
    row = svc.recipes.return_to_draft(recipe_id, version, user.username, body.reason)
    return _summary(row)


@router.post("/{recipe_id}/versions/{version}/approve", response_model=RecipeSummary)
async def approve_recipe(
    recipe_id: str, version: str, body: RecipeApproveRequest, svc: ServicesDep, user: UserDep
) -> RecipeSummary:
    await asyncio.to_thread(_found, svc.recipes, recipe_id, version)
    intent = await sign(svc, user, body, APPROVED, APPROVER)
    row = await asyncio.to_thread(svc.recipes.approve, recipe_id, version, intent)
    return _summary(row)


@router.post("/{recipe_id}/versions/{version}/effective", response_model=RecipeSummary)
def make_recipe_effective(
    recipe_id: str, version: str, svc: ServicesDep, user: UserDep
) -> RecipeSummary:
    require_role(user, APPROVER)
    _found(svc.recipes, recipe_id, version)
    return _summary(svc.recipes.make_effective(recipe_id, version, user.username))


@router.post("/{recipe_id}/versions/{version}/obsolete", response_model=RecipeSummary)
def obsolete_recipe(
    recipe_id: str, version: str, body: RecipeReason, svc: ServicesDep, user: UserDep
) -> RecipeSummary:
    require_role(user, APPROVER)
    _found(svc.recipes, recipe_id, version)
    return _summary(svc.recipes.obsolete(recipe_id, version, user.username, body.reason))


@router.get("/{recipe_id}/diff", response_model=RecipeDiff)
def diff_recipe(
    recipe_id: str,
    svc: ServicesDep,
    _: UserDep,
    base: str = Query(description="the older version, e.g. 1.0.0"),
    other: str = Query(description="the newer version, e.g. 1.1.0"),
) -> RecipeDiff:
    for version in (base, other):
        _found(svc.recipes, recipe_id, version)
    changes = svc.recipes.diff(recipe_id, base, other)
    return RecipeDiff(
        recipe_id=recipe_id,
        base=base,
        other=other,
        changes=[RecipeChange(kind=c.kind, subject=c.subject, detail=c.detail) for c in changes],  # type: ignore[arg-type]
    )


@router.post("/{recipe_id}/versions/{version}/compile", response_model=RecipeCompiled)
def compile_recipe(
    recipe_id: str, version: str, body: RecipeCompileRequest, svc: ServicesDep, _: UserDep
) -> RecipeCompiled:
    """Preview the plan of any version for a batch size (batches still need approval)."""
    _found(svc.recipes, recipe_id, version)
    size: Decimal | None = body.batch_size
    plan = svc.recipes.compile(recipe_id, version, size)
    return RecipeCompiled(plan=plan_dict(plan), plan_sha256=plan_sha256(plan))
