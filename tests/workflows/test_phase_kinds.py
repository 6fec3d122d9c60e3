"""Every phase kind of the extended plan contract on a real Temporal server: typed entries
with alert and action limits, a calculation that sets a weighing's target, a GS1-verified
pick issued once, PLC set and read through the equipment's tag map, a label file, and a
sign-off by the role the recipe names."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

from sqlmodel import Session, select

from store.models import AuditEvent
from tests.sample_plan import (
    APPEARANCE,
    ASSAY,
    CLEARANCE,
    HEAT,
    LABEL_STEP,
    PICK_ASC,
    PLAN_KINDS,
    QTY,
    SIEVED,
    TEMP,
    WEIGH_ASC,
)
from tests.workflows.rig import OPERATOR, QA_USER, SUPERVISOR, sign, wait_for_state
from tests.workflows.test_batch_workflow import refused
from wms.builtin import BuiltinWms
from wms.messages import GenealogyQuery
from workflows.batch import BatchWorkflow
from workflows.messages import (
    CaptureWeightRequest,
    CompleteStepRequest,
    DispositionUpdate,
    ReleaseRequest,
    ScanMaterialRequest,
    StateQuery,
)

ASC_2601 = "(01)07601234560013(10)ASC-2601(17)280630"
MCC_2601 = "(01)07601234560020(10)MCC-2601(17)300131"
ASC_EXPIRED = "(01)07601234560013(10)ASC-2401(17)251231"
ASC_HELD = "(01)07601234560013(10)ASC-2603(17)280930"


async def complete(handle, step_id: str, value: str | None = None, signer=OPERATOR,  # type: ignore[no-untyped-def]
                   meaning: str = "performed"):
    return await handle.execute_update(
        BatchWorkflow.complete_step, CompleteStepRequest(step_id, sign(signer, meaning), value))


async def view(handle):  # type: ignore[no-untyped-def]
    return await handle.query(BatchWorkflow.view, StateQuery())


async def until(handle, predicate, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        current = await view(handle)
        if predicate(current):
            return current
        await asyncio.sleep(0.1)
    raise AssertionError("the batch never got there")


def step_of(current, step_id: str):  # type: ignore[no-untyped-def]
    return next(s for s in current.steps if s.step_id == step_id)


async def weigh_to_pick(handle, rig, assay: str = "97.5") -> None:  # type: ignore[no-untyped-def]
    await complete(handle, ASSAY, assay)
    current = await until(handle, lambda v: WEIGH_ASC in v.active_step_ids)
    rig.scale.grams = Decimal(step_of(current, WEIGH_ASC).target)
    await handle.execute_update(BatchWorkflow.capture_weight,
                                CaptureWeightRequest(WEIGH_ASC, OPERATOR))
    await complete(handle, WEIGH_ASC)


async def run_all_kinds(handle, rig, weighed: bool = False) -> None:  # type: ignore[no-untyped-def]
    if not weighed:
        await weigh_to_pick(handle, rig)
    await handle.execute_update(BatchWorkflow.scan_material,
                                ScanMaterialRequest(PICK_ASC, ASC_2601, OPERATOR))
    await complete(handle, PICK_ASC)
    await until(handle, lambda v: APPEARANCE in v.active_step_ids)
    await complete(handle, APPEARANCE, "white crystalline powder")
    await complete(handle, SIEVED, "yes")
    await until(handle, lambda v: CLEARANCE in v.active_step_ids)
    await complete(handle, CLEARANCE, signer=SUPERVISOR, meaning="approved")


class TestEveryKindRunsToRelease:
    async def test_plan_with_every_kind_is_recorded_step_by_step(self, rig):
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        await run_all_kinds(handle, rig)
        await handle.execute_update(BatchWorkflow.release,
                                    ReleaseRequest(sign(QA_USER, "released")))
        assert (await handle.result()).state == "released"

        steps = {s["step_id"]: s for s in rig.store.assemble_record(handle.id)["steps"]}
        assert [s.step_id for s in PLAN_KINDS.steps] == list(steps)
        # The assay is inside the action limits but outside the alert limits: flagged.
        assert steps[ASSAY]["result"] == "pass" and "alert" in steps[ASSAY]["values"]
        # 1200 g * 100 / 97.5 % = 1230.769... rounded to 2 decimals, and the weighing's
        # target and 1 % limits follow it.
        assert steps[QTY]["values"]["value"] == "1230.77"
        assert steps[WEIGH_ASC]["values"]["value"] == "1230.77"
        assert steps[PICK_ASC]["values"]["lot"] == "ASC-2601"
        assert steps[HEAT]["values"]["value"] == "72.5"
        assert rig.plc.writes == [("temperature_setpoint_c", 72.5)]
        assert steps[TEMP]["values"]["value"] == "71.8" and steps[TEMP]["result"] == "pass"
        assert steps[APPEARANCE]["values"]["value"] == "white crystalline powder"
        assert steps[SIEVED]["values"]["value"] == "true"
        assert steps[CLEARANCE]["signature"]["meaning"] == "approved"
        label = steps[LABEL_STEP]["values"]
        text = Path(label["path"]).read_text()
        assert text == f"{handle.id} T-700 1230.77 g"
        assert label["sha256"] == hashlib.sha256(text.encode()).hexdigest()

        links = BuiltinWms(rig.store.engine).backward(GenealogyQuery(handle.id)).links
        assert sum(Decimal(link.quantity) for link in links) == Decimal("1.73077")
        with Session(rig.store.engine) as session:
            actions = [e.action for e in session.exec(
                select(AuditEvent).where(AuditEvent.subject == handle.id))]
        assert actions.count("phase.started") == len(PLAN_KINDS.steps)
        assert "value.alert" in actions

    async def test_the_view_shows_the_calculated_target_and_the_pending_signature(self, rig):
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        current = await view(handle)
        assert [(a.action, a.meaning) for a in current.pending_signatures] == [
            ("perform", "performed")]
        await complete(handle, ASSAY, "100")
        current = await until(handle, lambda v: WEIGH_ASC in v.active_step_ids)
        weigh = step_of(current, WEIGH_ASC)
        assert (weigh.target, weigh.low, weigh.high) == ("1200.00", "1188.00", "1212.00")
        rig.scale.grams = Decimal("1213.00")  # inside the formula's band +1 %, not around 1200
        reading = await handle.execute_update(BatchWorkflow.capture_weight,
                                              CaptureWeightRequest(WEIGH_ASC, OPERATOR))
        assert reading.in_tolerance is False


class TestEntriesAreTyped:
    async def test_action_limit_failure_is_refused_or_recorded_by_type(self, rig):
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        assert await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest(ASSAY, sign(OPERATOR), "ninety")) == "BadValue"
        await weigh_to_pick(handle, rig, assay="99")
        await handle.execute_update(BatchWorkflow.scan_material,
                                    ScanMaterialRequest(PICK_ASC, ASC_2601, OPERATOR))
        await complete(handle, PICK_ASC)
        await until(handle, lambda v: APPEARANCE in v.active_step_ids)
        assert await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest(APPEARANCE, sign(OPERATOR), "  ")) == "BadValue"
        await complete(handle, APPEARANCE, "white")
        assert await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest(SIEVED, sign(OPERATOR), "maybe")) == "BadValue"


class TestPicksAreVerifiedByTheirLabel:
    async def test_wrong_expired_and_held_lots_are_refused_and_a_deviation_holds_the_pick(
        self, rig
    ):
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        await weigh_to_pick(handle, rig)
        assert await refused(handle, BatchWorkflow.scan_material,
                             ScanMaterialRequest(PICK_ASC, MCC_2601, OPERATOR)) == "WrongMaterial"
        current = await view(handle)
        (deviation_id, held_step), = current.open_deviations.items()
        assert held_step == PICK_ASC
        # Held for QA: no second scan until the disposition.
        assert await refused(handle, BatchWorkflow.scan_material,
                             ScanMaterialRequest(PICK_ASC, ASC_2601, OPERATOR)) == (
            "AwaitingDisposition")
        await handle.execute_update(BatchWorkflow.disposition, DispositionUpdate(
            deviation_id, "accept", "Container put back", sign(QA_USER, "reviewed")))
        for label, kind in ((ASC_EXPIRED, "LotExpired"), (ASC_HELD, "LotOnHold")):
            assert await refused(handle, BatchWorkflow.scan_material,
                                 ScanMaterialRequest(PICK_ASC, label, OPERATOR)) == kind
            current = await view(handle)
            await handle.execute_update(BatchWorkflow.disposition, DispositionUpdate(
                next(iter(current.open_deviations)), "accept", "Set aside",
                sign(QA_USER, "reviewed")))
        assert await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest(PICK_ASC, sign(OPERATOR))) == "MissingScan"
        await handle.execute_update(BatchWorkflow.scan_material,
                                    ScanMaterialRequest(PICK_ASC, ASC_2601, OPERATOR))
        await complete(handle, PICK_ASC)
        pick = next(s for s in rig.store.assemble_record(handle.id)["steps"]
                    if s["step_id"] == PICK_ASC)
        assert pick["values"]["lot"] == "ASC-2601" and pick["values"]["value"] == "0.500"


class TestSignOff:
    async def test_only_the_named_role_signs_with_the_named_meaning(self, rig):
        handle = await rig.start(plan=PLAN_KINDS, connected=True)
        await run_all_kinds_until_clearance(handle, rig)
        assert await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest(CLEARANCE, sign(OPERATOR, "approved"))) == (
            "NotPermitted")
        kind = await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest(CLEARANCE, sign(SUPERVISOR, "performed")))
        assert kind is None or kind == ""  # the meaning is wrong: refused, no type
        current = await view(handle)
        assert [(a.action, a.roles, a.meaning) for a in current.pending_signatures] == [
            ("perform", ["supervisor"], "approved")]
        await complete(handle, CLEARANCE, signer=SUPERVISOR, meaning="approved")
        await wait_for_state(handle, "complete")


async def run_all_kinds_until_clearance(handle, rig) -> None:  # type: ignore[no-untyped-def]
    await weigh_to_pick(handle, rig)
    await handle.execute_update(BatchWorkflow.scan_material,
                                ScanMaterialRequest(PICK_ASC, ASC_2601, OPERATOR))
    await complete(handle, PICK_ASC)
    await until(handle, lambda v: APPEARANCE in v.active_step_ids)
    await complete(handle, APPEARANCE, "white")
    await complete(handle, SIEVED, "no")
    await until(handle, lambda v: CLEARANCE in v.active_step_ids)
