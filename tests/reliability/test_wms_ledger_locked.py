"""A WMS issue held inside the record store, on the real stack: killed before the issue
is applied, and the store's connection lost while the issue waits (PostgreSQL only).

The test holds `LOCK TABLE wms_movements IN EXCLUSIVE MODE` in its own session: reads of
the ledger go on (the API still answers), but the issue's insert waits, so exactly one
activity is stopped at a point the test can see (its backend waiting for the lock in
pg_locks). SQLite cannot isolate one activity this way: every ebr transaction there,
reads included, starts with BEGIN IMMEDIATE (store/db.py), so holding the write lock
would stop the API's authentication too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from temporalio.api.enums.v1 import EventType

from store.db import make_engine
from tests.databases import backend
from tests.reliability.invariants import check_batch
from tests.reliability.test_wms_issue_crash import (
    SCHEDULED,
    Line,
    finish,
    issued_rows,
    line,  # noqa: F401  (the fixture)
    wait_for,
)
from workflows.batch import SHORT_CALL_HEARTBEAT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.store,
    pytest.mark.skipif(
        backend() != "postgresql",
        reason="needs PostgreSQL: on SQLite a held write lock stops every ebr transaction "
               "(BEGIN IMMEDIATE), not one activity",
    ),
]
STARTED = EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED


class LedgerLock:
    """Another session holding the WMS ledger: every write to it waits, reads go on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.holder: Connection | None = None

    def hold(self) -> None:
        self.holder = self.engine.connect()
        self.holder.begin()
        self.holder.execute(text("LOCK TABLE wms_movements IN EXCLUSIVE MODE"))

    def release(self) -> None:
        assert self.holder is not None
        self.holder.rollback()
        self.holder.close()
        self.holder = None

    def waiting(self) -> list[int]:
        """Backends of this database waiting for the ledger (the issue, blocked)."""
        with self.engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE NOT l.granted AND d.datname = current_database() "
                "AND l.relation = 'wms_movements'::regclass")).scalars())

    def drop_connections(self, pids: list[int]) -> None:
        """The store goes away under the waiting activity: its connection is terminated."""
        with self.engine.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()


@pytest.fixture
def ledger(line: Line) -> Iterator[LedgerLock]:  # noqa: F811
    lock = LedgerLock(make_engine(line.settings.resolved_database_url))
    yield lock
    if lock.holder is not None:
        lock.release()
    lock.engine.dispose()


def last_issue(line: Line, batch_id: str) -> tuple[float, int]:  # noqa: F811
    """The batch's latest `wms_issue`: its heartbeat timeout (s) and the attempt that
    completed it."""
    events = line.history.events(batch_id)
    scheduled = [e for e in events if e.event_type == SCHEDULED and
                 e.activity_task_scheduled_event_attributes.activity_type.name == "wms_issue"]
    started = [e for e in events if e.event_type == STARTED and
               e.activity_task_started_event_attributes.scheduled_event_id
               == scheduled[-1].event_id]
    heartbeat = scheduled[-1].activity_task_scheduled_event_attributes.heartbeat_timeout
    return heartbeat.ToTimedelta().total_seconds(), \
        started[0].activity_task_started_event_attributes.attempt


def test_a_wms_issue_held_in_the_store_is_applied_once_after_a_kill_or_a_lost_connection(
    line: Line, ledger: LedgerLock,  # noqa: F811
):
    steps = line.start("LOCKED-1")
    step_id = steps[0]["step_id"]

    # 1. Before the call took effect: the issue waits inside the WMS (its ledger insert
    #    blocked), the worker is killed, the lock released; the retry applies it once.
    line.weigh("LOCKED-1", steps[0])
    ledger.hold()
    pending = line.complete("LOCKED-1", steps[0])
    wait_for(lambda: bool(ledger.waiting()), "the issue waiting for the ledger")
    assert issued_rows(line.engine, "LOCKED-1", step_id) == 0
    restarted = line.kill_and_restart(then=ledger.release)
    finish(line, "LOCKED-1", steps[0], pending, restarted)
    # Noticed by the missing heartbeats, not by the 60 s start-to-close.
    assert last_issue(line, "LOCKED-1") == (SHORT_CALL_HEARTBEAT.total_seconds(), 2)
    assert line.recovery_s[0] < 30, line.recovery_s

    # 2. The store's connection is lost while the issue waits (terminated by the server),
    #    then the retry waits again, longer than the heartbeat timeout, on a live worker:
    #    it is not abandoned and run a third time; the issue is applied once.
    line.weigh("LOCKED-1", steps[1])
    ledger.hold()
    pending = line.complete("LOCKED-1", steps[1])
    wait_for(lambda: bool(ledger.waiting()), "the issue waiting for the ledger")
    first = ledger.waiting()
    ledger.drop_connections(first)
    wait_for(lambda: bool(set(ledger.waiting()) - set(first)), "the retried issue waiting")
    retried = time.monotonic()
    # Reads of the ledger go on meanwhile: the API still shows the batch.
    assert line.operator.get("/api/v1/batches/LOCKED-1")["batch_id"] == "LOCKED-1"
    time.sleep(max(0.0, SHORT_CALL_HEARTBEAT.total_seconds() + 3 - (time.monotonic() - retried)))
    assert not pending.done(), "the step completed while its issue could not be written"
    ledger.release()
    finish(line, "LOCKED-1", steps[1], pending, time.monotonic())
    assert last_issue(line, "LOCKED-1")[1] == 2

    check_batch(line.settings, line.engine, "LOCKED-1")
    print(f"\nkilled before the issue was applied: answered {line.recovery_s[0]:.1f} s after "
          f"the restart (the new worker's start-up: {line.startup_s[0]:.1f} s); after the "
          f"lost connection: {line.recovery_s[1]:.1f} s after the release")
