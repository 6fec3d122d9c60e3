"""What an external WMS/QMS did for a batch, journaled into ebr's own audit trail.

Why a journal and not a query at report time: the signed eBMR must be complete and
verifiable offline, years later, from the PDF alone. Asking the external WMS/QMS when the
record is assembled would make the record depend on a system that may be down, migrated
or purged by then, and whose answer ebr cannot prove. So at the moment the batch's own
call succeeds (the record-write point) the port wrapper appends what the external system
confirmed — the issued lot and quantity, the opened deviation, QA's disposition — to the
hash-chained audit trail, keyed on the call's own business key (the issue key, the
deviation id), so a retried activity writes nothing twice. `store.record_sections` reads
these entries back when the built-in tables hold nothing for the batch, and every entry
names the external system it came from, so the record states where the data lives.

The workflow is unchanged: the wrapper sits between the activities (and the API routes,
through `wms.wiring`) and the HTTP adapter.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from qms.messages import (
    Deviation,
    DeviationQuery,
    DeviationRef,
    DispositionRequest,
    LotHoldRequest,
    LotReleaseRequest,
    NoteRequest,
    OpenDeviationRequest,
    OpenDeviations,
    OpenDeviationsQuery,
)
from qms.messages import LotStatusChanged as QmsLotStatusChanged
from qms.port import QmsPort
from store import audit
from store.db import transaction
from store.models import AuditEvent
from wms.messages import (
    Genealogy,
    GenealogyQuery,
    Issued,
    IssueRequest,
    LotInfo,
    LotQuery,
    LotStatusChanged,
    LotStatusRequest,
    OutputRecorded,
    OutputRequest,
    Picked,
    PickRequest,
    Reservation,
    ReserveRequest,
    Returned,
    ReturnRequest,
    ScanRequest,
    ScanResult,
)
from wms.port import WmsPort

# Audit actions of journaled external events; record_sections reads these back.
WMS_ISSUED = "external.wms.issued"
WMS_RETURNED = "external.wms.returned"
WMS_OUTPUT = "external.wms.output"
QMS_OPENED = "external.qms.deviation_opened"
QMS_NOTE = "external.qms.deviation_note"
QMS_DISPOSITION = "external.qms.deviation_disposition"
EXTERNAL_ACTIONS = (WMS_ISSUED, WMS_RETURNED, WMS_OUTPUT, QMS_OPENED, QMS_NOTE, QMS_DISPOSITION)


def _append(engine: Engine, *, key: str, actor: str, action: str, subject: str,
            detail: dict[str, Any]) -> None:
    # Audit details are flat text: nested values (lots, signatures) travel as JSON text.
    flat = {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in detail.items()}
    with transaction(engine) as session:
        audit.append(session, key=key, actor=actor, action=action, subject=subject,
                     detail=flat)


class JournaledWms:
    """An external WMS whose issues, returns and outputs are journaled for the record."""

    def __init__(self, inner: WmsPort, engine: Engine, source: str) -> None:
        self.inner, self.engine, self.source = inner, engine, source

    def issue(self, request: IssueRequest) -> Issued:
        issued = self.inner.issue(request)
        _append(
            self.engine, key=f"{request.batch_id}/external-wms/{request.key}",
            actor=request.actor, action=WMS_ISSUED,
            subject=f"{request.batch_id}/{request.phase_instance}",
            detail={"source": self.source, "phase_instance": request.phase_instance,
                    "line": str(request.line), "material_code": request.material_code,
                    "lot_number": issued.lot_number, "quantity": issued.quantity,
                    "unit": issued.unit, "from_bin": request.bin_code},
        )
        return issued

    def return_material(self, request: ReturnRequest) -> Returned:
        returned = self.inner.return_material(request)
        _append(
            self.engine, key=f"{request.batch_id}/external-wms/{request.key}",
            actor=request.actor, action=WMS_RETURNED,
            subject=f"{request.batch_id}/{request.phase_instance}",
            detail={"source": self.source, "phase_instance": request.phase_instance,
                    "line": str(request.line), "lot_number": returned.lot_number,
                    "quantity": returned.quantity, "unit": returned.unit,
                    "to_bin": request.to_bin},
        )
        return returned

    def record_output(self, request: OutputRequest) -> OutputRecorded:
        recorded = self.inner.record_output(request)
        _append(
            self.engine, key=f"{request.batch_id}/external-wms/{request.key}",
            actor=request.actor, action=WMS_OUTPUT, subject=request.batch_id,
            detail={"source": self.source, "lot_number": recorded.lot_number,
                    "material_code": request.material_code, "quantity": request.quantity,
                    "unit": request.unit, "expiry": request.expiry},
        )
        return recorded

    # Calls that change nothing the record shows pass straight through.
    def verify_scan(self, request: ScanRequest) -> ScanResult:
        return self.inner.verify_scan(request)

    def reserve(self, request: ReserveRequest) -> Reservation:
        return self.inner.reserve(request)

    def pick(self, request: PickRequest) -> Picked:
        return self.inner.pick(request)

    def set_lot_status(self, request: LotStatusRequest) -> LotStatusChanged:
        return self.inner.set_lot_status(request)

    def lot(self, query: LotQuery) -> LotInfo:
        return self.inner.lot(query)

    def forward(self, query: GenealogyQuery) -> Genealogy:
        return self.inner.forward(query)

    def backward(self, query: GenealogyQuery) -> Genealogy:
        return self.inner.backward(query)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class JournaledQms:
    """An external QMS whose deviations raised through ebr are journaled for the record."""

    def __init__(self, inner: QmsPort, engine: Engine, source: str) -> None:
        self.inner, self.engine, self.source = inner, engine, source

    def open_deviation(self, request: OpenDeviationRequest) -> DeviationRef:
        ref = self.inner.open_deviation(request)
        _append(
            self.engine, key=f"{request.batch_id}/external-qms/{ref.deviation_id}/opened",
            actor=request.actor, action=QMS_OPENED,
            subject=f"{request.batch_id}/{request.phase_instance}",
            detail={"source": self.source, "deviation_id": ref.deviation_id,
                    "phase_instance": request.phase_instance,
                    "classification": request.classification, "title": request.title,
                    "description": request.description, "lots": request.lots,
                    "origin": request.origin, "status": ref.status},
        )
        return ref

    def add_note(self, request: NoteRequest) -> DeviationRef:
        ref = self.inner.add_note(request)
        _append(
            self.engine, key=f"{self._subject(ref.deviation_id)}/note/{request.key}",
            actor=request.actor, action=QMS_NOTE, subject=self._subject(ref.deviation_id),
            detail={"source": self.source, "deviation_id": ref.deviation_id,
                    "note": request.note, "status": ref.status},
        )
        return ref

    def disposition(self, request: DispositionRequest) -> DeviationRef:
        ref = self.inner.disposition(request)
        signer = request.signature.signer
        _append(
            self.engine, key=f"{self._subject(ref.deviation_id)}/disposition",
            actor=signer.username, action=QMS_DISPOSITION,
            subject=self._subject(ref.deviation_id),
            detail={"source": self.source, "deviation_id": ref.deviation_id,
                    "disposition": request.disposition, "rationale": request.rationale,
                    "capa_ref": request.capa_ref, "status": ref.status,
                    "full_name": signer.full_name, "meaning": request.signature.meaning,
                    "signed_at": request.signature.signed_at},
        )
        return ref

    def _subject(self, deviation_id: str) -> str:
        """`<batch>/external-qms/<id>` when ebr journaled the opening, so the entry lands
        in that batch's record; a deviation opened outside ebr has no batch here."""
        suffix = f"/external-qms/{deviation_id}/opened"
        with Session(self.engine) as session:
            opened = session.exec(
                select(AuditEvent.subject, AuditEvent.key)
                .where(AuditEvent.action == QMS_OPENED, col(AuditEvent.key).endswith(suffix))
            ).first()
        if opened is None:
            return f"external-qms/{deviation_id}"
        return opened[1].removesuffix("/opened")

    def deviation(self, query: DeviationQuery) -> Deviation:
        return self.inner.deviation(query)

    def open_deviations(self, query: OpenDeviationsQuery) -> OpenDeviations:
        return self.inner.open_deviations(query)

    def hold_lot(self, request: LotHoldRequest) -> QmsLotStatusChanged:
        return self.inner.hold_lot(request)

    def release_lot(self, request: LotReleaseRequest) -> QmsLotStatusChanged:
        return self.inner.release_lot(request)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
