"""Engine and transactions. SQLite by default, PostgreSQL by URL; same code for both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Boolean, Integer, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, create_engine

from qms import models as _qms_models  # noqa: F401  (QMS tables on the same metadata)
from store import models  # noqa: F401  (registers the tables on the metadata)
from wms import models as _wms_models  # noqa: F401  (WMS tables on the same metadata)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite's own deferred BEGIN can deadlock two writers; take the write lock up front.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    # Naive timestamp columns hold UTC: make the session's zone UTC so PostgreSQL never
    # shifts an aware value into local time on the way in.
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy, not pysqlite, emit BEGIN (see the "begin" listener).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Tables whose rows, once written, are evidence: no UPDATE, no DELETE. `users` may be
# updated (roles, lockout, deactivation) but never deleted, so an id is never reused.
APPEND_ONLY = ("audit_events", "signatures")
NO_DELETE = ("users",)
# Columns added to `users` after the first release; older databases get them on start.
_ADDED_USER_COLUMNS = (
    "failed_attempts", "locked_until", "password_changed_at", "must_change_password",
    "tokens_valid_from_ns", "deactivated_at",
)


def create_schema(engine: Engine) -> None:
    """Create tables and guard triggers; safe to run on every start, by many processes."""
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Serialise concurrent starts (API and workers) while they add DDL.
            conn.execute(text("SELECT pg_advisory_xact_lock(7354011)"))
        _add_missing_user_columns(conn)
        if conn.dialect.name == "sqlite":
            _sqlite_triggers(conn)
        elif conn.dialect.name == "postgresql":
            _postgres_triggers(conn)


def _add_missing_user_columns(conn: Connection) -> None:
    present = {c["name"] for c in inspect(conn).get_columns("users")}
    table = SQLModel.metadata.tables["users"]
    for name in _ADDED_USER_COLUMNS:
        if name in present:
            continue
        column = table.c[name]
        sql_type = column.type.compile(dialect=conn.dialect)
        default = ""
        if isinstance(column.type, Boolean):
            default = " DEFAULT false" if conn.dialect.name == "postgresql" else " DEFAULT 0"
        elif isinstance(column.type, Integer):
            default = " DEFAULT 0"
        conn.exec_driver_sql(f"ALTER TABLE users ADD COLUMN {name} {sql_type}{default}")


def _sqlite_triggers(conn: Connection) -> None:
    for table in APPEND_ONLY:
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ebr: {table} is append-only; {op} refused'); END"
            )
    for table in NO_DELETE:
        conn.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'ebr: {table} rows are never deleted; deactivate'); END"
        )


_PG_REFUSE = """
CREATE OR REPLACE FUNCTION ebr_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ebr: % on % refused: audit entries and signatures are append-only; '
    'users are deactivated, never deleted', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _postgres_triggers(conn: Connection) -> None:
    existing = {
        row[0]
        for row in conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
    }
    conn.execute(text(_PG_REFUSE))
    wanted: list[tuple[str, str, str]] = []
    for table in APPEND_ONLY:
        wanted.append((f"{table}_no_change", table, "BEFORE UPDATE OR DELETE FOR EACH ROW"))
        wanted.append((f"{table}_no_truncate", table, "BEFORE TRUNCATE FOR EACH STATEMENT"))
    for table in NO_DELETE:
        wanted.append((f"{table}_no_delete", table, "BEFORE DELETE FOR EACH ROW"))
        wanted.append((f"{table}_no_truncate", table, "BEFORE TRUNCATE FOR EACH STATEMENT"))
    for name, table, when in wanted:
        if name not in existing:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} {when.split(' FOR ')[0]} ON {table} "
                f"FOR {when.split(' FOR ')[1]} EXECUTE FUNCTION ebr_refuse_change()"
            )


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: everything inside commits together or not at all."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
