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

from sqlalchemy import String, bindparam, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Dialect, Engine
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
_COLUMNS = [_events.c[f.name] for f in fields(AuditEntry)]
_BY_ID = core_select(*_COLUMNS).where(_events.c.id == bindparam("id"))
# The chain as the database holds it: `at` unconverted (see `_stored_at`).
_CHAIN_RAW = core_select(
    *(type_coerce(c, String) if c.key == "at" else c for c in _COLUMNS)
).order_by(_events.c.id)


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
    sql = _driver_sql(conn.dialect)
    # The two statements go straight to the driver's cursor, in the transaction the
    # connection holds: through SQLAlchemy's execution machinery they were three quarters
    # of an append (docs/performance.md, row 6a).
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if sql.lock is not None:
            # One appender at a time, until its transaction ends, so two never link to
            # the same last entry. SQLite's BEGIN IMMEDIATE already does this.
            cursor.execute(sql.lock, (_CHAIN_LOCK,))
        cursor.execute(sql.peek, (key,))
        existing_id, last_hash = cursor.fetchone()
        if existing_id is not None:
            return AuditEntry(*conn.execute(_BY_ID, {"id": existing_id}).one())
        prev_hash = last_hash or GENESIS
        at = at or utcnow()
        detail_json = json.dumps(detail or {}, sort_keys=True)
        # Hashed as it will be read back, so verification recomputes the same bytes.
        digest = _hash_of(prev_hash, key, _iso(at), actor, action, subject,
                          _canonical_detail(detail_json))
        values = (key, at, actor, action, subject, detail_json, prev_hash, digest)
        cursor.execute(sql.insert, (key, sql.bind_at(at), *values[2:]))
        new_id = cursor.fetchone()[0] if sql.returning else cursor.lastrowid
    finally:
        cursor.close()
    return AuditEntry(new_id, *values)


@dataclass(frozen=True)
class _DriverSql:
    """An append's statements in the driver's parameter style."""

    lock: str | None
    peek: str
    insert: str
    returning: bool
    bind_at: Callable[[datetime], Any]  # the `at` column type's own conversion


_DRIVER_SQL: dict[str, _DriverSql] = {}
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _driver_sql(dialect: Dialect) -> _DriverSql:
    found = _DRIVER_SQL.get(dialect.name)
    if found is not None:
        return found
    mark = _PLACEHOLDER.get(dialect.paramstyle)
    if mark is None:
        raise RuntimeError(f"The audit trail does not support the {dialect.name} driver "
                           f"(parameter style {dialect.paramstyle}).")
    q = dialect.identifier_preparer.quote
    table = q(_events.name)
    names = [f.name for f in fields(AuditEntry) if f.name != "id"]
    postgres = dialect.name == "postgresql"
    convert = _events.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    found = _DriverSql(
        lock=f"SELECT pg_advisory_xact_lock({mark})" if postgres else None,
        peek=(f"SELECT (SELECT {q('id')} FROM {table} WHERE {q('key')} = {mark}), "
              f"(SELECT {q('hash')} FROM {table} ORDER BY {q('id')} DESC LIMIT 1)"),
        insert=(f"INSERT INTO {table} ({', '.join(q(n) for n in names)}) "
                f"VALUES ({', '.join([mark] * len(names))})"
                + (f" RETURNING {q('id')}" if postgres else "")),
        returning=postgres,
        bind_at=convert if convert is not None else (lambda at: at),
    )
    _DRIVER_SQL[dialect.name] = found
    return found


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
