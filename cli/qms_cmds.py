"""`ebr qms …`: deviations of the built-in QMS (read-only)."""

from __future__ import annotations

import dataclasses
import json

import typer

from cli.common import open_record_store

qms_app = typer.Typer(help="Quality: deviations.", no_args_is_help=True)


@qms_app.command("deviations")
def deviations(batch: str = typer.Option("", help="Only this batch."),
               status: str = typer.Option("", help="open, investigating or closed."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Deviations with classification, status and disposition."""
    from qms.builtin import BuiltinQms
    from wms.builtin import BuiltinWms

    engine = open_record_store()
    rows = BuiltinQms(engine, BuiltinWms(engine)).deviations(batch, status)
    engine.dispose()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(d) for d in rows], indent=2))
        return
    for d in rows:
        typer.echo(f"{d.deviation_id:<12}{d.batch_id:<14}{d.classification:<10}"
                   f"{d.status:<14}{d.disposition or '-':<8}{d.title}")
