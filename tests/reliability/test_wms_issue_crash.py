"""kill -9 of the worker at the points of a WMS issue, on the real stack (Temporal dev
server with its database file, simulated devices, worker and API each in their own process).

No hook in product code stops the worker at a point: the test kills at moments it
observes in the record store (the issue's ledger row appeared) and in the batch's
Temporal history (the update accepted, the issue activity completed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session as DbSession
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from devices.scale_sim import ScaleControl
from runtime.demo import DemoError, Session, _devices, _grams
from runtime.processes import ProcessGroup
from runtime.temporal_client import connect
from settings.config import Settings
from store.db import make_engine
from store.models import StepRecord
from tests.reliability.invariants import check_batch
from tests.reliability.test_worker_crash import kill_worker, restart_worker
from wms.messages import issue_key
from wms.models import Movement

pytestmark = pytest.mark.slow

ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED


class History:
    """The batch's events as the Temporal server holds them, read from the test's thread."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.client: Client = self.loop.run_until_complete(connect(settings, wait_s=60))

    def events(self, batch_id: str) -> list[Any]:
        history = self.loop.run_until_complete(
            self.client.get_workflow_handle(batch_id).fetch_history())
        return list(history.events)

    def count(self, batch_id: str, kind: int, activity: str | None = None) -> int:
        events = self.events(batch_id)
        if activity is None:
            return sum(1 for e in events if e.event_type == kind)
        scheduled = {e.event_id for e in events if e.event_type == SCHEDULED
                     and e.activity_task_scheduled_event_attributes.activity_type.name == activity}
        if kind == SCHEDULED:
            return len(scheduled)
        return sum(1 for e in events if e.event_type == COMPLETED
                   and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled)

    def close(self) -> None:
        self.loop.close()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never observed: {what}"
        time.sleep(0.05)
    return time.monotonic()


def issued_rows(engine: Engine, batch_id: str, instance: str) -> int:
    key = issue_key(batch_id, instance, 1)
    with DbSession(engine) as db:
        return len(list(db.exec(select(Movement).where(Movement.key.startswith(key)))))  # type: ignore[attr-defined]


class Line:
    """One operator at the stack; a completion runs in the background while the test kills."""

    def __init__(self, settings: Settings, group: ProcessGroup) -> None:
        self.settings, self.group = settings, group
        self.operator = Session.login(settings.api_url, "operator")
        self.scale = ScaleControl(_devices(settings)["scale_control"])
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.engine = make_engine(settings.resolved_database_url)
        self.history = History(settings)
        self.recovery_s: list[float] = []
        self.startup_s: list[float] = []

    def start(self, batch_id: str) -> list[dict[str, Any]]:
        Session.login(self.settings.api_url, "supervisor").post(
            "/api/v1/batches", {"batch_id": batch_id, "recipe_id": "VC-BLEND",
                                "version": "1.0.0"})
        return self.operator.get(f"/api/v1/batches/{batch_id}")["plan"]["steps"]

    def weigh(self, batch_id: str, step: dict[str, Any]) -> None:
        material = step["material"]
        self.scale.set_weight(_grams(material["target"], material["unit"]))
        self.operator.post(f"/api/v1/batches/{batch_id}/steps/{step['step_id']}/weigh",
                           key=f"w-{batch_id}-{step['step_id']}")

    def complete(self, batch_id: str, step: dict[str, Any]) -> concurrent.futures.Future[Any]:
        url = f"/api/v1/batches/{batch_id}/steps/{step['step_id']}/complete"
        body = {"username": self.operator.username, "password": self.operator.password}
        key = f"c-{batch_id}-{step['step_id']}"

        def send() -> Any:
            # A tablet retries with the same key when the server says to (5xx).
            deadline = time.monotonic() + 150
            while True:
                try:
                    return self.operator.post(url, body, key=key)
                except DemoError as exc:
                    if " -> 5" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(1)

        return self.pool.submit(send)

    def kill_and_restart(self, then: Callable[[], None] = lambda: None) -> float:
        log = self.settings.var_dir / "log" / "worker.log"
        started = log.read_text().count("worker polling")
        kill_worker(self.group)
        then()
        restarted = time.monotonic()
        restart_worker(self.group, self.settings)
        # The new process's own start-up (imports, schema check, connecting), apart from
        # the time the batch then needs to go on.
        polling = wait_for(lambda: log.read_text().count("worker polling") > started,
                           "the new worker polling")
        self.startup_s.append(polling - restarted)
        return restarted

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.history.close()
        self.engine.dispose()


@pytest.fixture
def line(stack: tuple[Settings, ProcessGroup]) -> Iterator[Line]:
    settings, group = stack
    approver = Session.login(settings.api_url, "approver")
    approver.post("/api/v1/recipes/VC-BLEND/versions/1.0.0/approve",
                  {"username": approver.username, "password": approver.password})
    line = Line(settings, group)
    yield line
    line.close()


def finish(line: Line, batch_id: str, step: dict[str, Any],
           pending: concurrent.futures.Future[Any], restarted: float) -> None:
    outcome = pending.result(timeout=180)
    line.recovery_s.append(time.monotonic() - restarted)
    assert outcome["result"] == "pass"
    # The API answered 2xx: the record is stored, once, and the material issued once.
    with DbSession(line.engine) as db:
        stored = list(db.exec(select(StepRecord).where(
            StepRecord.batch_id == batch_id, StepRecord.step_id == step["step_id"])))
    assert len(stored) == 1 and stored[0].content_sha256 == outcome["content_sha256"]
    assert issued_rows(line.engine, batch_id, step["step_id"]) >= 1


def test_worker_killed_at_each_point_of_a_wms_issue_issues_and_records_once(line: Line):
    settings = line.settings
    steps_a = line.start("ISSUE-A")
    steps_b = line.start("ISSUE-B")
    h = line.history

    # 1. After the WMS applied the issue, before its reply reached the workflow: killed
    #    the moment the ledger row appears.
    line.weigh("ISSUE-A", steps_a[0])
    pending = line.complete("ISSUE-A", steps_a[0])
    wait_for(lambda: issued_rows(line.engine, "ISSUE-A", steps_a[0]["step_id"]) > 0,
             "the issue applied")
    restarted = line.kill_and_restart()
    finish(line, "ISSUE-A", steps_a[0], pending, restarted)

    # 2. After the issue activity returned (its completion is in the history).
    line.weigh("ISSUE-A", steps_a[1])
    pending = line.complete("ISSUE-A", steps_a[1])
    wait_for(lambda: h.count("ISSUE-A", COMPLETED, "wms_issue") >= 2, "the issue returned")
    restarted = line.kill_and_restart()
    finish(line, "ISSUE-A", steps_a[1], pending, restarted)

    # 3. Inside the workflow task right after the update was accepted.
    line.weigh("ISSUE-B", steps_b[0])
    accepted = h.count("ISSUE-B", ACCEPTED)
    pending = line.complete("ISSUE-B", steps_b[0])
    wait_for(lambda: h.count("ISSUE-B", ACCEPTED) > accepted, "the update accepted", 60)
    applied = issued_rows(line.engine, "ISSUE-B", steps_b[0]["step_id"])
    restarted = line.kill_and_restart()
    finish(line, "ISSUE-B", steps_b[0], pending, restarted)
    print(f"\nkilled after the update was accepted; issue already applied: {bool(applied)}")

    for batch_id in ("ISSUE-A", "ISSUE-B"):
        check_batch(settings, line.engine, batch_id)
    print("\nrecovery after restart (s): " + ", ".join(f"{s:.1f}" for s in line.recovery_s)
          + "; of which the new worker's start-up: "
          + ", ".join(f"{s:.1f}" for s in line.startup_s))
