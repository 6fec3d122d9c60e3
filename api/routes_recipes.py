"""Master recipes: upload (validated), list, approve with an e-signature."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from api.deps import ServicesDep, UserDep, require_role
from api.schemas import RecipeApproveRequest, RecipeSummary, RecipeUpload
from store.models import RecipeVersion
from workflows.messages import APPROVED

router = APIRouter(prefix="/api/v1/recipes", tags=["recipes"])


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


@router.get("", response_model=list[RecipeSummary])
def list_recipes(svc: ServicesDep, _: UserDep) -> list[RecipeSummary]:
    return [_summary(r) for r in svc.recipes.list()]


@router.post("", response_model=RecipeSummary, status_code=201)
def upload_recipe(
    body: RecipeUpload, svc: ServicesDep, user: UserDep, response: Response
) -> RecipeSummary:
    require_role(user, "author")
    row, created = svc.recipes.add_version(body.yaml, body.filename, user.username)
    if not created:
        response.status_code = 200
    return _summary(row)


@router.post("/{recipe_id}/versions/{version}/approve", response_model=RecipeSummary)
async def approve_recipe(
    recipe_id: str, version: str, body: RecipeApproveRequest, svc: ServicesDep, user: UserDep
) -> RecipeSummary:
    intent = await asyncio.to_thread(svc.users.sign, user, body.password, APPROVED, "approver")
    row = await asyncio.to_thread(svc.recipes.approve, recipe_id, version, intent)
    return _summary(row)
