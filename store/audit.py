"""Append to, verify and read the audit trail's hash chain.

The table is append-only at the database (triggers in `store.db`); the chain is what
still tells when someone with database access disables a trigger and edits a row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from sqlalchemy import String, bindparam, text, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from store.models import AuditEvent, utcnow

GENESIS = "0" * 64


# The canonical content of an entry is `signatures.canonical.canonical_json` of
# {"prev", "key", "at", "actor", "action", "subject", "detail"}. Appending and verifying
# build those exact bytes from the columns directly: the outer keys are fixed, so their
# sorted order is too, and a string's canonical form is `encode_basestring` (what the
# encoder uses with ensure_ascii=False). Only `detail` goes through the encoder, built
# once here rather than on every call as `json.dumps`/`JSONEncoder.encode` do.
# tests/store/test_audit_chain_hashing.py pins this to `content_hash`.
_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]
_SLOW_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_c_encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_ENCODE = (
    _c_encoder(None, _SLOW_ENCODER.default, _quote, None, ":", ",", True, False, False)
    if _c_encoder is not None else None
)
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def _canonical_detail(detail_json: str) -> str:
    """Canonical JSON of the stored detail: what `canonical_json(json.loads(...))` gives."""
    try:
        value, end = _SCAN(detail_json, 0)
    except StopIteration:
        end = -1
    if end != len(detail_json):  # white space around it, or not JSON: the full parser
        value = json.loads(detail_json)
    if _ENCODE is None:
        return _SLOW_ENCODER.encode(value)
    return "".join(_ENCODE(value, 0))


def _hash_of(
    prev: str, key: str, at: str, actor: str, action: str, subject: str, detail: str
) -> str:
    """`detail` is the canonical JSON of the detail object; `at` is `_iso` of the time."""
    body = (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},"at":{_quote(at)},'
        f'"detail":{detail},"key":{_quote(key)},"prev":{_quote(prev)},'
        f'"subject":{_quote(subject)}}}'
    )
    return sha256(body.encode()).hexdigest()


# Any fixed number: the transaction-level advisory lock that orders chain appends.
_CHAIN_LOCK = 0x0EB0A0D17


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A written entry, as plain values (building an ORM object cost a quarter of an
    append). Fields in table column order."""

    id: int
    key: str
    at: datetime
    actor: str
    action: str
    subject: str
    detail_json: str
    prev_hash: str
    hash: str


_events = AuditEvent.__table__  # type: ignore[attr-defined]
_LOCK = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_CHAIN_LOCK)
# One round trip for both things an append must know: is the key taken, and what is the
# hash to link to. Built once, so SQLAlchemy compiles it once.
_PEEK = core_select(
    core_select(_events.c.id).where(_events.c.key == bindparam("key")).scalar_subquery(),
    core_select(_events.c.hash).order_by(_events.c.id.desc()).limit(1).scalar_subquery(),
)
_INSERT = _events.insert()
_COLUMNS = [_events.c[f.name] for f in fields(AuditEntry)]
_BY_ID = core_select(*_COLUMNS).where(_events.c.id == bindparam("id"))
# The chain as the database holds it: `at` unconverted (see `_stored_at`).
_CHAIN_RAW = core_select(
    *(type_coerce(c, String) if c.key == "at" else c for c in _COLUMNS)
).order_by(_events.c.id)


def _serialise_appends(conn: Connection) -> None:
    """One appender at a time, until its transaction ends, so two never link to the same
    last entry. SQLite's BEGIN IMMEDIATE already does this; PostgreSQL needs the lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)


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
) -> AuditEntry:
    """Add an entry inside the caller's transaction; a repeated key returns the first."""
    return append_on(
        session.connection(), key=key, actor=actor, action=action, subject=subject,
        detail=detail, at=at,
    )


def append_on(
    conn: Connection,
    *,
    key: str,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, str] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """`append` on a Core connection, inside its transaction: lock (PostgreSQL), one
    SELECT for the key and the last hash, one INSERT. No ORM unit of work."""
    _serialise_appends(conn)
    existing_id, last_hash = conn.execute(_PEEK, {"key": key}).one()
    if existing_id is not None:
        return AuditEntry(*conn.execute(_BY_ID, {"id": existing_id}).one())
    prev_hash = last_hash or GENESIS
    at = at or utcnow()
    detail_json = json.dumps(detail or {}, sort_keys=True)
    row = {
        "key": key, "at": at, "actor": actor, "action": action, "subject": subject,
        "detail_json": detail_json, "prev_hash": prev_hash,
        # Hashed as it will be read back, so verification recomputes the same bytes.
        "hash": _hash_of(prev_hash, key, _iso(at), actor, action, subject,
                         _canonical_detail(detail_json)),
    }
    new_id = conn.execute(_INSERT, row).inserted_primary_key[0]
    return AuditEntry(id=new_id, **row)


def record(engine: Engine, **entry: Any) -> AuditEntry:
    """One entry in its own transaction (an append that belongs to no other write)."""
    with engine.begin() as conn:
        return append_on(conn, **entry)


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
    conn = session.connection()
    stored_at = _stored_at(conn)
    # Plain tuples, streamed (a server-side cursor on PostgreSQL): no ORM objects.
    rows = conn.execution_options(stream_results=True, yield_per=2000).execute(_CHAIN_RAW)
    quote, canonical = _quote, _canonical_detail
    for row_id, key, at, actor, action, subject, detail_json, prev_hash, digest in rows:
        problem = None
        if prev_hash != prev:
            after = f"entry id={prev_id}" if prev_id is not None else "the start of the trail"
            problem = (
                f"it does not link to {after}; an entry between them was removed or "
                "that entry's hash was rewritten."
            )
        else:
            # `_hash_of`, inlined: this loop is the whole cost of a verification.
            body = (
                f'{{"action":{quote(action)},"actor":{quote(actor)},'
                f'"at":"{stored_at(at)}","detail":{canonical(detail_json)},'
                f'"key":{quote(key)},"prev":"{prev}","subject":{quote(subject)}}}'
            )
            if sha256(body.encode()).hexdigest() != digest:
                problem = "its content no longer matches its hash; the entry was changed."
        if problem is not None:
            return ChainCheck(
                ok=False, entries=count, first_bad_id=row_id, first_bad_key=key,
                problem=problem,
            )
        prev, prev_id = digest, row_id
        count += 1
    return ChainCheck(ok=True, entries=count)


# How SQLite holds a timestamp written through SQLAlchemy: exactly `_iso` with a space.
_SQLITE_AT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}")


def _stored_at(conn: Connection) -> Callable[[Any], str]:
    """`_iso` of the `at` column as stored, without SQLAlchemy's per-row conversion; any
    other stored form goes through the column type's own conversion, as before."""
    convert = _events.c.at.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)

    def iso(raw: Any) -> str:
        if isinstance(raw, str) and _SQLITE_AT.fullmatch(raw):
            return f"{raw[:10]}T{raw[11:]}"
        return _iso(convert(raw) if convert is not None else raw)

    return iso


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
