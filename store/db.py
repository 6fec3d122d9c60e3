"""Engine and transactions. SQLite by default, PostgreSQL by URL; same code for both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from qms import models as _qms_models  # noqa: F401  (QMS tables on the same metadata)
from store import models  # noqa: F401  (registers the tables on the metadata)
from wms import models as _wms_models  # noqa: F401  (WMS tables on the same metadata)

# How long a transaction waits for a lock another holds before it fails (both backends).
LOCK_WAIT_S = 30


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": LOCK_WAIT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite's own deferred BEGIN can deadlock two writers; take the write lock up front.
        event.listen(engine, "begin", _begin_immediate)
        return engine
    # Naive timestamp columns hold UTC: make the session's zone UTC so PostgreSQL never
    # shifts an aware value into local time on the way in. A lock wait ends with an error
    # after LOCK_WAIT_S, as SQLite's busy timeout does, so an activity stuck behind a lock
    # fails (and is retried) within its start-to-close (workflows/batch.py).
    options = f"-c timezone=UTC -c lock_timeout={LOCK_WAIT_S * 1000}"
    return create_engine(url, pool_pre_ping=True, connect_args={"options": options})


def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
    # Straight to the driver: through exec_driver_sql this cost a tenth of an audit append.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy, not pysqlite, emit BEGIN (see the "begin" listener).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_S * 1000}")
    cursor.close()


# Tables whose rows, once written, are evidence: no UPDATE, no DELETE. `users` may be
# updated (roles, lockout, deactivation) but never deleted, so an id is never reused.
# The guard triggers themselves are created by the migrations (store/migrations).
APPEND_ONLY = ("audit_events", "signatures", "password_history")
NO_DELETE = ("users",)

# Every table of the record store, the WMS and the QMS: what the migrations must produce.
metadata = SQLModel.metadata


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema revision (Alembic); safe on every start,
    by many processes at once."""
    from store.migrate import upgrade

    upgrade(engine)


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
