"""The `ebr` command line. Thin: each command builds settings and calls one function."""

from __future__ import annotations

import sys

import typer

from cli.audit_cmds import audit_app
from cli.common import load_settings
from cli.device_cmds import devices_app
from cli.qms_cmds import qms_app
from cli.recipe_cmds import recipe_app
from cli.report_cmds import report_app
from cli.wms_cmds import wms_app

app = typer.Typer(
    help="ebr: electronic batch records on a durable workflow engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(recipe_app, name="recipe")
app.add_typer(devices_app, name="devices")
app.add_typer(report_app, name="report")
app.add_typer(audit_app, name="audit")
app.add_typer(wms_app, name="wms")
app.add_typer(qms_app, name="qms")


@app.command()
def up() -> None:
    """Start the whole stack in the foreground (what `make run` runs).

    The embedded Temporal dev server (unless EBR_TEMPORAL_ADDRESS is set), simulated
    devices, one worker and the API and web pages. Seeds demo users and recipes on
    first start. Ctrl-C stops everything; data stays under var/.
    """
    from runtime.stack import run_foreground

    raise typer.Exit(run_foreground(load_settings()))


@app.command()
def worker() -> None:
    """Run one Temporal worker for batch workflows and their activities."""
    from runtime.worker_main import run_worker

    raise typer.Exit(run_worker(load_settings()))


@app.command()
def api() -> None:
    """Serve the HTTP API and web pages (EBR_API_HOST:EBR_API_PORT)."""
    import uvicorn

    from api.app import create_app

    settings = load_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="warning")


@app.command()
def demo() -> None:
    """Run one batch of the example recipe end to end through the HTTP API.

    Prints the signed eBMR's path as its last line. Starts the stack if none is
    running, and stops what it started.
    """
    from runtime.demo import DemoError, run_demo

    try:
        path = run_demo(load_settings())
    except (DemoError, RuntimeError) as exc:
        typer.echo(f"ebr demo: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(str(path))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
