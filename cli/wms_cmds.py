"""`ebr wms …`: lots, stock and genealogy of the built-in WMS (read-only)."""

from __future__ import annotations

import dataclasses
import json

import typer

from cli.common import open_record_store

wms_app = typer.Typer(help="Warehouse: lots, stock and genealogy.", no_args_is_help=True)
genealogy_app = typer.Typer(help="Trace lots forward and backward.", no_args_is_help=True)
wms_app.add_typer(genealogy_app, name="genealogy")

AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
DEPTH = typer.Option(10, "--depth", min=1, max=50, help="How many batch generations to follow.")


def _wms():  # type: ignore[no-untyped-def]
    from wms.builtin import BuiltinWms

    return BuiltinWms(open_record_store())


def _trace(direction: str, ref: str, depth: int, as_json: bool) -> None:
    from wms.messages import GenealogyQuery
    from wms.port import WmsError

    wms = _wms()
    try:
        query = GenealogyQuery(ref, depth)
        result = wms.forward(query) if direction == "forward" else wms.backward(query)
    except WmsError as exc:
        typer.echo(f"ebr wms genealogy {direction}: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        wms.engine.dispose()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(result), indent=2))
        return
    if not result.links:
        typer.echo(f"{ref}: no genealogy recorded.")
        return
    typer.echo(f"{'depth':<6}{'input lot':<16}{'material':<16}{'quantity':>12} "
               f"{'batch':<16}{'output lot':<16}")
    for x in result.links:
        typer.echo(f"{x.depth:<6}{x.input_lot:<16}{x.input_material:<16}"
                   f"{x.quantity + ' ' + x.unit:>12} {x.batch_id:<16}{x.output_lot or '-':<16}")


@genealogy_app.command("forward")
def genealogy_forward(lot: str, depth: int = DEPTH, as_json: bool = AS_JSON) -> None:
    """Where did LOT go: the batches it was issued to, their output lots, and on."""
    _trace("forward", lot, depth, as_json)


@genealogy_app.command("backward")
def genealogy_backward(ref: str, depth: int = DEPTH, as_json: bool = AS_JSON) -> None:
    """What went into REF (a batch id, or a produced lot), and into those inputs."""
    _trace("backward", ref, depth, as_json)


@wms_app.command("lots")
def lots(material: str = typer.Option("", help="Only this material code."),
         as_json: bool = AS_JSON) -> None:
    """Lots with status, expiry and quantity on hand."""
    wms = _wms()
    rows = wms.lots(material)
    wms.engine.dispose()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    for r in rows:
        typer.echo(f"{r.lot_number:<16}{r.material_code:<16}{r.status:<12}"
                   f"{r.expiry or '-':<12}{r.on_hand + ' ' + r.unit:>12}")


@wms_app.command("stock")
def stock(lot: str = typer.Option("", help="Only this lot."),
          material: str = typer.Option("", help="Only this material code.")) -> None:
    """Quantity per lot per bin."""
    wms = _wms()
    rows = wms.stock(lot_number=lot, material_code=material)
    wms.engine.dispose()
    for r in rows:
        typer.echo(f"{r['lot_number']:<16}{r['bin_code']:<14}{r['status']:<12}"
                   f"{r['quantity'] + ' ' + r['unit']:>12}")
