"""A connected batch: weighed material is issued from WMS lots by FEFO exactly once, and
a failed check whose recipe says `on_fail: hold` opens a QMS deviation that holds the
phase until QA signs a disposition; release waits for every deviation to be closed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError

from qms.builtin import BuiltinQms
from qms.messages import OpenDeviationRequest
from tests.sample_plan import PLAN_CONNECTED
from tests.workflows.rig import OPERATOR, QA_USER, complete_when_mixed, sign
from tests.workflows.test_batch_workflow import refused
from wms.builtin import BuiltinWms
from wms.messages import GenealogyQuery
from workflows.batch import BatchWorkflow
from workflows.messages import (
    CaptureWeightRequest,
    CompleteStepRequest,
    DispositionUpdate,
    ReleaseRequest,
    StateQuery,
)

WEIGH, LOD, DISCHARGE = "d/w/weigh-a", "b/b/lod", "b/b/discharge"
QA2 = QA_USER


async def weigh(handle, rig, key: str = "w-1") -> None:  # type: ignore[no-untyped-def]
    rig.scale.grams = Decimal("1200.00")
    await handle.execute_update(BatchWorkflow.capture_weight,
                                CaptureWeightRequest(WEIGH, OPERATOR))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(WEIGH, sign(OPERATOR)), id=key)


def dispose(deviation_id: str, decision: str) -> DispositionUpdate:
    return DispositionUpdate(deviation_id, decision, "Re-tested on a fresh sample",
                             sign(QA2, "reviewed"))


async def test_weighed_material_is_issued_from_the_first_expiring_lot_once(rig):
    handle = await rig.start(plan=PLAN_CONNECTED, connected=True)
    await weigh(handle, rig)
    record = rig.store.assemble_record(handle.id)
    assert record["steps"][0]["values"]["lots"].startswith("ASC-2601 ")  # FEFO: expires first
    links = BuiltinWms(rig.store.engine).backward(GenealogyQuery(handle.id)).links
    assert [(link.input_lot, Decimal(link.quantity)) for link in links] in (
        [("ASC-2601", Decimal("1.2"))], [("ASC-2601", Decimal("1200"))]
    )


async def test_failed_check_opens_a_deviation_that_holds_the_step_until_qa_accepts(rig):
    handle = await rig.start(plan=PLAN_CONNECTED, connected=True)
    await weigh(handle, rig)
    await complete_when_mixed(handle)
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(LOD, sign(OPERATOR), "2.7"))
    view = await handle.query(BatchWorkflow.view, StateQuery())
    (deviation_id, held_step), = view.open_deviations.items()
    assert held_step == LOD and [a.action for a in view.awaiting] == ["disposition"]
    assert await refused(handle, BatchWorkflow.complete_step,
                         CompleteStepRequest(DISCHARGE, sign(OPERATOR))) == "WrongStep"
    await handle.execute_update(BatchWorkflow.disposition, dispose(deviation_id, "accept"))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(DISCHARGE, sign(OPERATOR)))
    outcome = await handle.execute_update(BatchWorkflow.release,
                                          ReleaseRequest(sign(QA_USER, "released")))
    assert outcome.state == "released"


async def test_rework_runs_the_failed_step_again(rig):
    handle = await rig.start(plan=PLAN_CONNECTED, connected=True)
    await weigh(handle, rig)
    await complete_when_mixed(handle)
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(LOD, sign(OPERATOR), "2.7"))
    view = await handle.query(BatchWorkflow.view, StateQuery())
    await handle.execute_update(BatchWorkflow.disposition,
                                dispose(next(iter(view.open_deviations)), "rework"))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest(LOD, sign(OPERATOR), "1.1"))
    steps = {s["step_id"]: s for s in rig.store.assemble_record(handle.id)["steps"]}
    assert steps[LOD]["result"] == "fail" and steps[f"{LOD}#2"]["result"] == "pass"


async def test_release_waits_for_a_deviation_raised_in_the_qms(rig):
    handle = await rig.start(plan=PLAN_CONNECTED, connected=True)
    await weigh(handle, rig)
    await complete_when_mixed(handle)
    for step, value in ((LOD, "1.0"), (DISCHARGE, None)):
        await handle.execute_update(BatchWorkflow.complete_step,
                                    CompleteStepRequest(step, sign(OPERATOR), value))
    wms = BuiltinWms(rig.store.engine)
    BuiltinQms(rig.store.engine, wms).open_deviation(OpenDeviationRequest(
        key="op-raised-1", batch_id=handle.id, phase_instance=DISCHARGE, classification="minor",
        title="Drum label smudged", description="Relabelled", actor="operator"))
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(BatchWorkflow.release,
                                    ReleaseRequest(sign(QA_USER, "released")))
    assert "still open" in str(info.value.cause)
