"""Audit entries and signatures are append-only at the database, on SQLite and
PostgreSQL; tampering by someone who first removes the guard is still detected,
naming the row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from signatures.identity import UserDirectory
from store.audit import verify_chain
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from tests.sample_plan import PLAN
from workflows.messages import StepRecordInput

# A later signature of its session: the password alone (the first needs the user id).
LATER = {"username": None, "first_in_session": False}


# Both databases in every run; the PostgreSQL pass need not repeat the SQLite case.
@pytest.fixture(params=[
    pytest.param("sqlite", marks=pytest.mark.sqlite_only("its postgresql case ran already")),
    "postgresql",
])
def db(request, tmp_path) -> Engine:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'ebr.db'}")
        create_schema(engine)
        return engine
    return request.getfixturevalue("fresh_pg_engine")


def _signed_batch(engine: Engine) -> str:
    batch_id = f"B-{datetime.now(UTC).strftime('%H%M%S%f')}"
    users = UserDirectory(engine)
    users.ensure_user("olivia", "Olivia Operator", "operator-pass-1", ["operator"], "test")
    store = BatchRecordStore(engine)
    store.create_batch(batch_id, PLAN, {"scale": "S"}, "sup")
    intent = users.sign(users.get("olivia"), "operator-pass-1", "performed", "operator", **LATER)
    store.record_step(StepRecordInput(batch_id, "b/b/lod", "u-1", "check", "LOD", "pass",
                                      {"value": "1.1", "unit": "percent"}, intent))
    return batch_id


def _refused(engine: Engine, sql: str) -> str:
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text(sql))
    return str(caught.value)


@pytest.mark.parametrize("table", ["audit_events", "signatures"])
def test_update_and_delete_are_refused(db, table):
    batch_id = _signed_batch(db)
    where = f"WHERE id = (SELECT max(id) FROM {table})"
    assert "append-only" in _refused(db, f"UPDATE {table} SET key = 'x' {where}")
    assert "append-only" in _refused(db, f"DELETE FROM {table} {where}")
    # The refusal changed nothing: the chain and the signature still verify.
    with Session(db) as session:
        assert verify_chain(session).ok
    assert BatchRecordStore(db).assemble_record(batch_id)["steps"][0]["signature_verified"]


def test_inserts_still_work_after_schema_creation_is_repeated(db):
    create_schema(db)
    create_schema(db)
    _signed_batch(db)
    with Session(db) as session:
        assert verify_chain(session).ok


def test_truncate_is_refused_on_postgres(fresh_pg_engine):
    _signed_batch(fresh_pg_engine)
    assert "append-only" in _refused(fresh_pg_engine, "TRUNCATE audit_events")


_SQLITE_GUARDS = ("audit_events_no_update", "audit_events_no_delete", "signatures_no_update")
_dropped: dict[str, str] = {}


def _drop_guards(engine: Engine) -> None:
    """What an attacker with database owner rights does first."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for name in _SQLITE_GUARDS:
                _dropped[name] = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (name,)).scalar_one()
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.exec_driver_sql("ALTER TABLE signatures DISABLE TRIGGER USER")


def _restore_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")
            conn.exec_driver_sql("ALTER TABLE signatures ENABLE TRIGGER USER")
        else:
            for name in _SQLITE_GUARDS:
                conn.exec_driver_sql(_dropped.pop(name))


def test_edited_audit_entry_is_named_by_verification(db):
    _signed_batch(db)
    with Session(db) as session:
        assert verify_chain(session).ok
        target = session.exec(text("SELECT max(id) - 1 FROM audit_events")).one()[0]
    _drop_guards(db)
    try:
        with db.begin() as conn:
            conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = :id"),
                         {"id": target})
        with Session(db) as session:
            check = verify_chain(session)
    finally:
        _restore_guards(db)
    assert not check.ok and check.first_bad_id == target
    assert f"id={target}" in check.describe() and "changed" in check.describe()


def test_removed_audit_entry_is_found_at_the_next_one(db):
    _signed_batch(db)
    with Session(db) as session:
        ids = [r[0] for r in session.exec(text("SELECT id FROM audit_events ORDER BY id"))]
    victim, following = ids[-2], ids[-1]
    _drop_guards(db)
    try:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": victim})
        with Session(db) as session:
            check = verify_chain(session)
    finally:
        _restore_guards(db)
    assert not check.ok and check.first_bad_id == following
    assert "removed" in (check.problem or "")


def test_edited_signed_value_fails_signature_verification(db):
    batch_id = _signed_batch(db)
    _drop_guards(db)
    try:
        with db.begin() as conn:
            conn.execute(text("UPDATE signatures SET full_name = 'Mallory' "
                              "WHERE batch_id = :b"), {"b": batch_id})
        record = BatchRecordStore(db).assemble_record(batch_id)
    finally:
        _restore_guards(db)
    assert record["steps"][0]["signature_verified"] is False


def test_user_timestamps_read_back_timezone_aware(db):
    _signed_batch(db)
    olivia = UserDirectory(db).get("olivia")
    assert olivia.created_at.utcoffset().total_seconds() == 0
    assert olivia.password_changed_at.tzinfo is not None
