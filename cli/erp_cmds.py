"""`ebr erp …`: the ERP boundary — the outbox relay, process orders and the outbox."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.common import load_settings, open_record_store

erp_app = typer.Typer(help="ERP: process orders in, confirmations out.", no_args_is_help=True)
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
REQUEST = typer.Argument(..., exists=True, dir_okay=False, help="JSON production request file")


def _engine():  # type: ignore[no-untyped-def]
    return open_record_store()


@erp_app.command("relay")
def relay() -> None:
    """Queue confirmations of finished batches and deliver them to EBR_ERP_URL (runs until
    stopped; `ebr up` starts it when EBR_ERP_URL is set)."""
    from wms.erp_relay import run_relay_process

    settings = load_settings()
    if not settings.erp_url:
        typer.echo("ebr erp relay: EBR_ERP_URL is not set: set it to the ERP endpoint that "
                   "takes confirmations.", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_relay_process(settings))


@erp_app.command("order")
def order(request: Path = REQUEST) -> None:
    """Store a production request (ISA-95 style JSON) as a process order, once."""
    from wms.erp import create_process_order
    from wms.port import WmsError

    engine = _engine()
    try:
        row, created = create_process_order(engine, request.read_text(encoding="utf-8"),
                                            "cli")
    except WmsError as exc:
        typer.echo(f"ebr erp order: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"{row.order_id}: {'created' if created else 'already received'}")


@erp_app.command("orders")
def orders(as_json: bool = AS_JSON) -> None:
    """Process orders with their batch and status (received, started, confirmed)."""
    from wms.erp import list_orders

    engine = _engine()
    rows = list_orders(engine)
    engine.dispose()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for r in rows:
        typer.echo(f"{r.order_id:<14}{r.product_code:<16}{str(r.quantity) + ' ' + r.unit:>10}  "
                   f"{r.due.isoformat():<12}{r.status:<11}{r.batch_id or '-'}")


@erp_app.command("outbox")
def outbox(status: str = typer.Option("", help="pending, delivered or failed."),
           as_json: bool = AS_JSON) -> None:
    """Confirmations waiting for, delivered to or refused by the ERP."""
    from wms.erp import list_outbox

    engine = _engine()
    rows = list_outbox(engine, status)
    engine.dispose()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for r in rows:
        typer.echo(f"{r.key:<28}{r.order_id:<14}{r.status:<11}{r.attempts:>3}  "
                   f"{r.last_error or ''}")
