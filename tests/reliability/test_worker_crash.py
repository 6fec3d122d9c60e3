"""kill -9 of the worker on the real stack: nothing lost, nothing recorded twice.

Real processes as `ebr up` runs them: the Temporal dev server with its database file,
the simulated devices, the worker and the API each in their own process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time

import httpx
import pytest
from sqlmodel import Session as DbSession
from sqlmodel import select
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from devices.scale_sim import ScaleControl
from runtime.demo import (
    DemoError,
    Session,
    _devices,
    _grams,
    _wait_for_report,
    wait_until_complete,
)
from runtime.processes import ProcessGroup, ebr_command
from settings.config import Settings
from store.audit import verify_chain
from store.db import make_engine
from store.models import StepRecord
from tests.reliability.invariants import check_batch

pytestmark = pytest.mark.slow


def kill_worker(group: ProcessGroup) -> None:
    worker = next(c for c in group.children if c.name == "worker")
    worker.process.kill()  # SIGKILL: no cleanup, as in a power cut
    worker.process.wait()
    group.children.remove(worker)


def restart_worker(group: ProcessGroup, settings: Settings) -> None:
    group.spawn("worker", ebr_command("worker"), settings.var_dir / "log" / "worker.log")


def wait_until_running(settings: Settings, workflow_id: str, activity_type: str) -> None:
    """Until the batch's `activity_type` attempt has been started by a worker."""

    async def poll() -> None:
        client = await Client.connect(settings.temporal_target,
                                      namespace=settings.temporal_namespace)
        handle = client.get_workflow_handle(workflow_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pending = (await handle.describe()).raw_description.pending_activities
            if any(a.activity_type.name == activity_type
                   and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                   for a in pending):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{activity_type} of {workflow_id} never started")

    asyncio.run(poll())


def test_worker_killed_mid_batch_resumes_and_records_each_step_once(stack):
    settings, group = stack
    base = settings.api_url
    approver = Session.login(base, "approver")
    approver.post("/api/v1/recipes/VC-BLEND/versions/1.0.0/approve",
                  {"username": approver.username, "password": approver.password})
    Session.login(base, "supervisor").post(
        "/api/v1/batches", {"batch_id": "CRASH-1", "recipe_id": "VC-BLEND", "version": "1.0.0"})
    operator = Session.login(base, "operator")
    scale = ScaleControl(_devices(settings)["scale_control"])
    plan = operator.get("/api/v1/batches/CRASH-1")["plan"]["steps"]
    url = "/api/v1/batches/CRASH-1/steps/"
    sign = {"username": operator.username, "password": operator.password}

    def weigh(step: dict) -> None:
        material = step["material"]
        scale.set_weight(_grams(material["target"], material["unit"]))
        # Like the tablet: a 503 (no worker yet) is retried with the same key.
        deadline = time.monotonic() + 120
        while True:
            try:
                operator.post(f"{url}{step['step_id']}/weigh", key=f"w-{step['step_id']}")
                return
            except DemoError as exc:
                if exc.code != "engine_unavailable" or time.monotonic() > deadline:
                    raise

    # 0. The worker dies while the scale settles during a weighing: the read is retried on
    #    the new worker (its heartbeat stops, 5 s) and one weight is recorded.
    scale.set_stable(False)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        settling = pool.submit(weigh, plan[0])
        wait_until_running(settings, "CRASH-1", "read_weight")
        kill_worker(group)
        scale.set_stable(True)
        restarted = time.monotonic()
        restart_worker(group, settings)
        settling.result(timeout=90)
        weigh_resume_s = time.monotonic() - restarted
    operator.post(f"{url}{plan[0]['step_id']}/complete", sign, key="c-0")

    # 1. The worker dies between two operator actions; the next action waits for it.
    kill_worker(group)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(weigh, plan[1])
        time.sleep(2)
        restarted = time.monotonic()
        restart_worker(group, settings)
        pending.result(timeout=60)
        resume_s = time.monotonic() - restarted
    operator.post(f"{url}{plan[1]['step_id']}/complete", sign, key="c-1")
    operator.post(f"{url}{plan[2]['step_id']}/complete", sign, key="c-2")

    # 2. The worker dies while the mixer runs; the retried activity resumes watching.
    deadline = time.monotonic() + 30
    while not operator.get("/api/v1/batches/CRASH-1")["execution"]["mixing"]:
        assert time.monotonic() < deadline, "the mix never started"
        time.sleep(0.2)
    kill_worker(group)
    restart_worker(group, settings)
    deadline = time.monotonic() + 120
    while operator.get("/api/v1/batches/CRASH-1")["execution"]["mixing"]:
        assert time.monotonic() < deadline, "the mix never finished after the crash"
        time.sleep(0.5)
    mix = operator.post(f"{url}{plan[3]['step_id']}/complete", sign, key="c-3")
    assert mix["result"] == "pass"
    operator.post(f"{url}{plan[4]['step_id']}/complete", sign | {"value": "1.0"}, key="c-4")
    operator.post(f"{url}{plan[5]['step_id']}/complete", sign, key="c-5")
    qa = Session.login(base, "qa")
    wait_until_complete(qa, "CRASH-1")
    qa.post("/api/v1/batches/CRASH-1/release", {"username": qa.username, "password": qa.password,
                                                "decision": "released"}, key="rel")
    _wait_for_report(qa, "CRASH-1")

    engine = make_engine(settings.resolved_database_url)
    with DbSession(engine) as db:
        records = list(db.exec(select(StepRecord).where(StepRecord.batch_id == "CRASH-1")))
        assert sorted(r.step_id for r in records) == sorted(s["step_id"] for s in plan)
        assert verify_chain(db).ok
    mix_values = json.loads(next(r for r in records if r.step_id == plan[3]["step_id"]).values_json)
    assert int(mix_values["value"]) >= plan[3]["duration_s"]  # the PLC counted one full run
    check_batch(settings, engine, "CRASH-1")
    print(f"\nweighing completed {weigh_resume_s:.1f} s after the worker restarted; the next "
          f"update {resume_s:.1f} s")
    assert resume_s < 15 and weigh_resume_s < 30


def test_temporal_server_killed_mid_batch_comes_back_with_the_batch(stack):
    settings, group = stack
    from runtime.temporal_server import start_dev_server

    base = settings.api_url
    approver = Session.login(base, "approver")
    approver.post("/api/v1/recipes/VC-BLEND/versions/1.0.0/approve",
                  {"username": approver.username, "password": approver.password})
    Session.login(base, "supervisor").post(
        "/api/v1/batches", {"batch_id": "SRV-1", "recipe_id": "VC-BLEND", "version": "1.0.0"})
    operator = Session.login(base, "operator")
    scale = ScaleControl(_devices(settings)["scale_control"])
    plan = operator.get("/api/v1/batches/SRV-1")["plan"]["steps"]
    material = plan[0]["material"]
    scale.set_weight(_grams(material["target"], material["unit"]))
    url = "/api/v1/batches/SRV-1/steps/"
    operator.post(f"{url}{plan[0]['step_id']}/weigh", key="w-0")
    operator.post(f"{url}{plan[0]['step_id']}/complete",
                  {"username": operator.username, "password": operator.password}, key="c-0")

    server = next(c for c in group.children if c.name == "temporal")
    server.process.kill()  # SIGKILL: the server's database file is all that survives
    server.process.wait()
    group.children.remove(server)
    restarted = start_dev_server(settings, settings.var_dir / "log" / "temporal.log")
    group.children.insert(0, type(server)("temporal", restarted, server.log))

    # The acknowledged step is still there, and the batch goes on where it was.
    deadline = time.monotonic() + 90
    while True:
        try:
            batch = operator.get("/api/v1/batches/SRV-1")
            break
        except (DemoError, httpx.HTTPError):
            assert time.monotonic() < deadline, "the API never reached the restarted server"
            time.sleep(1)
    assert batch["execution"]["current_step_id"] == plan[1]["step_id"]
    material = plan[1]["material"]
    scale.set_weight(_grams(material["target"], material["unit"]))
    deadline = time.monotonic() + 90
    while True:
        try:
            operator.post(f"{url}{plan[1]['step_id']}/weigh", key="w-1")
            break
        except (DemoError, httpx.HTTPError):
            assert time.monotonic() < deadline, "the worker never came back to the server"
            time.sleep(1)
    outcome = operator.post(
        f"{url}{plan[1]['step_id']}/complete",
        {"username": operator.username, "password": operator.password}, key="c-1")
    assert outcome["result"] == "pass"
    engine = make_engine(settings.resolved_database_url)
    with DbSession(engine) as db:
        records = list(db.exec(select(StepRecord).where(StepRecord.batch_id == "SRV-1")))
        assert sorted(r.step_id for r in records) == sorted(s["step_id"] for s in plan[:2])
    check_batch(settings, engine, "SRV-1")
