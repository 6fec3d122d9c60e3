"""`ebr recipe validate FILE...`: check recipe files, one printable line per result.

Each valid file gives one line
    OK <file> (<id> <version>, <N> steps, sha256 <hex>)
where N is the number of steps compiled at the nominal batch size and <hex> is the SHA-256
of the file's bytes. Each invalid file gives one line per problem,
    <file>:<line>: <path>: <message>

Exit code: 0 when every file is valid, 1 when any recipe is invalid, 2 when a file cannot
be read at all (missing, a directory, no permission) or no file was given.
"""

from __future__ import annotations

from pathlib import Path

from recipes.compile import compile_plan
from recipes.errors import RecipeError, RecipeFileError
from recipes.validate import load_recipe_file

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def validate_paths(paths: list[Path]) -> tuple[int, list[str]]:
    """Validate (and trial-compile) each file; return the exit code and the lines to print."""
    if not paths:
        return EXIT_UNREADABLE, ["no recipe files given; usage: ebr recipe validate FILE..."]
    code, lines = EXIT_OK, []
    for path in paths:
        try:
            recipe = load_recipe_file(path)
            plan = compile_plan(recipe)
        except RecipeFileError as exc:
            code = max(code, EXIT_UNREADABLE)
            lines.extend(str(p) for p in exc.problems)
        except RecipeError as exc:
            code = max(code, EXIT_INVALID)
            lines.extend(str(p) for p in exc.problems)
        else:
            lines.append(
                f"OK {path} ({recipe.id} {recipe.version}, {len(plan.steps)} steps, "
                f"sha256 {recipe.sha256})"
            )
    return code, lines
