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


@recipe_app.command("compile")
def recipe_compile(
    file: Annotated[Path, typer.Argument(help="recipe YAML file", metavar="FILE")],
    batch_size: Annotated[
        str | None,
        typer.Option("--batch-size", help="in the recipe's batch unit; default: nominal size"),
    ] = None,
) -> None:
    """Print the execution plan of a recipe for a batch size, as JSON."""
    from recipes.commands import compile_path

    code, plan, notes = compile_path(file, batch_size)
    if plan:
        typer.echo(plan)
    for line in notes:
        typer.echo(line, err=True)
    raise typer.Exit(code)


@recipe_app.command("diff")
def recipe_diff(
    old: Annotated[Path, typer.Argument(help="the older recipe file", metavar="A")],
    new: Annotated[Path, typer.Argument(help="the newer recipe file", metavar="B")],
) -> None:
    """List the semantic changes from recipe A to recipe B (exit 1 when there are any)."""
    from recipes.commands import diff_paths

    code, lines = diff_paths(old, new)
    for line in lines:
        typer.echo(line, err=code == 2)
    raise typer.Exit(code)


@recipe_app.command("simulate")
def recipe_simulate(
    file: Annotated[Path, typer.Argument(help="recipe YAML file", metavar="FILE")],
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", help="scenario YAML: values to enter, weights, decisions"),
    ] = None,
    batch_size: Annotated[
        str | None,
        typer.Option("--batch-size", help="in the recipe's batch unit; default: nominal size"),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="also write the executed record as JSON to this file"),
    ] = None,
) -> None:
    """Run a recipe end to end on Temporal's time-skipping test server with scripted
    operators and simulated instruments; print the path taken, failures and the record."""
    from runtime.simulate import simulate_path

    code, lines = simulate_path(file, scenario, batch_size, record)
    for line in lines:
        typer.echo(line, err=code != 0)
    raise typer.Exit(code)
