"""A graceful restart of the Temporal server (SIGTERM, then start again on its database
file) while a batch's hold timer runs, on the real stack: the timer still fires (the
excursion is recorded when the hold passes its maximum), nothing acknowledged is lost and
the batch goes on. (kill -9 of the server: test_worker_crash.py.)"""

from __future__ import annotations

import time

import httpx
import pytest
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from runtime.demo import DemoError, Session, perform_steps
from runtime.seed import EXAMPLES
from runtime.temporal_server import start_dev_server
from store.db import make_engine
from store.models import AuditEvent, StepRecord
from tests.reliability.invariants import check_batch

pytestmark = pytest.mark.slow

HOLD = """            - id: hold
              type: timer
              name: Rest the blend
              min_duration: hold_min
              max_duration: hold_max
              instruction: Let the charged blend rest before blending.
"""
PARAMETERS = """    - {id: hold_min, name: Minimum rest, value: 2, unit: s, scaled: false}
    - {id: hold_max, name: Maximum rest, value: 12, unit: s, scaled: false}
"""


def recipe_with_a_hold() -> str:
    """The example recipe as version 1.1.0, with a timed hold after charging the blender."""
    text = (EXAMPLES / "vitamin-c-blend.yaml").read_text(encoding="utf-8")
    text = text.replace("version: 1.0.0", "version: 1.1.0", 1)
    marker = "            - id: blend\n              type: mix\n"
    assert marker in text and "  parameters:" in text
    text = text.replace(marker, HOLD + marker, 1)
    anchor = "    - {id: mix_time"
    return text.replace(anchor, PARAMETERS + anchor, 1)


def wait(condition, what: str, timeout_s: float = 90):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = condition()
            if result:
                return result
        except (DemoError, httpx.HTTPError):
            pass  # the server is still coming back
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.5)


def test_graceful_server_restart_during_a_hold_the_timer_still_fires(stack):
    settings, group = stack
    base = settings.api_url
    author = Session.login(base, "author")
    author.post("/api/v1/recipes", {"yaml": recipe_with_a_hold(), "filename": "hold.yaml"})
    author.post("/api/v1/recipes/VC-BLEND/versions/1.1.0/submit", {})
    approver = Session.login(base, "approver")
    approver.post("/api/v1/recipes/VC-BLEND/versions/1.1.0/approve",
                  {"username": approver.username, "password": approver.password})
    Session.login(base, "supervisor").post(
        "/api/v1/batches", {"batch_id": "HOLD-1", "recipe_id": "VC-BLEND", "version": "1.1.0"})
    operator = Session.login(base, "operator")
    plan = operator.get("/api/v1/batches/HOLD-1")["plan"]["steps"]
    hold = next(s for s in plan if s["kind"] == "timer")
    done = perform_steps(settings, "HOLD-1", say=lambda *_: None,
                         max_steps=plan.index(hold))
    assert operator.get("/api/v1/batches/HOLD-1")["execution"]["current_step_id"] == \
        hold["step_id"]

    # The hold's 12 s maximum runs out while the server is stopped or just back.
    server = next(c for c in group.children if c.name == "temporal")
    server.process.terminate()
    assert server.process.wait(timeout=60) is not None
    group.children.remove(server)
    time.sleep(3)
    restarted = start_dev_server(settings, settings.var_dir / "log" / "temporal.log")
    group.children.insert(0, type(server)("temporal", restarted, server.log))

    engine = make_engine(settings.resolved_database_url)

    def exceeded() -> bool:
        with DbSession(engine) as db:
            return db.exec(select(AuditEvent).where(
                col(AuditEvent.action).startswith("timer.exceeded"))).first() is not None

    wait(exceeded, "the hold timer fired after the restart", 120)
    wait(lambda: operator.post(
        f"/api/v1/batches/HOLD-1/steps/{hold['step_id']}/complete",
        {"username": operator.username, "password": operator.password}, key="c-hold"),
        "the hold completed")
    with DbSession(engine) as db:
        records = list(db.exec(select(StepRecord).where(StepRecord.batch_id == "HOLD-1")))
    assert sorted(r.step_id for r in records) == sorted(
        s["step_id"] for s in plan[: done + 1])
    check_batch(settings, engine, "HOLD-1")
