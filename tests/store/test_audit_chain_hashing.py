"""The lean append and verify paths hash exactly the canonical content they always did,
so chains written before them still verify and tampering is still named by entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import Session

from signatures.canonical import content_hash
from store import audit
from store.db import transaction
from store.models import AuditEvent

AWKWARD = [
    {},
    {"why": 'quote " backslash \\ slash /'},
    {"ünïcødé": "Grüße 日本 \u2028 emoji \U0001f600", "ctl": "tab\tnl\n\x01"},
    {"b": "2", "a": "1", "nested": {"z": ["x", 1, None, True]}},
]


def _reference_hash(prev: str, key: str, at: datetime, actor: str, action: str,
                    subject: str, detail: dict) -> str:
    # How the chain was hashed before the lean path: canonical JSON of the whole entry.
    return content_hash({
        "prev": prev, "key": key, "at": at.replace(tzinfo=None).isoformat(
            timespec="microseconds"),
        "actor": actor, "action": action, "subject": subject,
        "detail": json.loads(json.dumps(detail, sort_keys=True)),
    })


def test_appended_entries_hash_the_same_canonical_content_as_before(engine):
    at = datetime(2026, 11, 22, 4, 5, 6, 7, tzinfo=UTC)
    prev = audit.GENESIS
    for i, detail in enumerate(AWKWARD):
        with transaction(engine) as session:
            event = audit.append(session, key=f"k{i}", actor="ä\"ctor", action="t.hash",
                                 subject=f"S/{i}\\x", detail=detail, at=at)
        assert event.prev_hash == prev
        assert event.hash == _reference_hash(prev, f"k{i}", at, "ä\"ctor", "t.hash",
                                             f"S/{i}\\x", detail)
        prev = event.hash
    with Session(engine) as session:
        check = audit.verify_chain(session)
    assert check.ok and check.entries == len(AWKWARD)


def test_a_chain_written_by_the_orm_path_still_verifies(engine):
    prev = audit.GENESIS
    with transaction(engine) as session:
        for i, detail in enumerate(AWKWARD):
            at = datetime(2026, 1, 1, 0, 0, i, 123456, tzinfo=UTC)
            digest = _reference_hash(prev, f"old{i}", at, "a", "t.old", "S", detail)
            session.add(AuditEvent(key=f"old{i}", at=at, actor="a", action="t.old", subject="S",
                                   detail_json=json.dumps(detail, sort_keys=True),
                                   prev_hash=prev, hash=digest))
            session.flush()
            prev = digest
    audit.record(engine, key="new", actor="a", action="t.new", subject="S")
    with Session(engine) as session:
        check = audit.verify_chain(session)
    assert check.ok and check.entries == len(AWKWARD) + 1


def test_a_repeated_key_returns_the_first_entry_and_adds_nothing(engine):
    first = audit.record(engine, key="once", actor="a", action="t.once", subject="S",
                         detail={"n": "1"})
    again = audit.record(engine, key="once", actor="b", action="t.other", subject="T",
                         detail={"n": "2"})
    assert (again.id, again.hash, again.actor, again.detail_json) == (
        first.id, first.hash, first.actor, first.detail_json)
    with Session(engine) as session:
        assert audit.verify_chain(session).entries == 1


def test_an_edited_entry_is_named_as_the_first_broken_one(engine):
    for i in range(5):
        audit.record(engine, key=f"e{i}", actor="a", action="t.e", subject="S",
                     detail={"i": str(i)})
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET detail_json = '{\"i\": \"9\"}' "
                          "WHERE key = 'e3'"))
    with Session(engine) as session:
        check = audit.verify_chain(session)
    assert not check.ok and check.first_bad_key == "e3" and check.entries == 3
    assert "no longer matches its hash" in (check.problem or "")
