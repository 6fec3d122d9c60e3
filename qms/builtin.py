"""ebr's own QMS: deviations with a signed QA disposition, and lot holds/releases.

Lot status lives in the WMS; holds and releases go through the WMS port, so with an
external WMS the same QMS still blocks picks immediately. The WMS call comes first and
is idempotent on its own key: a retry after a crash between the two steps re-applies
nothing and still records the QMS side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from qms import messages as q
from qms.models import DeviationNoteRow, DeviationRow, QmsRequest
from qms.port import (
    DeviationClosed,
    DispositionRefused,
    InvalidDeviation,
    LotHasOpenDeviation,
    QmsIdempotencyConflict,
    UnknownDeviation,
)
from signatures.canonical import content_hash
from store import audit
from store.db import transaction
from store.models import utcnow
from wms.codec import encode
from wms.idempotent import write_once
from wms.messages import ON_HOLD, RELEASED, LotStatusChanged, LotStatusRequest
from wms.port import WmsPort

R = TypeVar("R")
QA_ROLE = "qa"


def _number(row_id: int | None) -> str:
    return f"DEV-{row_id or 0:06d}"


def _id(deviation_id: str) -> int:
    try:
        return int(deviation_id.removeprefix("DEV-"))
    except ValueError as exc:
        raise UnknownDeviation(f"'{deviation_id}' is not a deviation number (DEV-000123).") from exc


class BuiltinQms:
    def __init__(self, engine: Engine, wms: WmsPort) -> None:
        self.engine = engine
        self.wms = wms

    def _write(self, operation: str, request: Any, result_type: type[R],
               apply: Callable[[Session], R]) -> R:
        return write_once(self.engine, QmsRequest, operation, request, result_type, apply,
                          QmsIdempotencyConflict)

    def _row(self, s: Session, deviation_id: str) -> DeviationRow:
        row = s.get(DeviationRow, _id(deviation_id))
        if row is None:
            raise UnknownDeviation(f"Deviation {deviation_id} does not exist.")
        return row

    def open_deviation(self, request: q.OpenDeviationRequest) -> q.DeviationRef:
        if request.classification not in q.CLASSIFICATIONS:
            raise InvalidDeviation(f"Classification '{request.classification}' is not one of "
                                   f"{', '.join(q.CLASSIFICATIONS)}.")
        if not request.title.strip() or not request.description.strip():
            raise InvalidDeviation("A deviation needs a title and a description of what "
                                   "happened.")

        def apply(s: Session) -> q.DeviationRef:
            row = DeviationRow(key=request.key, batch_id=request.batch_id,
                               phase_instance=request.phase_instance,
                               classification=request.classification, title=request.title,
                               description=request.description,
                               lots_json=json.dumps(list(request.lots)), origin=request.origin,
                               status=q.OPEN, opened_by=request.actor)
            s.add(row)
            s.flush()
            number = _number(row.id)
            audit.append(s, key=f"qms:{request.key}", actor=request.actor,
                         action="qms.deviation_opened", subject=request.batch_id or number,
                         detail={"deviation": number, "classification": request.classification,
                                 "phase": request.phase_instance, "title": request.title,
                                 "lots": ",".join(request.lots), "origin": request.origin})
            return q.DeviationRef(key=request.key, deviation_id=number, status=q.OPEN)

        return self._write("open_deviation", request, q.DeviationRef, apply)

    def add_note(self, request: q.NoteRequest) -> q.DeviationRef:
        def apply(s: Session) -> q.DeviationRef:
            row = self._row(s, request.deviation_id)
            if row.status == q.CLOSED:
                raise DeviationClosed(f"{request.deviation_id} is closed ({row.disposition}); "
                                      "open a new deviation for new findings.")
            if not request.note.strip():
                raise InvalidDeviation("The note is empty.")
            s.add(DeviationNoteRow(deviation_id=row.id or 0, note=request.note,
                                   author=request.actor))
            row.status = q.INVESTIGATING
            s.add(row)
            audit.append(s, key=f"qms:{request.key}", actor=request.actor,
                         action="qms.deviation_note", subject=row.batch_id or request.deviation_id,
                         detail={"deviation": request.deviation_id, "note": request.note})
            return q.DeviationRef(key=request.key, deviation_id=request.deviation_id,
                                  status=row.status)

        return self._write("note", request, q.DeviationRef, apply)

    def disposition(self, request: q.DispositionRequest) -> q.DeviationRef:
        sig = request.signature

        def apply(s: Session) -> q.DeviationRef:
            row = self._row(s, request.deviation_id)
            number = request.deviation_id
            if row.status == q.CLOSED:
                raise DeviationClosed(f"{number} was already dispositioned ({row.disposition}) "
                                      f"by {row.disposition_by}.")
            if request.disposition not in q.DISPOSITIONS:
                raise DispositionRefused(f"Disposition '{request.disposition}' is not one of "
                                         f"{', '.join(q.DISPOSITIONS)}.")
            if QA_ROLE not in sig.signer.roles:
                raise DispositionRefused(f"{sig.signer.full_name} does not hold the QA role; a "
                                         "QA person must sign the disposition.")
            if sig.signer.username == row.opened_by:
                raise DispositionRefused(f"{sig.signer.full_name} opened {number}; another QA "
                                         "person must sign its disposition.")
            if not request.rationale.strip():
                raise DispositionRefused("Write the rationale for the disposition.")
            if row.classification in (q.MAJOR, q.CRITICAL):
                if not request.capa_ref.strip():
                    raise DispositionRefused(f"{number} is {row.classification}: give the CAPA "
                                             "reference before signing the disposition.")
                has_note = s.exec(select(DeviationNoteRow).where(
                    DeviationNoteRow.deviation_id == row.id)).first()
                if has_note is None:
                    raise DispositionRefused(f"{number} is {row.classification}: record the "
                                             "investigation (a note) before the disposition.")
            # What the signature binds: the deviation, the decision and who/when/why.
            content = {"deviation": number, "batch": row.batch_id,
                       "classification": row.classification, "disposition": request.disposition,
                       "rationale": request.rationale, "capa_ref": request.capa_ref,
                       "signer": sig.signer.username, "meaning": sig.meaning,
                       "signed_at": sig.signed_at}
            row.status = q.CLOSED
            row.disposition, row.rationale = request.disposition, request.rationale
            row.capa_ref = request.capa_ref
            row.disposition_by = sig.signer.username
            row.disposition_at = utcnow()
            row.signature_json = json.dumps(encode(sig), sort_keys=True)
            row.signature_hash = content_hash(content)
            s.add(row)
            audit.append(s, key=f"qms:{request.key}", actor=sig.signer.username,
                         action="qms.deviation_dispositioned", subject=row.batch_id or number,
                         detail={"deviation": number, "disposition": request.disposition,
                                 "capa_ref": request.capa_ref, "meaning": sig.meaning,
                                 "signature_hash": row.signature_hash})
            return q.DeviationRef(key=request.key, deviation_id=number, status=q.CLOSED)

        return self._write("disposition", request, q.DeviationRef, apply)

    def _view(self, s: Session, row: DeviationRow) -> q.Deviation:
        notes = s.exec(select(DeviationNoteRow).where(DeviationNoteRow.deviation_id == row.id)
                       .order_by(col(DeviationNoteRow.id)))
        return q.Deviation(
            deviation_id=_number(row.id), batch_id=row.batch_id,
            phase_instance=row.phase_instance, classification=row.classification,
            title=row.title, description=row.description, status=row.status,
            origin=row.origin, opened_by=row.opened_by, opened_at=row.opened_at.isoformat(),
            lots=json.loads(row.lots_json),
            notes=[q.Note(note=n.note, author=n.author, at=n.at.isoformat()) for n in notes],
            disposition=row.disposition, rationale=row.rationale, capa_ref=row.capa_ref,
            disposition_by=row.disposition_by,
            disposition_at=row.disposition_at.isoformat() if row.disposition_at else "",
            signature_hash=row.signature_hash,
        )

    def deviation(self, query: q.DeviationQuery) -> q.Deviation:
        with Session(self.engine) as s:
            return self._view(s, self._row(s, query.deviation_id))

    def deviations(self, batch_id: str = "", status: str = "") -> list[q.Deviation]:
        with Session(self.engine) as s:
            query = select(DeviationRow).order_by(col(DeviationRow.id))
            if batch_id:
                query = query.where(DeviationRow.batch_id == batch_id)
            if status:
                query = query.where(DeviationRow.status == status)
            return [self._view(s, row) for row in s.exec(query)]

    def open_deviations(self, query: q.OpenDeviationsQuery) -> q.OpenDeviations:
        with Session(self.engine) as s:
            rows = s.exec(select(DeviationRow).where(
                DeviationRow.batch_id == query.batch_id, DeviationRow.status != q.CLOSED)
                .order_by(col(DeviationRow.id)))
            return q.OpenDeviations(batch_id=query.batch_id,
                                    deviations=[self._view(s, r) for r in rows])

    def _open_deviations_naming(self, lot_number: str) -> list[str]:
        with Session(self.engine) as s:
            rows = s.exec(select(DeviationRow).where(DeviationRow.status != q.CLOSED))
            return [_number(r.id) for r in rows if lot_number in json.loads(r.lots_json)]

    def hold_lot(self, request: q.LotHoldRequest) -> LotStatusChanged:
        reason = request.reason
        if request.deviation_id:
            reason = f"{reason} ({request.deviation_id})"
        changed = self.wms.set_lot_status(LotStatusRequest(
            key=f"qms:{request.key}", lot_number=request.lot_number, status=ON_HOLD,
            reason=reason, actor=request.actor))
        with transaction(self.engine) as s:
            audit.append(s, key=f"qms:{request.key}", actor=request.actor,
                         action="qms.lot_hold", subject=request.lot_number,
                         detail={"reason": reason, "old_status": changed.old_status})
        return changed

    def release_lot(self, request: q.LotReleaseRequest) -> LotStatusChanged:
        sig = request.signature
        if QA_ROLE not in sig.signer.roles:
            raise DispositionRefused(f"{sig.signer.full_name} does not hold the QA role; only "
                                     "QA releases lots.")
        blocking = self._open_deviations_naming(request.lot_number)
        if blocking:
            raise LotHasOpenDeviation(f"Lot {request.lot_number} is named in open "
                                      f"deviation(s) {', '.join(blocking)}: disposition them "
                                      "before releasing the lot.")
        changed = self.wms.set_lot_status(LotStatusRequest(
            key=f"qms:{request.key}", lot_number=request.lot_number, status=RELEASED,
            reason=request.reason, actor=sig.signer.username))
        with transaction(self.engine) as s:
            audit.append(s, key=f"qms:{request.key}", actor=sig.signer.username,
                         action="qms.lot_release", subject=request.lot_number,
                         detail={"reason": request.reason, "old_status": changed.old_status,
                                 "meaning": sig.meaning, "signed_at": sig.signed_at})
        return changed
