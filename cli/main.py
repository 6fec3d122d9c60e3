"""The `ebr` command line. Thin: each command builds settings and calls one function."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.audit_cmds import audit_app
from cli.backup_cmds import backup, restore
from cli.common import load_settings
from cli.db_cmds import db_app
from cli.device_cmds import devices_app
from cli.erp_cmds import erp_app
from cli.qms_cmds import qms_app
from cli.recipe_cmds import recipe_app
from cli.report_cmds import report_app
from cli.temporal_cmds import temporal_app
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
app.command()(backup)
app.command()(restore)
app.add_typer(erp_app, name="erp")
app.add_typer(db_app, name="db")
app.add_typer(temporal_app, name="temporal")


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
def worker(
    station: Annotated[str | None, typer.Option(
        help="run only the device activities of the equipment registered at this station "
        "(`station:` in the equipment register), on task queue ebr-station-STATION",
    )] = None,
) -> None:
    """Run one Temporal worker for batch workflows and their activities."""
    from devices.register import RegisterError
    from runtime.equipment import EquipmentError

    try:
        if station is not None:
            from runtime.station_worker import run_station_worker

            raise typer.Exit(run_station_worker(load_settings(), station))
        from runtime.worker_main import run_worker

        raise typer.Exit(run_worker(load_settings()))
    except (EquipmentError, RegisterError) as exc:
        typer.echo(f"ebr worker: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def api() -> None:
    """Serve the HTTP API and web pages (EBR_API_HOST:EBR_API_PORT)."""
    import uvicorn

    from api.app import create_app
    from observability.logs import configure_logging
    from store.migrate import SchemaNotCurrent

    settings = load_settings()
    configure_logging(json_logs=settings.log_format == "json", level=settings.log_level)
    try:
        app_ = create_app(settings)
    except SchemaNotCurrent as exc:
        typer.echo(f"ebr api: {exc}", err=True)
        raise typer.Exit(1) from exc
    # log_config=None: uvicorn keeps our handlers; the middleware writes the access lines.
    uvicorn.run(app_, host=settings.api_host, port=settings.api_port,
                log_config=None, access_log=False)


@app.command()
def demo(
    recipe: Annotated[str, typer.Option(
        "--recipe",
        help="header id of a seeded example: VC-BLEND, WG-PARA, COS-CREAM, DS-VCZN or CS-BRAT",
    )] = "VC-BLEND",
) -> None:
    """Run one batch of an example recipe end to end through the HTTP API.

    Prints the signed eBMR's path as its last line. Starts the stack if none is
    running, and stops what it started.
    """
    from runtime.demo import DemoError, run_demo

    try:
        path = run_demo(load_settings(), recipe_id=recipe)
    except (DemoError, RuntimeError) as exc:
        typer.echo(f"ebr demo: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(str(path))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
