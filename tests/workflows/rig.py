"""A batch rig for workflow tests: the real workflow on a real local Temporal server,
the real record store, and fake instruments; plus the operator moves tests share."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.labels import LabelActivities
from recipes.plan import BatchPlan
from store.batch_record import BatchRecordStore
from tests.sample_plan import PLAN
from tests.workflows.fakes import FakeMixer, FakePlc, FakeReports, FakeScale
from workflows.batch import BatchWorkflow
from workflows.messages import (
    BatchInput,
    CaptureWeightRequest,
    CompleteStepRequest,
    SignatureIntent,
    Signer,
    StateQuery,
)

OPERATOR = Signer(user_id=3, username="operator", full_name="Olivia Operator", roles=["operator"])
OTHER_OPERATOR = Signer(user_id=8, username="op2", full_name="Otto Other", roles=["operator"])
QA_USER = Signer(user_id=5, username="qa", full_name="Quinn Quality", roles=["qa"])
QA_AND_OPERATOR = Signer(user_id=3, username="operator", full_name="Olivia Operator",
                         roles=["operator", "qa"])



def sign(signer: Signer, meaning: str = "performed") -> SignatureIntent:
    return SignatureIntent(signer=signer, meaning=meaning, signed_at="2026-11-21T10:00:00+00:00")


@dataclass
class Rig:
    env: WorkflowEnvironment
    store: BatchRecordStore
    scale: FakeScale
    mixer: FakeMixer
    reports: FakeReports
    task_queue: str
    plc: FakePlc
    labels: LabelActivities

    async def start(
        self, batch_id: str | None = None, plan: BatchPlan = PLAN, connected: bool = False,
        task_queues: dict[str, str] | None = None,
    ) -> WorkflowHandle:
        """`connected`: the batch consumes WMS lots and raises QMS deviations."""
        batch_id = batch_id or f"B-{uuid.uuid4().hex[:8]}"
        equipment = {"scale": "SCALE-01", "mixer": "MIXER-01", "cooker": "COOKER-01"}
        self.store.create_batch(batch_id, plan, equipment, "sup")
        return await self.env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(batch_id, plan, equipment, "sup",
                       inventory=connected, quality=connected, task_queues=task_queues or {}),
            id=batch_id,
            task_queue=self.task_queue,
        )


async def weigh_and_complete(handle: WorkflowHandle, rig: Rig, grams: str) -> None:
    rig.scale.grams = Decimal(grams)
    await handle.execute_update(BatchWorkflow.capture_weight,
                                CaptureWeightRequest("d/w/weigh-a", OPERATOR))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("d/w/weigh-a", sign(OPERATOR)))


async def run_to_complete(handle: WorkflowHandle, rig: Rig, lod: str = "1.1") -> None:
    await weigh_and_complete(handle, rig, "1201.50")
    await complete_when_mixed(handle)
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/lod", sign(OPERATOR), entered_value=lod))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/discharge", sign(OPERATOR)))


async def complete_when_mixed(handle: WorkflowHandle, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            await handle.execute_update(BatchWorkflow.complete_step,
                                        CompleteStepRequest("b/b/mix", sign(OPERATOR)))
            return
        except WorkflowUpdateFailedError as err:
            assert err.cause.type == "Mixing"  # type: ignore[union-attr]
        await asyncio.sleep(0.1)
    raise AssertionError("mix never finished")


SUPERVISOR = Signer(user_id=4, username="sup", full_name="Sam Supervisor", roles=["supervisor"])


async def wait_for_state(handle, state: str, timeout_s: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        view = await handle.query(BatchWorkflow.view, StateQuery())
        if view.state == state:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch never reached {state}")
