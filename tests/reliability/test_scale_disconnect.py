"""The scale's connection drops in the middle of a weighing, on the real stack.

The worker reaches the simulated scale over TCP (`EBR_SCALE_URL`, the simulator's
`socket://` transport, as a serial device server is reached), and the simulator hangs up
on the weigh command: the connection is lost after the command was sent, before any
answer. Nothing in the product knows it is being tested.
"""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from devices.scale_sim import ScaleControl
from runtime.demo import DemoError, Session, _devices, _grams
from runtime.processes import ProcessGroup
from settings.config import Settings
from store.db import make_engine
from store.models import AuditEvent, StepRecord
from tests.reliability.invariants import check_batch
from tests.reliability.test_wms_issue_crash import wait_for
from tests.reliability.test_worker_crash import kill_worker, restart_worker

pytestmark = pytest.mark.slow


def weigh(operator: Session, url: str, key: str) -> dict:
    # Like the tablet: a 503 (the worker not polling yet) is retried with the same key.
    deadline = time.monotonic() + 60
    while True:
        try:
            return operator.post(url, key=key)
        except DemoError as exc:
            if exc.code != "engine_unavailable" or time.monotonic() > deadline:
                raise


def test_scale_disconnected_mid_weighing_records_no_weight_and_weighing_again_works(
    stack: tuple[Settings, ProcessGroup], monkeypatch: pytest.MonkeyPatch,
):
    settings, group = stack
    devices = _devices(settings)
    # The worker talks to the scale over TCP from now on: a hang-up is a lost connection.
    monkeypatch.setenv("EBR_SCALE_URL", devices["scale_url"])
    log = settings.var_dir / "log" / "worker.log"
    polling = log.read_text().count("worker polling")
    kill_worker(group)
    restart_worker(group, settings)
    wait_for(lambda: log.read_text().count("worker polling") > polling, "the worker polling")

    base = settings.api_url
    approver = Session.login(base, "approver")
    approver.post("/api/v1/recipes/VC-BLEND/versions/1.0.0/approve",
                  {"username": approver.username, "password": approver.password})
    Session.login(base, "supervisor").post(
        "/api/v1/batches", {"batch_id": "SCALE-1", "recipe_id": "VC-BLEND", "version": "1.0.0"})
    operator = Session.login(base, "operator")
    step = operator.get("/api/v1/batches/SCALE-1")["plan"]["steps"][0]
    url = f"/api/v1/batches/SCALE-1/steps/{step['step_id']}"
    scale = ScaleControl(devices["scale_control"])
    material = step["material"]
    scale.set_weight(_grams(material["target"], material["unit"]))

    scale.set_fault("disconnect")
    started = time.monotonic()
    with pytest.raises(DemoError) as refused:
        weigh(operator, f"{url}/weigh", key="w-1")
    refused_s = time.monotonic() - started
    # The operator is told what happened and what to do, within the scale's retries.
    message = str(refused.value)
    assert " -> 409: " in message and "connection" in message and "lost" in message, message
    assert "check the cable" in message and refused.value.code == "scale_connection_error"
    assert refused_s < 30

    # No weight: the step is not weighed, completing it is refused, nothing is recorded;
    # the recipe's on_fail (warn, VC-BLEND's default) records the failure in the audit trail.
    view = operator.get("/api/v1/batches/SCALE-1")["execution"]
    assert view["pending_reading"] is None and view["state"] == "running", view
    current = next(s for s in view["steps"] if s["step_id"] == step["step_id"])
    assert current["status"] == "active" and current["value"] is None, current
    sign = {"username": operator.username, "password": operator.password}
    with pytest.raises(DemoError):
        operator.post(f"{url}/complete", sign, key="c-early")
    engine = make_engine(settings.resolved_database_url)
    with DbSession(engine) as db:
        assert not list(db.exec(select(StepRecord).where(StepRecord.batch_id == "SCALE-1")))
        failures = list(db.exec(select(AuditEvent).where(
            col(AuditEvent.action) == "device.failed", col(AuditEvent.subject) == "SCALE-1")))
    assert len(failures) == 1 and "lost" in failures[0].detail_json

    # The scale is back: weighing again reconnects and the step completes once.
    scale.set_fault(None)
    reading = weigh(operator, f"{url}/weigh", key="w-2")
    assert reading["in_tolerance"]
    outcome = operator.post(f"{url}/complete", sign, key="c-1")
    assert outcome["result"] == "pass"
    with DbSession(engine) as db:
        records = list(db.exec(select(StepRecord).where(StepRecord.batch_id == "SCALE-1")))
    assert [r.step_id for r in records] == [step["step_id"]]
    check_batch(settings, engine, "SCALE-1")
    engine.dispose()
    print(f"\nscale disconnected: the operator was answered in {refused_s:.1f} s")
