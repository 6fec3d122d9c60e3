"""Recipe authoring pages: versions, upload or edit YAML, semantic diff, review, approval.

Every action calls the JSON API's own route function (`api.routes_recipes`), so the page
and the API validate, refuse and record the same things: an author cannot approve their
own version (the store refuses and the page shows why), approval is an e-signature with
the password re-entered. Validation problems are shown at their lines in the YAML.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api import routes_recipes
from api.deps import ServicesDep
from api.pages_common import (
    REFUSALS,
    PageUserDep,
    Refused,
    attempt,
    forbidden,
    has_role,
    page_viewer,
    refusal_message,
    refusal_status,
    render,
)
from api.schemas import RecipeApproveRequest, RecipeReason, RecipeUpload
from recipes.errors import Problem, RecipeError
from store.models import RecipeVersion, User
from store.recipes import DRAFT, IN_REVIEW, STATUSES

router = APIRouter(include_in_schema=False)
AUTHOR, APPROVER = routes_recipes.AUTHOR, routes_recipes.APPROVER
# Reading recipes is open to everyone who works with them; changing them is not.
READ_ROLES = (AUTHOR, APPROVER, "qa", "supervisor", "auditor")
RecipeReaderDep = Annotated[User, page_viewer(*READ_ROLES)]
AuthorDep = Annotated[User, page_viewer(AUTHOR)]
# The API's own bound on a recipe upload (api.schemas.RecipeUpload.yaml).
MAX_YAML_BYTES = 1_048_576


@router.get("/recipes", response_class=HTMLResponse)
def recipes_page(request: Request, svc: ServicesDep, user: RecipeReaderDep) -> Response:
    grouped: dict[str, list[RecipeVersion]] = defaultdict(list)
    for row in svc.recipes.list():
        grouped[row.recipe_id].append(row)
    return render(request, "recipes.html", {"user": user, "recipes": dict(grouped),
                                            "can_author": has_role(user, AUTHOR)})


@router.get("/recipes/new", response_class=HTMLResponse)
def new_recipe_page(request: Request, svc: ServicesDep, user: AuthorDep) -> Response:
    return render(request, "recipe_edit.html", _edit_context(user, text="", filename=""))


@router.post("/recipes/new", response_class=HTMLResponse)
async def upload_recipe_page(
    request: Request,
    svc: ServicesDep,
    user: PageUserDep,
    yaml_text: Annotated[str, Form(max_length=MAX_YAML_BYTES)] = "",
    filename: Annotated[str, Form(max_length=200)] = "",
    file: Annotated[UploadFile | None, File(description="a recipe YAML file")] = None,
) -> Response:
    """Store a new version, or revise a draft (same id and version, same author)."""
    if not has_role(user, AUTHOR):
        return forbidden(request, user, (AUTHOR,))
    if file is not None and file.filename:
        data = await file.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            return _edit_error(request, user, "", file.filename,
                               "The file is larger than 1 MiB: a recipe is far smaller.")
        try:
            yaml_text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _edit_error(request, user, "", file.filename,
                               "The file is not UTF-8 text: save it as UTF-8 and upload again.")
        filename = file.filename
    filename = filename.strip() or "recipe.yaml"
    if not yaml_text.strip():
        return _edit_error(request, user, yaml_text, filename,
                           "Paste the recipe's YAML or choose a file.")
    try:
        body = RecipeUpload(yaml=yaml_text, filename=filename)
        row = await asyncio.to_thread(
            routes_recipes.upload_recipe, body, svc, user, Response()
        )
    except RecipeError as exc:
        return render(request, "recipe_edit.html",
                      _edit_context(user, yaml_text, filename, problems=exc.problems),
                      status_code=422)
    except ValidationError as exc:
        return _edit_error(request, user, yaml_text, filename, _first_error(exc))
    except REFUSALS as exc:  # the API's refusals (a frozen version, someone else's draft)
        return _edit_error(request, user, yaml_text, filename, refusal_message(exc), 409)
    return RedirectResponse(_version_url(row.recipe_id, row.version) + "?saved=1",
                            status_code=303)


@router.get("/recipes/{recipe_id}", response_class=HTMLResponse)
def recipe_versions_page(
    recipe_id: str, request: Request, svc: ServicesDep, user: RecipeReaderDep
) -> Response:
    versions = [r for r in svc.recipes.list() if r.recipe_id == recipe_id]
    if not versions:
        return render(request, "missing.html",
                      {"user": user, "what": f"Recipe {recipe_id} does not exist."}, 404)
    return render(request, "recipe_versions.html",
                  {"user": user, "recipe_id": recipe_id, "versions": versions})


@router.get("/recipes/{recipe_id}/diff", response_class=HTMLResponse)
def recipe_diff_page(
    recipe_id: str,
    request: Request,
    svc: ServicesDep,
    user: RecipeReaderDep,
    base: Annotated[str, Query(max_length=32)] = "",
    other: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    versions = [r.version for r in svc.recipes.list() if r.recipe_id == recipe_id]
    context: dict[str, Any] = {"user": user, "recipe_id": recipe_id, "versions": versions,
                               "base": base, "other": other, "diff": None, "error": ""}
    if base and other:
        try:
            context["diff"] = routes_recipes.diff_recipe(recipe_id, svc, user, base, other)
        except REFUSALS as exc:
            context["error"] = refusal_message(exc)
    return render(request, "recipe_diff.html", context,
                  status_code=422 if context["error"] else 200)


@router.get("/recipes/{recipe_id}/versions/{version}", response_class=HTMLResponse)
def recipe_version_page(
    recipe_id: str, version: str, request: Request, svc: ServicesDep, user: RecipeReaderDep,
    saved: str = "",
) -> Response:
    message = "Saved. The recipe is valid; submit it for review when it is ready." if saved else ""
    return _version(request, svc, user, recipe_id, version, message=message)


@router.post("/recipes/{recipe_id}/versions/{version}/submit", response_class=HTMLResponse)
async def submit_recipe_page(
    recipe_id: str, version: str, request: Request, svc: ServicesDep, user: PageUserDep
) -> Response:
    return await _act(
        request, svc, user, recipe_id, version,
        lambda: routes_recipes.submit_recipe(recipe_id, version, svc, user),
        f"Version {version} submitted for review: its text is frozen from now on.",
    )


@router.post("/recipes/{recipe_id}/versions/{version}/return", response_class=HTMLResponse)
async def return_recipe_page(
    recipe_id: str, version: str, request: Request, svc: ServicesDep, user: PageUserDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not reason.strip():
        return _version(request, svc, user, recipe_id, version, status_code=422,
                        error="Returning a version to its author needs a reason for the record.")
    body = RecipeReason(reason=reason.strip())
    return await _act(
        request, svc, user, recipe_id, version,
        lambda: routes_recipes.return_recipe(recipe_id, version, body, svc, user),
        f"Version {version} returned to draft.",
    )


@router.post("/recipes/{recipe_id}/versions/{version}/approve", response_class=HTMLResponse)
async def approve_recipe_page(
    recipe_id: str, version: str, request: Request, svc: ServicesDep, user: PageUserDep,
    password: Annotated[str, Form(min_length=1, max_length=256)],
    username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    body = RecipeApproveRequest(password=password, username=username or None)
    try:
        await attempt(routes_recipes.approve_recipe(recipe_id, version, body, svc, user))
    except Refused as exc:
        return _version(request, svc, user, recipe_id, version, error=str(exc), status_code=409)
    return _version(request, svc, user, recipe_id, version,
                    message=f"Version {version} approved, signed by {user.full_name}.")


@router.post("/recipes/{recipe_id}/versions/{version}/effective", response_class=HTMLResponse)
async def effective_recipe_page(
    recipe_id: str, version: str, request: Request, svc: ServicesDep, user: PageUserDep
) -> Response:
    return await _act(
        request, svc, user, recipe_id, version,
        lambda: routes_recipes.make_recipe_effective(recipe_id, version, svc, user),
        f"Version {version} is effective; an earlier effective version is superseded.",
    )


async def _act(
    request: Request, svc: ServicesDep, user: User, recipe_id: str, version: str,
    action: Any, done: str,
) -> Response:
    try:
        # The lifecycle routes are synchronous (database): off the event loop.
        await asyncio.to_thread(action)
    except REFUSALS as exc:
        return _version(request, svc, user, recipe_id, version, error=refusal_message(exc),
                        status_code=refusal_status(exc))
    return _version(request, svc, user, recipe_id, version, message=done)


def _version(
    request: Request, svc: ServicesDep, user: User, recipe_id: str, version: str, *,
    message: str = "", error: str = "", status_code: int = 200,
) -> Response:
    try:
        detail = routes_recipes.get_recipe(recipe_id, version, svc, user)
    except REFUSALS as exc:
        return render(request, "missing.html", {"user": user, "what": refusal_message(exc)},
                      404)
    others = [r.version for r in svc.recipes.list()
              if r.recipe_id == recipe_id and r.version != version]
    context = {
        "user": user, "recipe": detail, "lines": detail.yaml.splitlines(),
        "others": others, "message": message, "error": error,
        "can_edit": detail.status == DRAFT and detail.created_by == user.username
        and has_role(user, AUTHOR),
        "can_submit": detail.status == DRAFT and has_role(user, AUTHOR),
        "can_review": detail.status == IN_REVIEW and has_role(user, APPROVER),
        "can_make_effective": detail.status == "approved" and has_role(user, APPROVER),
        "statuses": STATUSES,
    }
    return render(request, "recipe_version.html", context, status_code=status_code)


def _edit_context(
    user: User, text: str, filename: str, *, problems: list[Problem] | None = None,
    error: str = "",
) -> dict[str, Any]:
    """The editor, and when validation failed, the text with each problem at its line."""
    problems = problems or []
    at_line: dict[int, list[Problem]] = defaultdict(list)
    for problem in problems:
        if problem.line is not None:
            at_line[problem.line].append(problem)
    return {
        "user": user, "text": text, "filename": filename, "error": error,
        "problems": problems, "at_line": dict(at_line),
        "lines": text.splitlines() if problems else [],
    }


def _edit_error(
    request: Request, user: User, text: str, filename: str, error: str, status: int = 422
) -> Response:
    return render(request, "recipe_edit.html", _edit_context(user, text, filename, error=error),
                  status_code=status)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def _version_url(recipe_id: str, version: str) -> str:
    return f"/recipes/{quote(recipe_id, safe='')}/versions/{quote(version, safe='')}"
