"""The `ebr` command line. Thin: each command builds settings and calls one function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="ebr: electronic batch records on a durable workflow engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
recipe_app = typer.Typer(help="Work with master recipe files.", no_args_is_help=True)
devices_app = typer.Typer(help="Simulated instruments.", no_args_is_help=True)
report_app = typer.Typer(help="Signed eBMR documents.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")
app.add_typer(devices_app, name="devices")
app.add_typer(report_app, name="report")


def _settings():  # type: ignore[no-untyped-def]
    from settings.config import Settings

    return Settings()


@app.command()
def up() -> None:
    """Start the whole stack in the foreground (what `make run` runs): the embedded
    Temporal dev server (unless EBR_TEMPORAL_ADDRESS is set), simulated devices, one
    worker and the API/web pages. Seeds demo users and recipes on first start.
    Ctrl-C stops everything; data stays under var/."""
    from runtime.stack import run_foreground

    raise typer.Exit(run_foreground(_settings()))


@app.command()
def worker() -> None:
    """Run one Temporal worker for batch workflows and their activities."""
    from runtime.worker_main import run_worker

    raise typer.Exit(run_worker(_settings()))


@app.command()
def api() -> None:
    """Serve the HTTP API and web pages (EBR_API_HOST:EBR_API_PORT)."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="warning")


@app.command()
def demo() -> None:
    """Run one batch of the example recipe end to end through the HTTP API and print
    the signed eBMR's path last. Starts the stack if none is running."""
    from runtime.demo import DemoError, run_demo

    try:
        path = run_demo(_settings())
    except (DemoError, RuntimeError) as exc:
        typer.echo(f"ebr demo: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(str(path))


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


@devices_app.command("simulate")
def devices_simulate() -> None:
    """Run the simulated MT-SICS scale (pseudo-terminal + TCP) and Modbus mixer PLC."""
    from devices.simulators import run_simulators

    settings = _settings()
    run_simulators(settings.devices_state_file, time_scale=settings.simulator_time_scale)


@report_app.command("verify")
def report_verify(
    pdf: Annotated[Path, typer.Argument(help="the signed eBMR PDF")],
    trust: Annotated[Path | None, typer.Option(help="root certificate (PEM) to trust")] = None,
) -> None:
    """Verify an eBMR offline: signature intact, valid, trusted, and covering the whole file."""
    from reports.verify import VerificationError, verify_pdf

    root = trust or _settings().pki_dir / "root.pem"
    try:
        result = verify_pdf(pdf.read_bytes(), root)
    except (OSError, VerificationError) as exc:
        typer.echo(f"ebr report verify: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"signer: {result.signer}; signed at: {result.signed_at}")
    typer.echo(f"intact={result.intact} valid={result.valid} trusted={result.trusted} "
               f"whole-file={result.covers_whole_file}")
    for problem in result.problems:
        typer.echo(f"problem: {problem}")
    typer.echo("VERIFIED" if result.ok else "NOT VERIFIED")
    raise typer.Exit(0 if result.ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
