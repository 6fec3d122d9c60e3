"""Hold times run on workflow time (the time-skipping server makes hours pass in seconds):
too early is refused, too late is recorded as an excursion."""

from __future__ import annotations

from tests.sample_plan import PLAN_TIMER
from tests.workflows.rig import OPERATOR, complete_when_mixed, sign, weigh_and_complete
from tests.workflows.test_batch_workflow import refused
from workflows.batch import BatchWorkflow
from workflows.messages import CompleteStepRequest

REST = "b/b/rest"


async def to_rest(handle, rig) -> None:  # type: ignore[no-untyped-def]
    await weigh_and_complete(handle, rig, "1200.00")
    await complete_when_mixed(handle)


async def test_completing_a_hold_before_its_minimum_is_refused(timeskip_rig):
    rig = timeskip_rig
    handle = await rig.start(plan=PLAN_TIMER)
    await to_rest(handle, rig)
    await rig.env.sleep(3600)
    kind = await refused(handle, BatchWorkflow.complete_step,
                         CompleteStepRequest(REST, sign(OPERATOR)))
    assert kind == "TooEarly"
    await rig.env.sleep(3700)
    outcome = await handle.execute_update(BatchWorkflow.complete_step,
                                          CompleteStepRequest(REST, sign(OPERATOR)))
    assert outcome.result == "pass"
    rest = next(s for s in rig.store.assemble_record(handle.id)["steps"] if s["step_id"] == REST)
    assert 7200 <= int(rest["values"]["value"]) < 10800


async def test_passing_the_maximum_is_recorded_as_an_excursion(timeskip_rig):
    rig = timeskip_rig
    handle = await rig.start(plan=PLAN_TIMER)
    await to_rest(handle, rig)
    await rig.env.sleep(4 * 3600)
    outcome = await handle.execute_update(BatchWorkflow.complete_step,
                                          CompleteStepRequest(REST, sign(OPERATOR)))
    assert outcome.result == "fail"
    audit = rig.store.assemble_record(handle.id)["audit"]
    assert any(a["action"].startswith("timer.exceeded") for a in audit)
