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
from store import external_journal as journal
from store.models import AuditEvent
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


# --- an external WMS/QMS: what ebr journaled at the time (store.external_journal) ------


def _journal(session: Session, batch_id: str, actions: tuple[str, ...]) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent)
            .where(
                col(AuditEvent.action).in_(actions),
                col(AuditEvent.subject).startswith(f"{batch_id}/")
                | (AuditEvent.subject == batch_id),
            )
            .order_by(col(AuditEvent.id))
        )
    )


def _source_note(system: str, urls: set[str], what: str) -> str:
    where = ", ".join(sorted(urls))
    return (
        f"{what} recorded by the external {system} {where}: shown as journaled by ebr when "
        f"the {system} confirmed them; that system holds the authoritative record"
    )


def external_materials(session: Session, batch_id: str) -> dict[str, list[dict[str, Any]]]:
    """Per phase instance, the issues and returns an external WMS confirmed for the batch.
    Lot master data (expiry, status, supplier lot) stays in that WMS: marked unknown."""
    by_phase: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in _journal(session, batch_id, (journal.WMS_ISSUED, journal.WMS_RETURNED)):
        d = json.loads(event.detail_json)
        by_phase[d["phase_instance"]].append(
            {
                "kind": "issue" if event.action == journal.WMS_ISSUED else "return",
                "line": int(d.get("line") or 0),
                "material_code": d.get("material_code", ""),
                "material_name": "",
                "lot_number": d["lot_number"],
                "supplier_lot": "",
                "quantity": d["quantity"],
                "unit": d["unit"],
                "from_bin": d.get("from_bin", ""),
                "to_bin": d.get("to_bin", ""),
                "expiry": None,
                "retest": None,
                "lot_status": f"held by the external WMS {d['source']}",
                "sscc": "",
                "actor": event.actor,
                "at": _iso(event.at),
                "recorded_by": f"external WMS {d['source']}",
                "audit_id": event.id,
            }
        )
    return dict(by_phase)


def external_genealogy(session: Session, batch_id: str) -> dict[str, Any] | None:
    """Net input lots and output lots from the journal; None when nothing was journaled."""
    events = _journal(
        session, batch_id, (journal.WMS_ISSUED, journal.WMS_RETURNED, journal.WMS_OUTPUT)
    )
    if not events:
        return None
    net: dict[str, Decimal] = defaultdict(Decimal)
    info: dict[str, dict[str, str]] = {}
    outputs, sources = [], set()
    for event in events:
        d = json.loads(event.detail_json)
        sources.add(d["source"])
        if event.action == journal.WMS_OUTPUT:
            outputs.append(
                {
                    "lot_number": d["lot_number"],
                    "material_code": d.get("material_code", ""),
                    "material_name": "",
                    "expiry": d.get("expiry") or None,
                    "lot_status": f"held by the external WMS {d['source']}",
                }
            )
            continue
        sign = 1 if event.action == journal.WMS_ISSUED else -1
        net[d["lot_number"]] += sign * Decimal(d["quantity"])
        info.setdefault(
            d["lot_number"], {"unit": d["unit"], "material_code": "", "source": d["source"]}
        )
        if d.get("material_code"):
            info[d["lot_number"]]["material_code"] = d["material_code"]
    inputs = [
        {
            "lot_number": number,
            "material_code": info[number]["material_code"],
            "material_name": "",
            "quantity": _text(net[number]),
            "unit": info[number]["unit"],
            "expiry": None,
            "lot_status": "",
            "supplier_lot": "",
            "recorded_by": f"external WMS {info[number]['source']}",
        }
        for number in sorted(net)
        if net[number] != 0
    ]
    return {
        "inputs": inputs,
        "outputs": outputs,
        "links": [],
        "source": _source_note("WMS", sources, "Material issues, returns and output lots"),
    }


def external_deviations(session: Session, batch_id: str) -> list[dict[str, Any]]:
    """Deviations raised through ebr in an external QMS, with the notes and disposition
    made through ebr. A disposition made directly in that QMS cannot be known here: the
    entry says so instead of showing an empty disposition."""
    events = _journal(
        session, batch_id, (journal.QMS_OPENED, journal.QMS_NOTE, journal.QMS_DISPOSITION)
    )
    result: dict[str, dict[str, Any]] = {}
    for event in events:
        d = json.loads(event.detail_json)
        dev_id = d["deviation_id"]
        if event.action == journal.QMS_OPENED:
            result[dev_id] = {
                "deviation_id": dev_id,
                "phase_instance": d["phase_instance"],
                "classification": d["classification"],
                "title": d["title"],
                "description": d["description"],
                "lots": json.loads(d.get("lots") or "[]"),
                "origin": d["origin"],
                "status": d["status"],
                "opened_by": event.actor,
                "opened_at": _iso(event.at),
                "disposition": "",
                "rationale": (
                    f"not recorded through ebr: see the external QMS {d['source']}"
                ),
                "capa_ref": "",
                "disposition_by": "",
                "disposition_at": None,
                "signature": None,
                "signature_hash": "",
                "notes": [],
                "recorded_by": f"external QMS {d['source']}",
            }
            continue
        entry = result.get(dev_id)
        if entry is None:
            continue
        entry["status"] = d["status"]
        if event.action == journal.QMS_NOTE:
            entry["notes"].append({"note": d["note"], "author": event.actor, "at": _iso(event.at)})
        else:
            entry |= {
                "disposition": d["disposition"],
                "rationale": d["rationale"],
                "capa_ref": d["capa_ref"],
                "disposition_by": event.actor,
                "disposition_at": _iso(event.at),
                "signature": {
                    "signature_id": None,
                    "full_name": d["full_name"],
                    "username": event.actor,
                    "meaning": d["meaning"],
                    "signed_at": d["signed_at"],
                    "content_sha256": event.hash,
                },
            }
    return list(result.values())


def external_sources(session: Session, batch_id: str) -> dict[str, str]:
    """The external WMS and QMS named by the batch's journal entries ('' keys absent)."""
    found: dict[str, set[str]] = defaultdict(set)
    for event in _journal(session, batch_id, journal.EXTERNAL_ACTIONS):
        system = "wms" if event.action.startswith("external.wms.") else "qms"
        found[system].add(json.loads(event.detail_json)["source"])
    return {system: ", ".join(sorted(urls)) for system, urls in found.items()}


def merged_genealogy(session: Session, batch_id: str) -> dict[str, Any]:
    """The built-in genealogy, extended by an external WMS's journaled lots (a batch may
    have started before the site wired its external WMS) with the note naming it."""
    built_in = genealogy(session, batch_id)
    external = external_genealogy(session, batch_id)
    if external is None:
        return built_in
    return {
        **{key: [*built_in[key], *external[key]] for key in ("inputs", "outputs", "links")},
        "source": external["source"],
    }
