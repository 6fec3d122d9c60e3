"""`ebr recipe compile` and `ebr recipe diff`: what the commands print, and their exit codes.

ebr recipe compile FILE [--batch-size N]
    prints the compiled BatchPlan as JSON (stdout) and `plan sha256 <hex>` (stderr);
    exit 0, or 1 when the recipe is invalid or N is outside its batch range,
    2 when the file cannot be read or N is not a number.
ebr recipe diff A B
    prints one line per semantic change from A to B, `<kind> <subject>: <detail>`;
    exit 0 when they describe the same process, 1 when there are changes (like diff(1)),
    2 when a file cannot be read or is not a valid recipe.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from recipes.compile import compile_plan, plan_dict, plan_sha256
from recipes.diff import diff_recipes
from recipes.errors import RecipeError, RecipeFileError
from recipes.validate import load_recipe_file

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_DIFFERENT = 1
EXIT_TROUBLE = 2


def compile_path(path: Path, batch_size: str | None) -> tuple[int, str, list[str]]:
    """(exit code, plan JSON for stdout or "", lines for stderr)."""
    size: Decimal | None = None
    if batch_size is not None:
        try:
            size = Decimal(batch_size)
        except InvalidOperation:
            return EXIT_TROUBLE, "", [f"--batch-size {batch_size!r} is not a number; e.g. 2.5"]
        if not size.is_finite() or size <= 0:
            return EXIT_TROUBLE, "", [f"--batch-size must be a positive number, not {batch_size}"]
    try:
        plan = compile_plan(load_recipe_file(path), size)
    except RecipeFileError as exc:
        return EXIT_TROUBLE, "", [str(p) for p in exc.problems]
    except RecipeError as exc:
        return EXIT_INVALID, "", [str(p) for p in exc.problems]
    text = json.dumps(plan_dict(plan), indent=2, ensure_ascii=False)
    return EXIT_OK, text, [f"plan sha256 {plan_sha256(plan)}"]


def diff_paths(old: Path, new: Path) -> tuple[int, list[str]]:
    """(exit code, lines): the semantic changes from `old` to `new`, or the problems."""
    recipes, problems = [], []
    for path in (old, new):
        try:
            recipes.append(load_recipe_file(path))
        except RecipeError as exc:
            problems += [str(p) for p in exc.problems]
    if problems:
        return EXIT_TROUBLE, problems
    changes = diff_recipes(recipes[0], recipes[1])
    if not changes:
        return EXIT_OK, [f"no semantic changes from {old} to {new}"]
    return EXIT_DIFFERENT, [str(c) for c in changes]
