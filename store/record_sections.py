"""Sections of the executed batch record that come from the WMS and QMS tables.

The built-in WMS and QMS share the record store's database, so the record assembly reads
their tables directly, in the same session as the rest of the record: material issued
to each phase (lot, quantity, expiry, status), the batch's genealogy (input lots and
quantities, output lots) and its deviations with their signed dispositions.
Everything is returned as plain JSON data (decimals and dates as strings).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from qms.models import DeviationNoteRow, DeviationRow
from wms.models import Genealogy, Lot, Material, Movement

# Movements that put material into (or take it out of) a batch's phases.
_PHASE_MOVEMENTS = ("pick", "issue", "return")


def _text(q: Decimal) -> str:
    # The WMS's own normalisation: trailing zeros there come from unit conversions.
    return format(q.normalize(), "f")


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds")


def _lots(session: Session, numbers: set[str]) -> dict[str, Lot]:
    if not numbers:
        return {}
    return {
        lot.lot_number: lot
        for lot in session.exec(select(Lot).where(col(Lot.lot_number).in_(sorted(numbers))))
    }


def _materials(session: Session, codes: set[str]) -> dict[str, Material]:
    if not codes:
        return {}
    query = select(Material).where(col(Material.code).in_(sorted(codes)))
    return {material.code: material for material in session.exec(query)}


def material_movements(session: Session, batch_id: str) -> dict[str, list[dict[str, Any]]]:
    """Per phase instance (the step record id), the material moved for it, in order."""
    moves = list(
        session.exec(
            select(Movement)
            .where(Movement.batch_id == batch_id, col(Movement.kind).in_(_PHASE_MOVEMENTS))
            .order_by(col(Movement.id))
        )
    )
    lots = _lots(session, {m.lot_number for m in moves})
    materials = _materials(session, {m.material_code for m in moves})
    by_phase: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for move in moves:
        lot = lots.get(move.lot_number)
        material = materials.get(move.material_code)
        by_phase[move.phase_instance].append(
            {
                "kind": move.kind,
                "line": move.line,
                "material_code": move.material_code,
                "material_name": material.name if material else "",
                "lot_number": move.lot_number,
                "supplier_lot": lot.supplier_lot if lot else "",
                "quantity": _text(move.quantity),
                "unit": move.unit,
                "from_bin": move.from_bin,
                "to_bin": move.to_bin,
                "expiry": _day(lot.expiry) if lot else None,
                "retest": _day(lot.retest) if lot else None,
                "lot_status": lot.status if lot else "",
                "sscc": move.sscc,
                "actor": move.actor,
                "at": _iso(move.at),
            }
        )
    return dict(by_phase)


def genealogy(session: Session, batch_id: str) -> dict[str, Any]:
    """Input lots with the net quantity the batch consumed, and the lots it produced."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, str] = {}
    for move in session.exec(
        select(Movement).where(
            Movement.batch_id == batch_id, col(Movement.kind).in_(("issue", "return"))
        )
    ):
        net[move.lot_number] += move.quantity if move.kind == "issue" else -move.quantity
        units[move.lot_number] = move.unit
    outputs = list(
        session.exec(select(Lot).where(Lot.produced_by_batch == batch_id).order_by(Lot.lot_number))
    )
    lots = _lots(session, set(net))
    materials = _materials(
        session, {lot.material_code for lot in [*lots.values(), *outputs]}
    )
    inputs = []
    for number in sorted(net):
        if net[number] == 0:
            continue
        lot = lots.get(number)
        code = lot.material_code if lot else ""
        inputs.append(
            {
                "lot_number": number,
                "material_code": code,
                "material_name": materials[code].name if code in materials else "",
                "quantity": _text(net[number]),
                "unit": units[number],
                "expiry": _day(lot.expiry) if lot else None,
                "lot_status": lot.status if lot else "",
                "supplier_lot": lot.supplier_lot if lot else "",
            }
        )
    produced = [
        {
            "lot_number": lot.lot_number,
            "material_code": lot.material_code,
            "material_name": materials[lot.material_code].name
            if lot.material_code in materials
            else "",
            "expiry": _day(lot.expiry),
            "lot_status": lot.status,
        }
        for lot in outputs
    ]
    # Links recorded explicitly by the WMS (output lot <- input lot); usually a cross
    # product of the two lists above, kept for WMSs that record finer links.
    links = [
        {
            "output_lot": g.output_lot,
            "input_lot": g.input_lot,
            "input_material": g.input_material,
            "quantity": _text(g.quantity),
            "unit": g.unit,
        }
        for g in session.exec(
            select(Genealogy).where(Genealogy.batch_id == batch_id).order_by(col(Genealogy.id))
        )
    ]
    return {"inputs": inputs, "outputs": produced, "links": links}


def deviations(session: Session, batch_id: str) -> list[dict[str, Any]]:
    """The batch's deviations with investigation notes and QA's signed disposition."""
    rows = list(
        session.exec(
            select(DeviationRow)
            .where(DeviationRow.batch_id == batch_id)
            .order_by(col(DeviationRow.id))
        )
    )
    notes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    ids = [row.id for row in rows if row.id is not None]
    if ids:
        for note in session.exec(
            select(DeviationNoteRow)
            .where(col(DeviationNoteRow.deviation_id).in_(ids))
            .order_by(col(DeviationNoteRow.id))
        ):
            notes[note.deviation_id].append(
                {"note": note.note, "author": note.author, "at": _iso(note.at)}
            )
    result = []
    for row in rows:
        signature = _disposition_signature(row)
        result.append(
            {
                "deviation_id": f"DEV-{row.id or 0:06d}",
                "phase_instance": row.phase_instance,
                "classification": row.classification,
                "title": row.title,
                "description": row.description,
                "lots": json.loads(row.lots_json or "[]"),
                "origin": row.origin,
                "status": row.status,
                "opened_by": row.opened_by,
                "opened_at": _iso(row.opened_at),
                "disposition": row.disposition,
                "rationale": row.rationale,
                "capa_ref": row.capa_ref,
                "disposition_by": row.disposition_by,
                "disposition_at": _iso(row.disposition_at),
                "signature": signature,
                "signature_hash": row.signature_hash,
                "notes": notes.get(row.id or 0, []),
            }
        )
    return result


def _disposition_signature(row: DeviationRow) -> dict[str, Any] | None:
    """QA's disposition signature in the record's signature shape (no id: QMS-held)."""
    if not row.signature_json:
        return None
    try:
        sig = json.loads(row.signature_json)
        signer = sig["signer"]
        return {
            "signature_id": None,
            "full_name": signer["full_name"],
            "username": signer["username"],
            "meaning": sig["meaning"],
            "signed_at": sig["signed_at"],
            "content_sha256": row.signature_hash,
        }
    except (ValueError, KeyError, TypeError):
        # Printed as unreadable rather than dropped: the reviewer must see it is damaged.
        return {
            "signature_id": None,
            "full_name": "(unreadable signature record)",
            "username": "",
            "meaning": "",
            "signed_at": "",
            "content_sha256": row.signature_hash,
        }
