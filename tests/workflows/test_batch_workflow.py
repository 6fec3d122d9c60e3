"""The batch workflow on a real local Temporal server, with the real record store
(SQLite) and fake instruments injected through the activities' constructors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from store.audit import verify_chain
from store.models import Signature, StepRecord
from tests.sample_plan import PLAN, PLAN_VERIFIED
from tests.workflows.rig import (
    OPERATOR,
    OTHER_OPERATOR,
    QA_AND_OPERATOR,
    QA_USER,
    SUPERVISOR,
    complete_when_mixed,
    run_to_complete,
    sign,
    wait_for_state,
    weigh_and_complete,
)
from workflows.batch import BatchWorkflow
from workflows.messages import (
    CaptureWeightRequest,
    CommentRequest,
    CompleteStepRequest,
    CorrectValueRequest,
    ReleaseRequest,
    Signer,
    StateChangeRequest,
    StateQuery,
    VerifyStepRequest,
)


async def refused(handle: WorkflowHandle, update, arg) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, arg)
    return info.value.cause.type  # type: ignore[union-attr]


class TestHappyPath:
    async def test_batch_runs_from_plan_to_release_with_one_signed_record_per_step(self, rig):
        handle = await rig.start()
        await run_to_complete(handle, rig)
        view = await handle.query(BatchWorkflow.view, StateQuery())
        assert view.state == "complete" and view.current_step_id is None
        assert [(a.action, a.roles) for a in view.awaiting] == [("release", ["qa"])]

        outcome = await handle.execute_update(BatchWorkflow.release,
                                              ReleaseRequest(sign(QA_USER, "released")))
        result = await handle.result()

        assert outcome.state == "released" and result.state == "released"
        assert result.report is not None and rig.reports.published == [handle.id]
        with Session(rig.store.engine) as session:
            records = session.exec(select(StepRecord).where(StepRecord.batch_id == handle.id))
            records = list(records)
            signatures = list(session.exec(select(Signature)))
            assert [r.step_id for r in records] == [s.step_id for s in PLAN.steps]
            assert all(r.result == "pass" for r in records)
            assert len(signatures) == len(PLAN.steps) + 1
            by_id = {s.id: s for s in signatures}
            assert all(rig.store.verify_step(r, by_id[r.signature_id]) for r in records)
            assert verify_chain(session).ok
        assert rig.mixer.starts == [(25, 180)]

    async def test_weight_is_recorded_with_the_scale_frames(self, rig):
        handle = await rig.start()
        await weigh_and_complete(handle, rig, "1199.99")
        record = rig.store.assemble_record(handle.id)
        step = record["steps"][0]
        assert step["values"]["value"] == "1199.99" and step["values"]["unit"] == "g"
        assert step["device"]["raw_frames"] == ["S S    1199.99 g"]
        assert step["device"]["serial"] == "FAKE-001"

    async def test_check_outside_limits_is_recorded_as_fail_for_review(self, rig):
        handle = await rig.start()
        await run_to_complete(handle, rig, lod="2.5")
        record = rig.store.assemble_record(handle.id)
        lod = next(s for s in record["steps"] if s["step_id"] == "b/b/lod")
        assert lod["result"] == "fail" and lod["values"]["value"] == "2.5"


class TestOperatorActionsAreValidated:
    async def test_wrong_step_is_refused_before_it_is_recorded(self, rig):
        handle = await rig.start()
        kind = await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest("b/b/lod", sign(OPERATOR), entered_value="1"))
        assert kind == "WrongStep"
        assert rig.store.assemble_record(handle.id)["steps"] == []

    async def test_weigh_step_needs_a_reading_first(self, rig):
        handle = await rig.start()
        kind = await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest("d/w/weigh-a", sign(OPERATOR)))
        assert kind == "MissingReading"

    async def test_out_of_tolerance_weight_cannot_be_signed(self, rig):
        handle = await rig.start()
        rig.scale.grams = Decimal("1300.00")
        reading = await handle.execute_update(BatchWorkflow.capture_weight,
                                              CaptureWeightRequest("d/w/weigh-a", OPERATOR))
        assert reading.in_tolerance is False
        kind = await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest("d/w/weigh-a", sign(OPERATOR)))
        assert kind == "OutOfTolerance"

    async def test_unstable_scale_fails_the_capture_with_the_scale_message(self, rig):
        handle = await rig.start()
        rig.scale.unstable = True
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(BatchWorkflow.capture_weight,
                                        CaptureWeightRequest("d/w/weigh-a", OPERATOR))
        assert "did not settle" in str(info.value.cause)

    async def test_user_without_operator_role_is_refused(self, rig):
        handle = await rig.start()
        kind = await refused(handle, BatchWorkflow.capture_weight,
                             CaptureWeightRequest("d/w/weigh-a", QA_USER))
        assert kind == "NotPermitted"

    async def test_non_number_check_value_is_refused(self, rig):
        handle = await rig.start()
        await weigh_and_complete(handle, rig, "1200.00")
        await complete_when_mixed(handle)
        for bad in ("abc", "NaN", "", "Infinity"):
            kind = await refused(handle, BatchWorkflow.complete_step,
                                 CompleteStepRequest("b/b/lod", sign(OPERATOR), entered_value=bad))
            assert kind == "BadValue"

    async def test_release_before_completion_is_refused(self, rig):
        handle = await rig.start()
        kind = await refused(handle, BatchWorkflow.release,
                             ReleaseRequest(sign(QA_USER, "released")))
        assert kind == "WrongState"

    async def test_performer_cannot_release_their_own_batch(self, rig):
        handle = await rig.start()
        await run_to_complete(handle, rig)
        kind = await refused(handle, BatchWorkflow.release,
                             ReleaseRequest(sign(QA_AND_OPERATOR, "released")))
        assert kind == "NotPermitted"

    async def test_rejection_needs_a_reason(self, rig):
        handle = await rig.start()
        await run_to_complete(handle, rig)
        kind = await refused(handle, BatchWorkflow.release,
                             ReleaseRequest(sign(QA_USER, "rejected")))
        assert kind == "Missing"


class TestRetriesApplyOnce:
    async def test_same_update_id_twice_records_one_step(self, rig):
        handle = await rig.start()
        rig.scale.grams = Decimal("1200.00")
        await handle.execute_update(BatchWorkflow.capture_weight,
                                    CaptureWeightRequest("d/w/weigh-a", OPERATOR))
        req = CompleteStepRequest("d/w/weigh-a", sign(OPERATOR))
        first = await handle.execute_update(BatchWorkflow.complete_step, req, id="req-1")
        again = await handle.execute_update(BatchWorkflow.complete_step, req, id="req-1")
        assert first == again
        assert len(rig.store.assemble_record(handle.id)["steps"]) == 1

    async def test_a_new_request_for_a_done_step_is_a_duplicate(self, rig):
        handle = await rig.start()
        await weigh_and_complete(handle, rig, "1200.00")
        kind = await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest("d/w/weigh-a", sign(OTHER_OPERATOR)))
        assert kind == "Duplicate"


def change(signer: Signer, meaning: str, reason: str = "Line stopped for cleaning") -> (
    StateChangeRequest
):
    return StateChangeRequest(sign(signer, meaning), reason)


class TestHoldRestartAbort:
    async def test_held_batch_refuses_steps_until_restarted(self, rig):
        handle = await rig.start()
        held = await handle.execute_update(BatchWorkflow.hold, change(SUPERVISOR, "held"))
        assert held.state == "held"
        view = await handle.query(BatchWorkflow.view, StateQuery())
        assert view.state == "held" and view.hold_reason == "Line stopped for cleaning"
        kind = await refused(handle, BatchWorkflow.capture_weight,
                             CaptureWeightRequest("d/w/weigh-a", OPERATOR))
        assert kind == "WrongState"
        await handle.execute_update(BatchWorkflow.restart, change(SUPERVISOR, "restarted"))
        await weigh_and_complete(handle, rig, "1200.00")
        assert rig.store.get_batch(handle.id).state == "running"

    async def test_hold_needs_a_reason_and_the_right_role(self, rig):
        handle = await rig.start()
        assert await refused(handle, BatchWorkflow.hold, change(SUPERVISOR, "held", " ")) == (
            "Missing"
        )
        assert await refused(handle, BatchWorkflow.hold, change(OPERATOR, "held")) == (
            "NotPermitted"
        )
        assert await refused(handle, BatchWorkflow.restart,
                             change(SUPERVISOR, "restarted")) == "WrongState"

    async def test_abort_ends_the_batch_with_a_signed_record(self, rig):
        handle = await rig.start()
        await weigh_and_complete(handle, rig, "1200.00")
        await handle.execute_update(BatchWorkflow.abort, change(QA_USER, "aborted", "Spill"))
        result = await handle.result()
        assert result.state == "aborted" and result.report is not None
        assert rig.store.get_batch(handle.id).state == "aborted"
        with pytest.raises(RPCError, match="completed"):  # the workflow has ended
            await handle.execute_update(BatchWorkflow.comment,
                                        CommentRequest("", OPERATOR, "late note"))

    async def test_mixer_failure_holds_the_batch_and_restart_runs_the_mix_again(self, rig):
        rig.mixer.stops_midway = True
        handle = await rig.start()
        await weigh_and_complete(handle, rig, "1200.00")
        view = await wait_for_state(handle, "held")
        assert "stopped before the mix was complete" in view.hold_reason
        rig.mixer.stops_midway = False
        await handle.execute_update(BatchWorkflow.restart,
                                    change(SUPERVISOR, "restarted", "Mixer reset"))
        await complete_when_mixed(handle)
        assert len(rig.mixer.starts) == 2


class TestComments:
    async def test_comment_is_recorded_in_the_audit_trail(self, rig):
        handle = await rig.start()
        await handle.execute_update(BatchWorkflow.comment,
                                    CommentRequest("d/w/weigh-a", OPERATOR, "Bag torn; used new"))
        audit = rig.store.assemble_record(handle.id)["audit"]
        assert any(a["action"] == "comment.added" and "Bag torn" in a["detail"] for a in audit)

    async def test_empty_comment_is_refused(self, rig):
        handle = await rig.start()
        kind = await refused(handle, BatchWorkflow.comment, CommentRequest("", OPERATOR, "  "))
        assert kind == "BadValue"


class TestVerificationAndCorrection:
    async def test_four_eyes_step_needs_a_second_person(self, rig):
        handle = await rig.start(plan=PLAN_VERIFIED)
        view = await handle.query(BatchWorkflow.view, StateQuery())
        assert [(a.action, a.step_id) for a in view.awaiting] == [("weigh", "d/w/weigh-a")]
        await weigh_and_complete(handle, rig, "1200.00")
        await complete_when_mixed(handle)
        await handle.execute_update(BatchWorkflow.complete_step,
                                    CompleteStepRequest("b/b/lod", sign(OPERATOR), "1.1"))
        kind = await refused(handle, BatchWorkflow.complete_step,
                             CompleteStepRequest("b/b/discharge", sign(OPERATOR)))
        assert kind == "WrongStep"  # the batch waits for the verification
        view = await handle.query(BatchWorkflow.view, StateQuery())
        assert [(a.action, a.roles) for a in view.awaiting] == [("verify", ["operator"])]
        kind = await refused(handle, BatchWorkflow.verify_step,
                             VerifyStepRequest("b/b/lod", sign(OPERATOR, "verified")))
        assert kind == "NotPermitted"  # the performer cannot verify their own step
        await handle.execute_update(BatchWorkflow.verify_step,
                                    VerifyStepRequest("b/b/lod", sign(OTHER_OPERATOR, "verified")))
        await handle.execute_update(BatchWorkflow.complete_step,
                                    CompleteStepRequest("b/b/discharge", sign(OPERATOR)))
        lod = next(s for s in rig.store.assemble_record(handle.id)["steps"]
                   if s["step_id"] == "b/b/lod")
        assert lod["verification"]["username"] == "op2"

    async def test_correction_keeps_the_original_and_needs_a_reason(self, rig):
        handle = await rig.start()
        await run_to_complete(handle, rig, lod="2.5")
        kind = await refused(handle, BatchWorkflow.correct_value,
                             CorrectValueRequest("b/b/lod", "1.5", " ", sign(OPERATOR)))
        assert kind == "Missing"
        outcome = await handle.execute_update(
            BatchWorkflow.correct_value,
            CorrectValueRequest("b/b/lod", "1.5", "Transcription error: 1.5 on the printout",
                                sign(OPERATOR)),
        )
        assert outcome.result == "pass"
        lod = next(s for s in rig.store.assemble_record(handle.id)["steps"]
                   if s["step_id"] == "b/b/lod")
        assert lod["values"]["value"] == "1.5" and lod["version"] == 2
        assert lod["corrections"][0]["values"]["value"] == "2.5"
        assert lod["correction_reason"].startswith("Transcription error")
        assert lod["signature_verified"] and lod["corrections"][0]["signature_verified"]

    async def test_device_readings_cannot_be_corrected_by_hand(self, rig):
        handle = await rig.start()
        await weigh_and_complete(handle, rig, "1200.00")
        kind = await refused(handle, BatchWorkflow.correct_value,
                             CorrectValueRequest("d/w/weigh-a", "1100", "typo", sign(OPERATOR)))
        assert kind == "WrongStep"
