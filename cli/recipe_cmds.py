"""`ebr recipe …`: work with master recipe files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

recipe_app = typer.Typer(help="Work with master recipe files.", no_args_is_help=True)


@recipe_app.command("validate")
def recipe_validate(
    files: Annotated[list[Path], typer.Argument(help="recipe YAML files", metavar="FILE...")],
) -> None:
    """Validate recipe files against the schema and the semantic rules."""
    from recipes.validate_cli import validate_paths

    code, lines = validate_paths(files)
    for line in lines:
        typer.echo(line)
    raise typer.Exit(code)
