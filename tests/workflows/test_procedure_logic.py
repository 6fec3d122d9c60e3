"""Procedure logic from the plan: parallel branches, bounded loops, conditional steps."""

from __future__ import annotations

from decimal import Decimal

from tests.sample_plan import PLAN_IF, PLAN_LOOP, PLAN_PARALLEL
from tests.workflows.rig import (
    OPERATOR,
    SUPERVISOR,
    complete_when_mixed,
    sign,
    wait_for_state,
    weigh_and_complete,
)
from workflows.batch import BatchWorkflow
from workflows.messages import CompleteStepRequest, StateChangeRequest, StateQuery


async def lod(handle, value: str) -> None:  # type: ignore[no-untyped-def]
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/lod", sign(OPERATOR), value))


async def discharge(handle) -> None:  # type: ignore[no-untyped-def]
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/discharge", sign(OPERATOR)))


async def test_parallel_branches_are_active_together(rig):
    handle = await rig.start(plan=PLAN_PARALLEL)
    view = await handle.query(BatchWorkflow.view, StateQuery())
    assert view.active_step_ids == ["d/w/weigh-a", "b/b/mix"]
    await complete_when_mixed(handle)  # the mix branch can finish first
    await weigh_and_complete(handle, rig, "1200.00")
    await lod(handle, "1.0")
    await discharge(handle)
    view = await handle.query(BatchWorkflow.view, StateQuery())
    assert view.state == "complete"


async def test_loop_repeats_until_the_check_passes_and_records_each_run(rig):
    handle = await rig.start(plan=PLAN_LOOP)
    await weigh_and_complete(handle, rig, "1200.00")
    await complete_when_mixed(handle)
    await lod(handle, "2.5")  # fails: mix again
    await complete_when_mixed(handle)
    await lod(handle, "1.2")
    await discharge(handle)
    assert len(rig.mixer.starts) == 2
    steps = {s["step_id"]: s for s in rig.store.assemble_record(handle.id)["steps"]}
    assert steps["b/b/lod"]["result"] == "fail" and steps["b/b/lod#2"]["result"] == "pass"
    assert "b/b/mix#2" in steps and steps["b/b/lod#2"]["limits"]["high"] == "2.0"


async def test_exhausted_loop_holds_the_batch_for_a_decision(rig):
    handle = await rig.start(plan=PLAN_LOOP)
    await weigh_and_complete(handle, rig, "1200.00")
    for _ in range(3):
        await complete_when_mixed(handle)
        await lod(handle, "3.0")
    view = await wait_for_state(handle, "held")
    assert "after 3 tries" in view.hold_reason
    await handle.execute_update(BatchWorkflow.restart, StateChangeRequest(
        sign(SUPERVISOR, "restarted"), "QA accepts: deviation DEV-7 opened"))
    await discharge(handle)


async def test_conditional_step_runs_only_when_its_condition_holds(rig):
    skipped = await rig.start(plan=PLAN_IF)
    await weigh_and_complete(skipped, rig, "1200.00")
    await lod(skipped, "1.0")
    await discharge(skipped)  # no mix needed
    assert rig.mixer.starts == []

    mixed = await rig.start(plan=PLAN_IF)
    rig.scale.grams = Decimal("1200.00")
    await weigh_and_complete(mixed, rig, "1200.00")
    await lod(mixed, "1.8")
    await complete_when_mixed(mixed)
    await discharge(mixed)
    assert len(rig.mixer.starts) == 1
