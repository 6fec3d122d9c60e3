"""Append to and verify the audit trail's hash chain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from signatures.canonical import content_hash
from store.models import AuditEvent, utcnow

GENESIS = "0" * 64


def _entry_hash(prev_hash: str, event: AuditEvent) -> str:
    return content_hash(
        {
            "prev": prev_hash,
            "key": event.key,
            "at": _iso(event.at),
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "detail": json.loads(event.detail_json),
        }
    )


def _iso(at: datetime) -> str:
    # SQLite hands datetimes back naive; the store only ever writes UTC.
    return at.replace(tzinfo=None).isoformat(timespec="microseconds")


def append(
    session: Session,
    *,
    key: str,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, str] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add an entry inside the caller's transaction; a repeated key returns the first."""
    existing = session.exec(select(AuditEvent).where(AuditEvent.key == key)).first()
    if existing is not None:
        return existing
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1)).first()
    prev_hash = last.hash if last else GENESIS
    event = AuditEvent(
        key=key,
        at=at or utcnow(),
        actor=actor,
        action=action,
        subject=subject,
        detail_json=json.dumps(detail or {}, sort_keys=True),
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = _entry_hash(prev_hash, event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_id: int | None = None


def verify_chain(session: Session) -> ChainCheck:
    prev = GENESIS
    count = 0
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.id))):
        if event.prev_hash != prev or _entry_hash(prev, event) != event.hash:
            return ChainCheck(ok=False, entries=count, first_bad_id=event.id)
        prev = event.hash
        count += 1
    return ChainCheck(ok=True, entries=count)
