"""Determinism guard: saved histories of real batches replay against the current code.

A change to `workflows/` that would break batches already running fails here. To
add or refresh a history after a deliberate, versioned change, run
`EBR_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/workflows/test_replay.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory, WorkflowUpdateFailedError
from temporalio.worker import Replayer

from tests.workflows.rig import OPERATOR, QA_USER, run_to_complete, sign
from workflows.batch import BatchWorkflow
from workflows.messages import CommentRequest, ReleaseRequest, Signer, StateChangeRequest

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


def saved_histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", saved_histories(), ids=lambda p: p.stem)
async def test_saved_history_replays_on_current_code(path: Path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    await Replayer(workflows=[BatchWorkflow]).replay_workflow(history)


def test_there_is_at_least_one_saved_history():
    assert saved_histories(), "tests/histories/ must hold representative batch histories"


@pytest.mark.skipif(not os.environ.get("EBR_RECORD_HISTORIES"), reason="records on request")
@pytest.mark.parametrize(
    "scenario",
    ["released-with-excursion", "rejected", "held-restarted-aborted", "loop-and-deviation",
     "every-phase-kind", "every-phase-kind-local-starts"],
)
async def test_record_history(rig, scenario: str):  # type: ignore[no-untyped-def]
    if scenario == "loop-and-deviation":
        await record_loop_and_deviation(rig)
        return
    if scenario.startswith("every-phase-kind"):
        # "-local-starts": recorded once phase-started events became local activities.
        await record_every_phase_kind(rig, scenario)
        return
    handle = await rig.start(batch_id=f"history-{scenario}")
    if scenario == "held-restarted-aborted":
        sup = Signer(4, "sup", "Sam Supervisor", ["supervisor"])
        await handle.execute_update(BatchWorkflow.hold, StateChangeRequest(sign(sup, "held"), "x"))
        await handle.execute_update(BatchWorkflow.restart,
                                    StateChangeRequest(sign(sup, "restarted"), "y"))
        await handle.execute_update(BatchWorkflow.comment, CommentRequest("", OPERATOR, "note"))
        await handle.execute_update(BatchWorkflow.abort,
                                    StateChangeRequest(sign(QA_USER, "aborted"), "z"))
        await handle.result()
        history = await handle.fetch_history()
        (HISTORIES / f"{scenario}.json").write_text(history.to_json())
        return
    await run_to_complete(handle, rig, lod="2.5" if "excursion" in scenario else "1.0")
    if scenario == "rejected":
        req = ReleaseRequest(sign(QA_USER, "rejected"), reason="LOD out of trend")
    else:
        req = ReleaseRequest(sign(QA_USER, "released"))
    await handle.execute_update(BatchWorkflow.release, req)
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / f"{scenario}.json").write_text(history.to_json())


async def record_loop_and_deviation(rig) -> None:  # type: ignore[no-untyped-def]
    """Procedure logic and connected systems: a loop, WMS issue, a QMS deviation."""
    from dataclasses import replace

    from tests.sample_plan import PLAN_CONNECTED, PLAN_LOOP
    from tests.workflows.rig import complete_when_mixed, weigh_and_complete
    from workflows.messages import CompleteStepRequest, DispositionUpdate, StateQuery

    plan = replace(PLAN_LOOP, steps=PLAN_CONNECTED.steps)
    handle = await rig.start(batch_id="history-loop-and-deviation", plan=plan, connected=True)
    await weigh_and_complete(handle, rig, "1200.00")
    await complete_when_mixed(handle)
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/lod", sign(OPERATOR), "2.6"))
    view = await handle.query(BatchWorkflow.view, StateQuery())
    await handle.execute_update(BatchWorkflow.disposition, DispositionUpdate(
        next(iter(view.open_deviations)), "accept", "Within trend", sign(QA_USER, "reviewed")))
    await complete_when_mixed(handle)
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/lod", sign(OPERATOR), "1.2"))
    await handle.execute_update(BatchWorkflow.complete_step,
                                CompleteStepRequest("b/b/discharge", sign(OPERATOR)))
    await handle.execute_update(BatchWorkflow.release, ReleaseRequest(sign(QA_USER, "released")))
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / "loop-and-deviation.json").write_text(history.to_json())


async def record_every_phase_kind(rig, name: str) -> None:  # type: ignore[no-untyped-def]
    """Every phase kind, phase-started events, a refused scan held by a deviation, an
    operator's hold and restart, release."""
    from tests.sample_plan import PICK_ASC, PLAN_KINDS
    from tests.workflows.rig import SUPERVISOR
    from tests.workflows.test_phase_kinds import (
        MCC_2601,
        run_all_kinds,
        weigh_to_pick,
    )
    from workflows.messages import (
        DispositionUpdate,
        HoldRequest,
        ScanMaterialRequest,
        StateQuery,
    )

    handle = await rig.start(batch_id="history-every-phase-kind", plan=PLAN_KINDS,
                             connected=True)
    await handle.execute_update(BatchWorkflow.request_hold,
                                HoldRequest("Checking the room", sign(OPERATOR, "held")))
    await handle.execute_update(BatchWorkflow.restart, StateChangeRequest(
        sign(SUPERVISOR, "restarted"), "Room checked"))
    await weigh_to_pick(handle, rig)
    with pytest.raises(WorkflowUpdateFailedError):  # the wrong material is refused
        await handle.execute_update(BatchWorkflow.scan_material,
                                    ScanMaterialRequest(PICK_ASC, MCC_2601, OPERATOR))
    view = await handle.query(BatchWorkflow.view, StateQuery())
    await handle.execute_update(BatchWorkflow.disposition, DispositionUpdate(
        next(iter(view.open_deviations)), "accept", "Put back", sign(QA_USER, "reviewed")))
    await run_all_kinds(handle, rig, weighed=True)
    await handle.execute_update(BatchWorkflow.release, ReleaseRequest(sign(QA_USER, "released")))
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
