"""Long batches stay inside Temporal's per-run limits by continuing as new between
procedure elements, carrying everything the batch knows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recipes.plan import PlanStep
from tests.sample_plan import PLAN
from tests.workflows.rig import OPERATOR, QA_USER, sign
from workflows.batch import BatchWorkflow
from workflows.messages import BatchInput, CompleteStepRequest, ReleaseRequest, StateQuery

STEPS = 40
LONG = replace(
    PLAN,
    equipment=[],
    steps=[PlanStep(f"p/o/confirm-{i:03d}", "instruction", f"Confirm {i}", "Confirm.", "p", "o")
           for i in range(STEPS)],
)


async def test_long_batch_continues_as_new_and_keeps_every_record(rig):
    batch_id = "LONG-1"
    rig.store.create_batch(batch_id, LONG, {}, "sup")
    handle = await rig.env.client.start_workflow(
        BatchWorkflow.run,
        BatchInput(batch_id, LONG, {}, "sup", history_budget=60),
        id=batch_id,
        task_queue=rig.task_queue,
    )
    first_run = (await handle.describe()).run_id
    for step in LONG.steps:
        await handle.execute_update(BatchWorkflow.complete_step,
                                    CompleteStepRequest(step.step_id, sign(OPERATOR)))
    view = await handle.query(BatchWorkflow.view, StateQuery())
    assert view.state == "complete"
    assert all(s.status == "done" and s.signed_by for s in view.steps)
    await handle.execute_update(BatchWorkflow.release, ReleaseRequest(sign(QA_USER, "released")))
    result = await handle.result()
    assert result.state == "released"

    final = await rig.env.client.get_workflow_handle(batch_id).describe()
    assert final.run_id != first_run
    history = await rig.env.client.get_workflow_handle(batch_id).fetch_history()
    assert len(history.events) < 200  # the last run only holds its own part
    record = rig.store.assemble_record(batch_id)
    assert [s["step_id"] for s in record["steps"]] == [s.step_id for s in LONG.steps]
    continued = [a for a in record["audit"] if a["action"].startswith("batch.continued")]
    assert continued, "the batch never continued as new"


async def test_performer_remembered_across_runs_cannot_release(rig):
    batch_id = "LONG-2"
    rig.store.create_batch(batch_id, LONG, {}, "sup")
    handle = await rig.env.client.start_workflow(
        BatchWorkflow.run, BatchInput(batch_id, LONG, {}, "sup", history_budget=60),
        id=batch_id, task_queue=rig.task_queue,
    )
    qa_operator = replace(QA_USER, roles=["qa", "operator"])
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(LONG.steps[0].step_id, sign(qa_operator)))
    for step in LONG.steps[1:]:
        await handle.execute_update(BatchWorkflow.complete_step,
                                    CompleteStepRequest(step.step_id, sign(OPERATOR)))
    import pytest
    from temporalio.client import WorkflowUpdateFailedError

    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(BatchWorkflow.release,
                                    ReleaseRequest(sign(qa_operator, "released")))


@pytest.mark.slow
async def test_a_500_phase_batch_runs_with_every_run_under_the_history_limit(rig):
    steps = [PlanStep(f"p/o/s{i:03d}", "instruction", f"Confirm {i}", "Confirm.", "p", "o")
             for i in range(500)]
    plan = replace(PLAN, equipment=[], steps=steps)
    rig.store.create_batch("LONG-500", plan, {}, "sup")
    handle = await rig.env.client.start_workflow(
        BatchWorkflow.run, BatchInput("LONG-500", plan, {}, "sup"),
        id="LONG-500", task_queue=rig.task_queue,
    )
    runs = {(await handle.describe()).run_id}
    for step in steps:
        await handle.execute_update(BatchWorkflow.complete_step,
                                    CompleteStepRequest(step.step_id, sign(OPERATOR)))
    await handle.execute_update(BatchWorkflow.release, ReleaseRequest(sign(QA_USER, "released")))
    assert (await handle.result()).state == "released"
    async for execution in rig.env.client.list_workflows("WorkflowId = 'LONG-500'"):
        runs.add(execution.run_id)
    for run_id in runs:
        history = await rig.env.client.get_workflow_handle("LONG-500", run_id=run_id
                                                           ).fetch_history()
        assert len(history.events) < 10_240
    assert len(rig.store.assemble_record("LONG-500")["steps"]) == 500
