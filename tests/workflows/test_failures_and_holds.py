"""Device failures go to the recipe's on_fail instead of failing the batch, an operator
can hold the batch, hold time is measured, and device activities run on the task queue
of the station that reaches the equipment."""

from __future__ import annotations

import concurrent.futures
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError

from activities.devices import DeviceActivities
from runtime.worker import build_worker
from tests.sample_plan import HEAT, PLAN, PLAN_CONNECTED, PLAN_KINDS, TEMP
from tests.workflows.fakes import FakePlc, opener
from tests.workflows.rig import OPERATOR, QA_USER, SUPERVISOR, sign, wait_for_state
from tests.workflows.test_batch_workflow import change, refused
from tests.workflows.test_phase_kinds import run_all_kinds_until_clearance, until, view
from workflows.batch import BatchWorkflow
from workflows.messages import (
    CaptureWeightRequest,
    CompleteStepRequest,
    DispositionUpdate,
    HoldRequest,
)

WEIGH = "d/w/weigh-a"


def accept(deviation_id: str) -> DispositionUpdate:
    return DispositionUpdate(deviation_id, "accept", "Cable replaced", sign(QA_USER, "reviewed"))


class TestDeviceFailures:
    async def test_unreachable_scale_opens_a_deviation_and_the_operator_weighs_again(self, rig):
        plan = replace(PLAN_CONNECTED, steps=[replace(PLAN_CONNECTED.steps[0], on_fail="hold"),
                                              *PLAN_CONNECTED.steps[1:]])
        handle = await rig.start(plan=plan, connected=True)
        rig.scale.unreachable = True
        kind = await refused(handle, BatchWorkflow.capture_weight,
                             CaptureWeightRequest(WEIGH, OPERATOR))
        assert kind == "ScaleConnectionError"
        current = await view(handle)
        (deviation_id, step), = current.open_deviations.items()
        assert step == WEIGH and current.state == "running"
        rig.scale.unreachable, rig.scale.grams = False, Decimal("1200.00")
        await handle.execute_update(BatchWorkflow.disposition, accept(deviation_id))
        reading = await handle.execute_update(BatchWorkflow.capture_weight,
                                              CaptureWeightRequest(WEIGH, OPERATOR))
        assert reading.in_tolerance

    async def test_unreachable_scale_with_warn_is_recorded_and_can_be_retried(self, rig):
        handle = await rig.start()
        rig.scale.unreachable = True
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(BatchWorkflow.capture_weight,
                                        CaptureWeightRequest(WEIGH, OPERATOR))
        # The operator reads the driver's message, not the port's error behind it.
        assert failed.value.cause.message == (  # type: ignore[union-attr]
            "Scale FAKE does not answer on its port: check the cable.")
        assert failed.value.cause.type == "ScaleConnectionError"  # type: ignore[union-attr]
        audit = rig.store.assemble_record(handle.id)["audit"]
        assert any(a["action"] == "device.failed" for a in audit)
        rig.scale.unreachable, rig.scale.grams = False, Decimal("1200.00")
        await handle.execute_update(BatchWorkflow.capture_weight,
                                    CaptureWeightRequest(WEIGH, OPERATOR))

    async def test_unreachable_plc_holds_the_batch_and_a_restart_runs_the_phase_again(
        self, rig
    ):
        rig.plc.unreachable = True
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        current = await _to_heat(handle, rig)
        held = await wait_for_state(handle, "held", timeout_s=60)
        assert "not reachable" in held.hold_reason and HEAT in held.active_step_ids
        rig.plc.unreachable = False
        await handle.execute_update(BatchWorkflow.restart,
                                    change(SUPERVISOR, "restarted", "PLC back"))
        current = await until(handle, lambda v: any(
            s.step_id == TEMP and s.status == "done" for s in v.steps))
        assert current.state == "running"
        assert rig.plc.writes[-1] == ("temperature_setpoint_c", 72.5)

    async def test_plc_read_outside_action_limits_holds_the_phase_for_qa(self, rig):
        rig.plc.tags["temperature_c"] = Decimal("80")
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        await _to_heat(handle, rig)
        current = await until(handle, lambda v: bool(v.open_deviations))
        assert list(current.open_deviations.values()) == [TEMP]
        temp = next(s for s in rig.store.assemble_record(handle.id)["steps"]
                    if s["step_id"] == TEMP)
        assert temp["result"] == "fail" and temp["values"]["value"] == "80"


async def _to_heat(handle, rig):  # type: ignore[no-untyped-def]
    from tests.sample_plan import ASC_LABEL_2601 as label
    from tests.workflows.test_phase_kinds import complete, weigh_to_pick
    from workflows.messages import ScanMaterialRequest

    await weigh_to_pick(handle, rig)
    await handle.execute_update(BatchWorkflow.scan_material,
                                ScanMaterialRequest("d/p/pick-asc", label, OPERATOR))
    await complete(handle, "d/p/pick-asc")
    return await view(handle)


class TestOperatorHold:
    async def test_operator_holds_with_a_reason_and_a_supervisor_restarts(self, rig):
        handle = await rig.start()
        assert await refused(handle, BatchWorkflow.request_hold,
                             HoldRequest(" ", sign(OPERATOR, "held"))) == "Missing"
        outcome = await handle.execute_update(
            BatchWorkflow.request_hold, HoldRequest("Powder spilled", sign(OPERATOR, "held")))
        assert outcome.state == "held"
        current = await view(handle)
        assert current.held_since and "Powder spilled" in current.hold_reason
        assert [(a.action, a.meaning) for a in current.pending_signatures] == [
            ("restart", "restarted")]
        assert await refused(handle, BatchWorkflow.restart,
                             change(OPERATOR, "restarted")) == "NotPermitted"
        await handle.execute_update(BatchWorkflow.restart, change(SUPERVISOR, "restarted"))
        current = await view(handle)
        assert current.state == "running" and current.held_since == ""
        assert current.held_total_s >= 0
        audit = rig.store.assemble_record(handle.id)["audit"]
        assert any(a["action"] == "batch.held" and a["actor"] == "operator" for a in audit)

    async def test_a_held_batch_cannot_be_held_again(self, rig):
        handle = await rig.start()
        await handle.execute_update(BatchWorkflow.request_hold,
                                    HoldRequest("Doubt", sign(OPERATOR, "held")))
        assert await refused(handle, BatchWorkflow.request_hold,
                             HoldRequest("Again", sign(OPERATOR, "held"))) == "WrongState"


class TestStationQueues:
    async def test_plc_phases_run_on_the_station_worker_of_their_equipment(self, rig):
        station_plc = FakePlc(tags={"temperature_setpoint_c": Decimal("20"),
                                     "temperature_c": Decimal("72.0")})
        queue = f"ebr-station-{uuid.uuid4().hex[:6]}"
        devices = DeviceActivities(open_scale=opener(rig.scale), open_mixer=opener(rig.mixer),
                                   open_plc=opener(station_plc))
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as executor:
            async with build_worker(rig.env.client, queue, [devices], executor):
                handle = await rig.start(plan=PLAN_KINDS, connected=True,
                                         task_queues={"COOKER-01": queue})
                await run_all_kinds_until_clearance(handle, rig)
        assert station_plc.writes == [("temperature_setpoint_c", 72.5)]
        assert rig.plc.writes == []
        await handle.execute_update(BatchWorkflow.complete_step, CompleteStepRequest(
            "p/r/clearance", sign(SUPERVISOR, "approved")))
        assert (await view(handle)).state == "complete"


def test_plain_plan_is_unchanged_by_the_new_fields():
    assert PLAN.steps[0].perform_role == "operator" and PLAN.parameters == []
