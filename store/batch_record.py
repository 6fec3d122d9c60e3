"""The executed batch record: batches, step records, signatures, and their audit entries.

Each method is one transaction keyed by the action's idempotency key, so an
activity retried after a crash finds its earlier write and returns it unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from recipes.plan import BatchPlan
from signatures.esign import (
    release_content,
    sign_hash,
    state_change_content,
    step_content,
    verification_content,
)
from store import audit
from store import record_sections as sections
from store.db import transaction
from store.models import ALL_AREAS, DEFAULT_AREA, AuditEvent, Batch, Signature, StepRecord, utcnow
from workflows.messages import (
    RELEASED,
    BatchEvent,
    ReleaseRecordInput,
    SignatureIntent,
    Signer,
    StateChangeRecordInput,
    StepRecorded,
    StepRecordInput,
    VerificationRecordInput,
    WeightReading,
)

RECORD_FORMAT = "ebr.batch-record/1"


class RecordError(Exception):
    """A write the record store refuses; the message says why."""


class BatchConflict(RecordError):
    pass


class BatchRecordStore:
    def __init__(
        self, engine: Engine, *, site_name: str = "", site_timezone: str = "UTC",
        external_wms_url: str = "", external_qms_url: str = "",
    ) -> None:
        """`site_name` and `site_timezone` (an IANA zone name) travel in every assembled
        record, so the signed document shows times in the site's local time with the
        offset, and an auditor elsewhere can still read them unambiguously.
        `external_wms_url` / `external_qms_url` (the configured external systems) are fixed
        into each new batch's creation entry, so its record names them even when the
        batch journaled nothing there."""
        self.engine = engine
        self.external_wms_url = external_wms_url
        self.external_qms_url = external_qms_url
        self.site_name = site_name
        self.site_timezone = site_timezone

    # --- batches -------------------------------------------------------------

    def create_batch(
        self, batch_id: str, plan: BatchPlan, equipment: dict[str, str], created_by: str,
        area: str = DEFAULT_AREA,
    ) -> tuple[Batch, bool]:
        """Insert the batch row; a repeat of the same order returns (existing, False)."""
        with transaction(self.engine) as session:
            existing = session.get(Batch, batch_id)
            if existing is not None:
                if (existing.recipe_id, existing.recipe_version, existing.batch_size) != (
                    plan.recipe_id,
                    plan.recipe_version,
                    plan.batch_size,
                ):
                    raise BatchConflict(
                        f"Batch {batch_id} already exists for {existing.recipe_id} "
                        f"{existing.recipe_version} ({existing.batch_size} "
                        f"{existing.batch_unit}); choose another batch id."
                    )
                return existing, False
            batch = Batch(
                batch_id=batch_id,
                recipe_id=plan.recipe_id,
                recipe_version=plan.recipe_version,
                recipe_sha256=plan.recipe_sha256,
                product_code=plan.product_code,
                product_name=plan.product_name,
                batch_size=plan.batch_size,
                batch_unit=plan.batch_unit,
                equipment_json=json.dumps(equipment, sort_keys=True),
                area=area,
                plan_json=json.dumps(asdict(plan), sort_keys=True),
                created_by=created_by,
            )
            session.add(batch)
            audit.append(
                session,
                key=f"{batch_id}/created",
                actor=created_by,
                action="batch.created",
                subject=batch_id,
                detail={
                    "recipe": f"{plan.recipe_id} {plan.recipe_version}",
                    "batch_size": f"{plan.batch_size} {plan.batch_unit}",
                    "area": area,
                    **self._external_at_creation(),
                },
            )
            return batch, True

    def _external_at_creation(self) -> dict[str, str]:
        # Fixed into the hash-chained creation entry, so the record names the systems
        # the batch ran against even if the site's configuration changes later.
        found = {"external_wms": self.external_wms_url, "external_qms": self.external_qms_url}
        return {key: url for key, url in found.items() if url}

    def get_batch(self, batch_id: str) -> Batch | None:
        with Session(self.engine) as session:
            return session.get(Batch, batch_id)

    def list_batches(self, limit: int = 100, areas: list[str] | None = None) -> list[Batch]:
        """Newest first; with `areas`, only batches of those areas ("*" = every area)."""
        with Session(self.engine) as session:
            query = select(Batch)
            if areas is not None and ALL_AREAS not in areas:
                query = query.where(col(Batch.area).in_(areas))
            query = query.order_by(col(Batch.created_at).desc()).limit(limit)
            return list(session.exec(query))

    def record_event(self, event: BatchEvent) -> int:
        with transaction(self.engine) as session:
            batch = self._batch(session, event.batch_id)
            entry = audit.append(
                session,
                key=event.key,
                actor=event.actor,
                action=event.action,
                subject=event.batch_id,
                detail=event.detail,
                at=_parse(event.at),
            )
            batch.state = event.state
            if event.action == "batch.completed" and batch.completed_at is None:
                batch.completed_at = _parse(event.at)
            session.add(batch)
            assert entry.id is not None
            return entry.id

    # --- signed records ------------------------------------------------------

    def record_step(self, step: StepRecordInput) -> StepRecorded:
        key = f"{step.batch_id}/{step.update_id}"
        with transaction(self.engine) as session:
            existing = session.exec(select(StepRecord).where(StepRecord.key == key)).first()
            if existing is not None:
                assert existing.id is not None
                return StepRecorded(existing.id, existing.content_sha256, existing.signature_id)
            self._batch(session, step.batch_id)
            previous = self._latest(session, step.batch_id, step.step_id)
            if step.reason and previous is None:
                raise RecordError(f"Step {step.step_id} has no recorded value to correct.")
            digest = sign_hash(step_content(step))
            signature = self._add_signature(
                session, key, step.batch_id, f"{step.batch_id}/{step.step_id}", step.signature,
                digest,
            )
            record = StepRecord(
                key=key,
                batch_id=step.batch_id,
                step_id=step.step_id,
                kind=step.kind,
                title=step.title,
                result=step.result,
                values_json=json.dumps(step.values, sort_keys=True),
                reading_json=json.dumps(asdict(step.reading)) if step.reading else None,
                comment=step.values.get("comment", ""),
                content_sha256=digest,
                signature_id=signature.id or 0,
                version=previous.version + 1 if previous and step.reason else 1,
                supersedes_id=previous.id if previous and step.reason else None,
                reason=step.reason,
            )
            session.add(record)
            detail = {"result": step.result, "sha256": digest, **step.values}
            if step.reason and previous is not None:
                detail |= {"reason": step.reason, "old_values": previous.values_json}
            audit.append(
                session,
                key=f"{key}/audit",
                actor=step.signature.signer.username,
                action="step.corrected" if step.reason else "step.completed",
                subject=f"{step.batch_id}/{step.step_id}",
                detail=detail,
            )
            session.flush()
            assert record.id is not None
            return StepRecorded(record.id, digest, signature.id or 0)

    def record_verification(self, verification: VerificationRecordInput) -> StepRecorded:
        key = f"{verification.batch_id}/{verification.update_id}"
        with transaction(self.engine) as session:
            if (earlier := self._signed_before(session, key)) is not None:
                return earlier
            self._batch(session, verification.batch_id)
            digest = sign_hash(verification_content(verification))
            subject = f"{verification.batch_id}/{verification.step_id}"
            signature = self._add_signature(
                session, key, verification.batch_id, f"{subject}/verification",
                verification.signature, digest,
            )
            audit.append(
                session,
                key=f"{key}/audit",
                actor=verification.signature.signer.username,
                action="step.verified",
                subject=subject,
                detail={"step_sha256": verification.step_sha256, "sha256": digest},
            )
            return StepRecorded(0, digest, signature.id or 0)

    def record_release(self, release: ReleaseRecordInput) -> StepRecorded:
        key = f"{release.batch_id}/{release.update_id}"
        with transaction(self.engine) as session:
            if (earlier := self._signed_before(session, key)) is not None:
                return earlier
            batch = self._batch(session, release.batch_id)
            hashes = [r.content_sha256 for r in self._steps(session, release.batch_id)]
            digest = sign_hash(release_content(release, hashes))
            signature = self._add_signature(
                session, key, release.batch_id, f"{release.batch_id}/release", release.signature,
                digest,
            )
            batch.state = release.decision
            if release.decision == RELEASED:
                batch.released_at = _parse(release.signature.signed_at)
            session.add(batch)
            audit.append(
                session,
                key=f"{key}/audit",
                actor=release.signature.signer.username,
                action=f"batch.{release.decision}",
                subject=release.batch_id,
                detail={"reason": release.reason, "sha256": digest},
            )
            return StepRecorded(0, digest, signature.id or 0)

    def record_state_change(self, change: StateChangeRecordInput) -> StepRecorded:
        """Hold, restart or abort: the signed decision, its reason, and the new state."""
        key = f"{change.batch_id}/{change.update_id}"
        with transaction(self.engine) as session:
            if (earlier := self._signed_before(session, key)) is not None:
                return earlier
            batch = self._batch(session, change.batch_id)
            digest = sign_hash(state_change_content(change))
            signature = self._add_signature(
                session, key, change.batch_id, f"{change.batch_id}/state/{change.to_state}",
                change.signature, digest,
            )
            batch.state = change.to_state
            session.add(batch)
            audit.append(
                session,
                key=f"{key}/audit",
                actor=change.signature.signer.username,
                action=f"batch.{change.to_state}",
                subject=change.batch_id,
                detail={"from": change.from_state, "reason": change.reason, "sha256": digest},
            )
            return StepRecorded(0, digest, signature.id or 0)

    def attach_report(self, batch_id: str, path: str, sha256: str, pages: int) -> None:
        with transaction(self.engine) as session:
            batch = self._batch(session, batch_id)
            if batch.report_sha256 == sha256:
                return
            batch.report_path, batch.report_sha256, batch.report_pages = path, sha256, pages
            session.add(batch)
            audit.append(
                session,
                key=f"{batch_id}/report/{sha256}",
                actor="system",
                action="report.signed",
                subject=batch_id,
                detail={"path": path, "sha256": sha256, "pages": str(pages)},
            )

    # --- reading the record --------------------------------------------------

    def verify_step(self, record: StepRecord, signature: Signature) -> bool:
        """Recompute the signed hash from what is stored now."""
        step = StepRecordInput(
            batch_id=record.batch_id,
            step_id=record.step_id,
            update_id="",
            kind=record.kind,
            title=record.title,
            result=record.result,
            values=json.loads(record.values_json),
            signature=_intent(signature),
            reading=WeightReading(**json.loads(record.reading_json))
            if record.reading_json
            else None,
            reason=record.reason,
        )
        digest = sign_hash(step_content(step))
        return digest == record.content_sha256 == signature.content_sha256

    def assemble_record(self, batch_id: str, *, generated_at: str | None = None) -> dict[str, Any]:
        """The machine-readable executed record, as embedded in the signed eBMR.

        `generated_at` (ISO 8601 with offset) pins the generation time, so the same stored
        batch assembles to the same record; by default it is now.
        """
        with Session(self.engine) as session:
            batch = self._batch(session, batch_id)
            plan = json.loads(batch.plan_json)
            plan_steps = {s["step_id"]: s for s in plan["steps"]}
            bound = json.loads(batch.equipment_json)
            moved = sections.material_movements(session, batch_id)
            # An external WMS leaves the built-in tables empty for this batch: its issues
            # come from what ebr journaled when the WMS confirmed them.
            for phase, moves in sections.external_materials(session, batch_id).items():
                moved[phase] = [*moved.get(phase, []), *moves]
            signatures = {
                s.id: s
                for s in session.exec(select(Signature).where(Signature.batch_id == batch_id))
            }
            versions: dict[str, list[StepRecord]] = {}
            for rec in self._steps(session, batch_id):
                versions.setdefault(rec.step_id, []).append(rec)
            by_subject = {s.subject: s for s in signatures.values()}
            steps = []
            for step_id, recs in versions.items():
                rec, originals = recs[-1], recs[:-1]
                sig = signatures[rec.signature_id]
                # A step repeated by a loop is recorded as step_id#2, #3…
                planned = plan_steps.get(step_id.split("#")[0], {})
                reading = json.loads(rec.reading_json) if rec.reading_json else None
                verification = by_subject.get(f"{batch_id}/{step_id}/verification")
                steps.append(
                    {
                        "step_id": step_id,
                        "kind": rec.kind,
                        "title": rec.title,
                        "instruction": planned.get("instruction", ""),
                        "unit_procedure": planned.get("unit_procedure", ""),
                        "operation": planned.get("operation", ""),
                        "result": rec.result,
                        "values": json.loads(rec.values_json),
                        "unit": _step_unit(planned),
                        "limits": _step_limits(planned),
                        "device": _device(reading),
                        "comment": rec.comment,
                        "signature": _signature_dict(sig),
                        "signature_verified": self.verify_step(rec, sig),
                        "version": rec.version,
                        "correction_reason": rec.reason,
                        "corrections": [
                            {
                                "version": old.version,
                                "reason": old.reason,
                                "values": json.loads(old.values_json),
                                "result": old.result,
                                "signature": _signature_dict(signatures[old.signature_id]),
                                "signature_verified": self.verify_step(
                                    old, signatures[old.signature_id]
                                ),
                            }
                            for old in originals
                        ],
                        "verification": _signature_dict(verification) if verification else None,
                        # The phase as planned (limits, alert limits, setpoints, tags,
                        # expressions...): the renderer prints what each kind needs.
                        "plan": _plan_details(planned),
                        "equipment_id": bound.get(planned.get("equipment_role") or ""),
                        "materials": moved.get(step_id, []),
                    }
                )
            release_sig = next(
                (s for s in signatures.values() if s.subject == f"{batch_id}/release"), None
            )
            # The batch itself and its paths (batch/step...); not B-10's entries for B-1.
            audit_rows = list(session.exec(
                select(AuditEvent)
                .where(
                    or_(
                        AuditEvent.subject == batch_id,
                        col(AuditEvent.subject).startswith(f"{batch_id}/"),
                    )
                )
                .order_by(col(AuditEvent.id))
            ))
            reasons = {a.key.removesuffix("/audit"): json.loads(a.detail_json).get("reason", "")
                       for a in audit_rows if a.key.endswith("/audit")}
            release = None
            if release_sig is not None:
                reason = reasons.get(release_sig.key, "")
                recomputed = sign_hash(release_content(
                    ReleaseRecordInput(batch_id, "", release_sig.meaning, reason,
                                       _intent(release_sig)),
                    [r.content_sha256 for r in self._steps(session, batch_id)],
                ))
                release = {
                    "decision": release_sig.meaning,
                    "reason": reason,
                    "signature": _signature_dict(release_sig),
                    # False when any step record or the decision changed after QA signed.
                    "signature_verified": recomputed == release_sig.content_sha256,
                }
            state_changes = [
                {
                    "to": s.subject.rsplit("/", 1)[-1],
                    "reason": reasons.get(s.key, ""),
                    "signature": _signature_dict(s),
                }
                for s in sorted(signatures.values(), key=lambda s: s.id or 0)
                if s.subject.startswith(f"{batch_id}/state/")
            ]
            return {
                "format": RECORD_FORMAT,
                "generated_at": generated_at or datetime.now(UTC).isoformat(timespec="seconds"),
                "site": {"name": self.site_name, "time_zone": self.site_timezone},
                "batch": {
                    "batch_id": batch.batch_id,
                    "state": batch.state,
                    "product_code": batch.product_code,
                    "product_name": batch.product_name,
                    "recipe_id": batch.recipe_id,
                    "recipe_version": batch.recipe_version,
                    "recipe_sha256": batch.recipe_sha256,
                    "batch_size": batch.batch_size,
                    "batch_unit": batch.batch_unit,
                    "created_at": _iso(batch.created_at),
                    "created_by": batch.created_by,
                    "completed_at": _iso(batch.completed_at),
                    "released_at": _iso(batch.released_at),
                    "equipment": json.loads(batch.equipment_json),
                },
                "steps": steps,
                "release": release,
                "state_changes": state_changes,
                "parameters": plan.get("parameters") or [],
                "deviations": [
                    *sections.deviations(session, batch_id),
                    *sections.external_deviations(session, batch_id),
                ],
                "genealogy": sections.merged_genealogy(session, batch_id),
                "external_systems": self._external_systems(session, batch_id),
                "audit": [
                    {
                        "id": a.id,
                        "key": a.key,
                        "at": _iso(a.at),
                        # The exact time text the chain hash covers (store.audit), so a
                        # verifier can recompute each entry's hash from the PDF alone.
                        "hashed_at": audit._iso(a.at),
                        "actor": a.actor,
                        "action": a.action,
                        "subject": a.subject,
                        "detail": a.detail_json,
                        "prev_hash": a.prev_hash,
                        "hash": a.hash,
                    }
                    for a in audit_rows
                ],
            }

    # --- helpers -------------------------------------------------------------

    def _external_systems(self, session: Session, batch_id: str) -> dict[str, str]:
        """Which external WMS/QMS the batch's materials and deviations live in: those
        named by its journal entries, else those fixed at the batch's creation. The
        renderer prints it, so an empty section never reads as "nothing happened"."""
        found = sections.external_sources(session, batch_id)
        created = session.exec(
            select(AuditEvent).where(AuditEvent.key == f"{batch_id}/created")
        ).first()
        at_creation = json.loads(created.detail_json) if created else {}
        wms = found.get("wms") or at_creation.get("external_wms", "")
        qms = found.get("qms") or at_creation.get("external_qms", "")
        result = {}
        if wms:
            result["wms"] = (
                f"material issues recorded by the external WMS {wms}: this record lists "
                "those ebr journaled when the WMS confirmed them"
            )
        if qms:
            result["qms"] = (
                f"deviations recorded by the external QMS {qms}: this record lists those "
                "raised through ebr; dispositions made directly in that QMS are not shown"
            )
        return result

    def _batch(self, session: Session, batch_id: str) -> Batch:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise RecordError(f"Batch {batch_id} is not in the record store.")
        return batch

    def signed_under(self, batch_id: str, update_id: str) -> bool:
        """Whether the action with this idempotency key (update id) was already signed."""
        with Session(self.engine) as session:
            found = session.exec(
                select(Signature.id).where(Signature.key == f"{batch_id}/{update_id}")
            ).first()
        return found is not None

    def _signed_before(self, session: Session, key: str) -> StepRecorded | None:
        """The outcome of a signed action already recorded under this idempotency key."""
        existing = session.exec(select(Signature).where(Signature.key == key)).first()
        if existing is None or existing.id is None:
            return None
        return StepRecorded(0, existing.content_sha256, existing.id)

    def _latest(self, session: Session, batch_id: str, step_id: str) -> StepRecord | None:
        query = select(StepRecord).where(
            StepRecord.batch_id == batch_id, StepRecord.step_id == step_id
        )
        return session.exec(query.order_by(col(StepRecord.version).desc()).limit(1)).first()

    def _steps(self, session: Session, batch_id: str) -> list[StepRecord]:
        query = select(StepRecord).where(StepRecord.batch_id == batch_id)
        return list(session.exec(query.order_by(col(StepRecord.id))))

    def _add_signature(
        self,
        session: Session,
        key: str,
        batch_id: str,
        subject: str,
        sig: SignatureIntent,
        digest: str,
    ) -> Signature:
        signature = Signature(
            key=key,
            batch_id=batch_id,
            subject=subject,
            user_id=sig.signer.user_id,
            username=sig.signer.username,
            full_name=sig.signer.full_name,
            meaning=sig.meaning,
            signed_at=sig.signed_at,
            content_sha256=digest,
        )
        session.add(signature)
        session.flush()
        return signature


def _intent(sig: Signature) -> SignatureIntent:
    return SignatureIntent(
        signer=Signer(user_id=sig.user_id, username=sig.username, full_name=sig.full_name),
        meaning=sig.meaning,
        signed_at=sig.signed_at,
    )


def _signature_dict(sig: Signature) -> dict[str, Any]:
    return {
        "signature_id": sig.id,
        "full_name": sig.full_name,
        "username": sig.username,
        "meaning": sig.meaning,
        "signed_at": sig.signed_at,
        "content_sha256": sig.content_sha256,
    }


def _device(reading: dict[str, Any] | None) -> dict[str, Any] | None:
    if not reading:
        return None
    return {
        "equipment_id": reading["equipment_id"],
        "serial": reading["device_serial"],
        "raw_frames": reading["raw_frames"],
        "read_at": reading["read_at"],
        # What the instrument itself reported, before conversion to the recipe's unit.
        "device_value": reading.get("device_value"),
        "device_unit": reading.get("device_unit"),
    }


def _step_unit(planned: dict[str, Any]) -> str | None:
    if planned.get("material"):
        return planned["material"]["unit"]
    if planned.get("limits"):
        return planned["limits"]["unit"]
    return None


def _step_limits(planned: dict[str, Any]) -> dict[str, str] | None:
    material = planned.get("material")
    if material:
        return {"low": material["low"], "high": material["high"], "unit": material["unit"]}
    return planned.get("limits")


# Plan fields already printed from the step itself, or meaningless to a reader.
_PLAN_SHOWN_ELSEWHERE = frozenset(
    {"step_id", "kind", "title", "instruction", "unit_procedure", "operation"}
)


def _plan_details(planned: dict[str, Any]) -> dict[str, Any]:
    """The planned phase's set fields, as compiled (None and empty values left out)."""
    return {
        key: value
        for key, value in sorted(planned.items())
        if key not in _PLAN_SHOWN_ELSEWHERE and value not in (None, "", [], {})
    }


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds")


__all__ = ["BatchConflict", "BatchRecordStore", "RecordError", "utcnow"]
