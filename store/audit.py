"""Append to, verify and read the audit trail's hash chain.

The table is append-only at the database (triggers in `store.db`); the chain is what
still tells when someone with database access disables a trigger and edits a row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

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


# Any fixed number: the transaction-level advisory lock that orders chain appends.
_CHAIN_LOCK = 0x0EB0A0D17


def _serialise_appends(session: Session) -> None:
    """One appender at a time, until its transaction ends, so two never link to the same
    last entry. SQLite's BEGIN IMMEDIATE already does this; PostgreSQL needs the lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_CHAIN_LOCK))


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
    _serialise_appends(session)
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
    first_bad_key: str | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"Audit trail intact: {self.entries} entries, each linked to the one before."
        return (
            f"Audit trail BROKEN at entry id={self.first_bad_id} (key {self.first_bad_key}): "
            f"{self.problem} {self.entries} entries before it verify."
        )


def verify_chain(session: Session) -> ChainCheck:
    """Walk the chain from the start; report the first entry that does not verify."""
    prev = GENESIS
    prev_id: int | None = None
    count = 0
    query = select(AuditEvent).order_by(col(AuditEvent.id)).execution_options(yield_per=500)
    for event in session.exec(query):
        problem = None
        if event.prev_hash != prev:
            after = f"entry id={prev_id}" if prev_id is not None else "the start of the trail"
            problem = (
                f"it does not link to {after}; an entry between them was removed or "
                "that entry's hash was rewritten."
            )
        elif _entry_hash(prev, event) != event.hash:
            problem = "its content no longer matches its hash; the entry was changed."
        if problem is not None:
            return ChainCheck(
                ok=False, entries=count, first_bad_id=event.id, first_bad_key=event.key,
                problem=problem,
            )
        prev, prev_id = event.hash, event.id
        count += 1
    return ChainCheck(ok=True, entries=count)


# --- reading -----------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor narrows the trail to; every field optional."""

    subject: str | None = None  # a batch id matches the batch and everything under it
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." (e.g. "user.")
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: SelectOfScalar[AuditEvent]) -> SelectOfScalar[AuditEvent]:
        if self.subject:
            query = query.where(
                or_(
                    AuditEvent.subject == self.subject,
                    col(AuditEvent.subject).startswith(self.subject + "/", autoescape=True),
                )
            )
        if self.actor:
            query = query.where(AuditEvent.actor == self.actor)
        if self.action:
            if self.action.endswith("."):
                query = query.where(col(AuditEvent.action).startswith(self.action, autoescape=True))
            else:
                query = query.where(AuditEvent.action == self.action)
        if self.since:
            query = query.where(col(AuditEvent.at) >= _stored(self.since))
        if self.until:
            query = query.where(col(AuditEvent.at) < _stored(self.until))
        return query


def _stored(at: datetime) -> datetime:
    return at.astimezone(UTC)


def search(
    session: Session, where: AuditFilter, limit: int, after_id: int = 0
) -> list[AuditEvent]:
    """One page, oldest first; pass the last id seen as `after_id` for the next."""
    query = where.apply(select(AuditEvent)).where(col(AuditEvent.id) > after_id)
    return list(session.exec(query.order_by(col(AuditEvent.id)).limit(limit)))


def iter_all(session: Session, where: AuditFilter, chunk: int = 500) -> Iterator[AuditEvent]:
    """Every matching entry, read a chunk at a time so an export never loads it all."""
    after = 0
    while True:
        page = search(session, where, chunk, after)
        yield from page
        if len(page) < chunk:
            return
        after = page[-1].id or after


def as_dict(event: AuditEvent) -> dict[str, Any]:
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
    return {
        "id": event.id,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "detail": json.loads(event.detail_json),
        "key": event.key,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
