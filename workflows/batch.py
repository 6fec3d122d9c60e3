"""The batch: a durable interpreter of a compiled recipe plan.

Deterministic by construction: no I/O, no wall clock, no randomness. Everything
that touches the world (scales, PLCs, the record store, the PDF) is an activity
with a deliberate timeout and retry policy. Operator actions arrive as Updates
whose validators refuse a wrong action before it enters the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from qms.messages import (
        DISPOSITIONS,
        MINOR,
        REJECT,
        REWORK,
        DeviationRef,
        DispositionRequest,
        OpenDeviationRequest,
        OpenDeviations,
        OpenDeviationsQuery,
        deviation_key,
    )
    from recipes.expr import ExpressionError
    from recipes.plan import (
        CALC,
        CHECK,
        FAILED,
        GE,
        GT,
        IF,
        INSTRUCTION,
        LABEL,
        LE,
        LOOP,
        LT,
        MIX,
        ON_FAIL_ABORT,
        ON_FAIL_HOLD,
        ON_FAIL_WARN,
        PARALLEL,
        PASSED,
        PICK,
        PLC_READ,
        PLC_SET,
        SEQUENCE,
        SIGNOFF,
        STEP,
        TIMER,
        WEIGH,
        Condition,
        FlowNode,
        PlanStep,
        linear_flow,
    )
    from wms.messages import (
        Issued,
        IssueRequest,
        Reservation,
        ReserveRequest,
        ScanRequest,
        ScanResult,
        issue_key,
    )
    from workflows import phases
    from workflows.messages import (
        ABORT_MEANING,
        ABORTED,
        COMPLETE,
        HELD,
        HOLD_MEANING,
        OPERATOR,
        PERFORMED,
        QA,
        RECORDED_MEANING,
        REJECTED,
        REJECTED_MEANING,
        RELEASED,
        RELEASED_MEANING,
        RESTART_MEANING,
        REVIEWED,
        RUNNING,
        SUPERVISOR,
        VERIFIED,
        Awaiting,
        BatchEvent,
        BatchInput,
        BatchResult,
        BatchView,
        CaptureWeightRequest,
        CommentOutcome,
        CommentRequest,
        CompleteStepRequest,
        CorrectValueRequest,
        DispositionUpdate,
        EventRecorded,
        HoldRequest,
        LabelInput,
        LabelPrinted,
        MaterialScanned,
        MixInput,
        MixRun,
        PlcReadInput,
        PlcSetInput,
        PlcValue,
        ReadWeightInput,
        ReleaseOutcome,
        ReleaseRecordInput,
        ReleaseRequest,
        ReportInput,
        ReportRef,
        ResumeState,
        ScanMaterialRequest,
        SignatureIntent,
        Signer,
        StateChangeRecordInput,
        StateChangeRequest,
        StateQuery,
        StepOutcome,
        StepRecorded,
        StepRecordInput,
        StepView,
        VerificationRecordInput,
        VerifyStepRequest,
        WeightReading,
    )

# Record writes must land: retry until the store is back, within a bounded window.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["RecordError", "BatchConflict"],
)
# Record, WMS and QMS calls take milliseconds; the worker heartbeats for them while they
# run (activities/keepalive.py), so one whose worker died is retried after
# SHORT_CALL_HEARTBEAT, not after its start-to-close. Start-to-close stays above the record
# store's own lock wait (SQLite busy timeout, PostgreSQL lock_timeout: 30 s, store/db.py):
# an attempt waiting on a busy database ends by itself (committed, or a retryable
# "locked") before the server would abandon it and start a second one beside it.
SHORT_CALL_HEARTBEAT = timedelta(seconds=5)
RECORD_TIMEOUTS = {
    "start_to_close_timeout": timedelta(seconds=60),
    "schedule_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": SHORT_CALL_HEARTBEAT,
}
# An operator is waiting at the scale: fail fast and let them try again.
SCALE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_attempts=3,
    non_retryable_error_types=["ScaleUnstable", "ScaleOverload", "ScaleUnderload", "WrongUnit"],
)
# A setpoint write or a tag read is idempotent: retry a few times, then the recipe's
# on_fail decides (a person is needed).
PLC_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
)
PLC_TIMEOUTS = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=10),
}
# A label file on the worker's disk: a full disk or a permission problem needs a person.
LABEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=["LabelConflict"],
)
# Deviations of this kind return the step to the operator (or the device) once QA
# accepted them: the failure was the device's or the label's, not the material's.
RETRY_KINDS = ("device-failure", "scan-refused")
SYSTEM_SIGNER = Signer(user_id=0, username="system", full_name="ebr (recorded automatically)")
# A mix in progress outlives a worker crash: the retry resumes watching the PLC.
MIX_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# A broken signing key or TSA leaves the record "released, signature pending" until it is
# fixed: keep trying for a month rather than give up on publishing.
# WMS and QMS answer business refusals at once (non-retryable); only outages retry.
SYSTEM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
SYSTEM_TIMEOUTS = {
    "start_to_close_timeout": timedelta(seconds=60),
    "heartbeat_timeout": SHORT_CALL_HEARTBEAT,
}
# How long a device activity may wait for its station's worker to pick it up.
STATION_START_TIMEOUT = timedelta(seconds=30)
REPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["RecordNotRenderable", "RecordError"],
)


@workflow.defn(name="Batch")
class BatchWorkflow:
    @workflow.init
    def __init__(self, inp: BatchInput) -> None:
        self.inp = inp
        self.plan = inp.plan
        self.flow = self.plan.flow or linear_flow(self.plan.steps)
        # A long batch continues as new between these top-level elements.
        self.top = self.flow.children if self.flow.kind == SEQUENCE else [self.flow]
        resume = inp.resume
        # Holds: when the current one began, and the seconds of those already ended.
        self.held_since = resume.held_since if resume else ""
        self.held_total_s = resume.held_total_s if resume else 0
        self._state = resume.state if resume else RUNNING
        self.position = resume.position if resume else 0
        # Steps waiting for people or devices now, in the order they became active. The
        # first ones are open from the start, so an operator can act while the batch's
        # start is still being recorded.
        self.active: list[str] = (
            self._entry(self.top[self.position]) if self.position < len(self.top) else []
        )
        self.iterations: dict[str, int] = {}
        self.views = {
            s.step_id: StepView(
                step_id=s.step_id, kind=s.kind, title=s.title, status="pending",
                verify_role=s.verify_role,
            )
            for s in self.plan.steps
        }
        self.performers: set[int] = set(resume.performers) if resume else set()
        self.step_performer: dict[str, int] = dict(resume.step_performer) if resume else {}
        self.step_hashes: dict[str, str] = dict(resume.step_hashes) if resume else {}
        if resume:
            self.views.update({v.step_id: v for v in resume.views})
            self.iterations.update(resume.iterations)
        self.updates = 0
        self.readings: dict[str, WeightReading] = {}
        self.mix_runs: dict[str, MixRun] = {}
        self.mixing: set[str] = set()
        self.started: dict[str, datetime] = {}
        self.deviations: dict[str, str] = {}  # open deviation id -> the step it holds
        self.retry_after: set[str] = set()  # deviations whose acceptance means "try again"
        self.timer_deviations: dict[str, str] = {}  # timer step -> deviation of its maximum
        self.scans: dict[str, MaterialScanned] = {}
        self.background: list[asyncio.Task[None]] = []
        self.hold_reason = resume.hold_reason if resume else ""
        self.report: ReportRef | None = None
        # One operator action at a time: a handler awaits activities, and a second
        # update validated meanwhile must see the state the first one leaves.
        self.lock = asyncio.Lock()

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, new: str) -> None:
        """Every state change passes here, so hold time is measured in one place."""
        if new == HELD and self._state != HELD:
            self.held_since = workflow.now().isoformat()
        elif new != HELD and self._state == HELD and self.held_since:
            began = datetime.fromisoformat(self.held_since)
            self.held_total_s += int((workflow.now() - began).total_seconds())
            self.held_since = ""
        self._state = new

    # --- the run -----------------------------------------------------------

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchResult:
        # Recorded alongside, not before, the first steps: an operator who completes the
        # first step while this write is still under way must find the next step open.
        if inp.resume is None:
            started = self._event("batch.started", "system", {"recipe": self.plan.recipe_id})
        else:
            # Recorded by the new run, so the old one hands over within one workflow task.
            started = self._event(f"batch.continued/{inp.resume.generation}", "system",
                                  {"position": str(inp.resume.position)})
        self.recording = asyncio.create_task(started)
        first = self.position
        for position in range(first, len(self.top)):
            if position > first and self._history_is_long():
                await self._continue_as_new(position)
            self.position = position
            await self._run_node(self.top[position])
            if self.state == ABORTED:
                break
        await self.recording
        await self._background_written()
        if self.state != ABORTED:
            self.state = COMPLETE
            await self._event("batch.completed", "system", {})
            await workflow.wait_condition(lambda: self.state in (RELEASED, REJECTED, ABORTED))
        # Every batch that ends, released, rejected or aborted, gets its signed record.
        self.report = await workflow.execute_activity(
            "publish_report",
            ReportInput(batch_id=inp.batch_id),
            result_type=ReportRef,
            # A 500-phase record is minutes of layout on a busy worker; a shorter bound
            # would abandon a render that is about to finish and start it again.
            start_to_close_timeout=timedelta(minutes=30),
            schedule_to_close_timeout=timedelta(days=30),
            retry_policy=REPORT_RETRY,
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BatchResult(batch_id=inp.batch_id, state=self.state, report=self.report)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        # Temporal also caps a run at 2,000 updates; leave room for the ones in flight.
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self.inp.history_budget
            or self.updates > 1500
        )

    async def _continue_as_new(self, position: int) -> None:
        """Carry what the batch knows into a fresh run between two procedure elements."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.recording  # a run hands over only what it has written
        await self._background_written()
        generation = self.inp.resume.generation + 1 if self.inp.resume else 1
        workflow.continue_as_new(
            replace(
                self.inp,
                resume=ResumeState(
                    position=position,
                    generation=generation,
                    views=list(self.views.values()),
                    performers=sorted(self.performers),
                    step_performer=self.step_performer,
                    step_hashes=self.step_hashes,
                    iterations=self.iterations,
                    state=self.state,
                    hold_reason=self.hold_reason,
                    held_since=self.held_since,
                    held_total_s=self.held_total_s,
                ),
            )
        )

    async def _run_node(self, node: FlowNode) -> None:
        """Interpret the procedure tree; every branch stops as soon as the batch is aborted."""
        if self.state == ABORTED:
            return
        if node.kind == STEP:
            await self._run_step(self._step(node.step_id or ""))
        elif node.kind == SEQUENCE:
            await self._run_all(node.children)
        elif node.kind == PARALLEL:
            await asyncio.gather(*(self._run_node(child) for child in node.children))
        elif node.kind == IF:
            assert node.condition is not None
            await self._run_all(node.children if self._holds(node.condition) else node.otherwise)
        elif node.kind == LOOP:
            await self._run_loop(node)
        else:
            raise ApplicationError(f"Unknown procedure element '{node.kind}' in the plan.")

    async def _run_all(self, nodes: list[FlowNode]) -> None:
        for child in nodes:
            await self._run_node(child)

    async def _run_step(self, step: PlanStep) -> None:
        if step.step_id not in self.active:
            self.active.append(step.step_id)
        view = self.views[step.step_id]
        # An entry step may already have been done while the run was still starting up.
        if view.status == "pending":
            view.status = "active"
        view.active_since = view.active_since or workflow.now().isoformat()
        self._show_due(step)
        # Histories recorded before phase-started events existed replay without them.
        if workflow.patched("phase-started-event"):
            self._in_background(self._phase_started(step))
        if step.kind == TIMER:
            self.started.setdefault(step.step_id, workflow.now())
            if step.max_duration_s is not None:
                await self._watch_max_time(step)
        if step.kind == MIX:
            await self._mix(step)
        if step.kind in (PLC_SET, PLC_READ, CALC, LABEL):
            await self._run_automatic(step)
        await workflow.wait_condition(
            lambda: self.views[step.step_id].status == "done" or self.state == ABORTED
        )
        self.active.remove(step.step_id)

    async def _watch_max_time(self, step: PlanStep) -> None:
        """A hold that outlasts its maximum is an excursion: record it the moment it happens."""
        elapsed = (workflow.now() - self.started[step.step_id]).total_seconds()
        remaining = max(0.0, (step.max_duration_s or 0) - elapsed)
        try:
            await workflow.wait_condition(
                lambda: self.views[step.step_id].status == "done" or self.state == ABORTED,
                timeout=timedelta(seconds=remaining),
            )
        except TimeoutError:
            instance = self._instance(step.step_id)
            await self._event(
                f"timer.exceeded/{instance}", "system",
                {"step": step.step_id, "max_s": str(step.max_duration_s)},
            )
            if self.inp.quality and workflow.patched("timer-max-deviation"):
                what = f"{step.title}: hold time passed its maximum of {step.max_duration_s} s"
                ref = await self._open_deviation(
                    step, "timer-exceeded", what, f"{what}; noticed by the batch.",
                    MINOR if step.on_fail != ON_FAIL_ABORT else "critical",
                )
                self.timer_deviations[step.step_id] = ref.deviation_id

    def _in_background(self, write: Coroutine[Any, Any, None]) -> None:
        """A record write the procedure need not wait for (an operator may already be
        completing the step); every one is awaited before the run hands over or ends."""
        self.background.append(asyncio.create_task(write))

    async def _background_written(self) -> None:
        while self.background:
            await self.background.pop(0)

    async def _phase_started(self, step: PlanStep) -> None:
        instance = self._instance(step.step_id)
        detail = {"step": step.step_id, "instance": instance, "kind": step.kind}
        if step.equipment_role and step.equipment_role in self.inp.equipment:
            detail["equipment"] = self.inp.equipment[step.equipment_role]
        key = f"{self.inp.batch_id}/{instance}/phase.started"
        if not workflow.patched("phase-started-local"):
            await self._event("phase.started", "system", detail, key=key)
            return
        # A local activity: one marker in the history instead of three activity events and
        # a workflow task of their own, for a write that is idempotent on its key (if the
        # worker dies before the task completes, the new one writes it again, harmlessly).
        await workflow.execute_local_activity(
            "record_event",
            self._batch_event("phase.started", "system", detail, key),
            retry_policy=RECORD_RETRY,
            start_to_close_timeout=RECORD_TIMEOUTS["start_to_close_timeout"],
            schedule_to_close_timeout=RECORD_TIMEOUTS["schedule_to_close_timeout"],
        )

    def _show_due(self, step: PlanStep) -> None:
        """Put a WEIGH or PICK step's quantity due on its view (a CALC result may set it)."""
        if step.material is None:
            return
        view = self.views[step.step_id]
        try:
            due = self._due(step)
        except ApplicationError:
            return  # the calculation has no result yet; the view shows none
        if due is not None:
            view.target, view.low, view.high = due.target, due.low, due.high

    def _due(self, step: PlanStep) -> phases.Due | None:
        computed = self.views[step.target_from].value if step.target_from in self.views else None
        return phases.due(step, computed)

    def _entry(self, node: FlowNode) -> list[str]:
        """The steps a node starts with (conditional branches open only when reached)."""
        if node.kind == STEP:
            return [node.step_id or ""]
        if node.kind == PARALLEL:
            return [s for child in node.children for s in self._entry(child)]
        if node.kind in (SEQUENCE, LOOP) and node.children:
            return self._entry(node.children[0])
        return []

    async def _run_loop(self, node: FlowNode) -> None:
        """Repeat the body until its condition holds; running out of tries holds the batch."""
        assert node.condition is not None
        for iteration in range(1, node.max_iterations + 1):
            if iteration > 1:
                self._reset(node.children, iteration)
            await self._run_all(node.children)
            if self.state == ABORTED or self._holds(node.condition):
                return
        self.state = HELD
        self.hold_reason = (
            f"{node.condition.step_id} still does not meet its condition after "
            f"{node.max_iterations} tries: QA or a supervisor must decide (restart or abort)."
        )
        await self._event(f"loop.exhausted/{node.condition.step_id}", "system",
                          {"reason": self.hold_reason})
        await workflow.wait_condition(lambda: self.state != HELD)

    def _reset(self, nodes: list[FlowNode], iteration: int) -> None:
        """Make every step under these nodes runnable again as its next instance."""
        for node in nodes:
            if node.step_id:
                step = self._step(node.step_id)
                self.iterations[step.step_id] = iteration
                self.views[step.step_id] = StepView(
                    step_id=step.step_id, kind=step.kind, title=step.title, status="pending",
                    verify_role=step.verify_role,
                )
                self.readings.pop(step.step_id, None)
                self.scans.pop(step.step_id, None)
                self.mix_runs.pop(step.step_id, None)
                self.started.pop(step.step_id, None)
            self._reset(node.children + node.otherwise, iteration)

    def _holds(self, condition: Condition) -> bool:
        view = self.views.get(condition.step_id)
        if view is None or view.status != "done":
            return False
        if condition.op == PASSED:
            return view.result == "pass"
        if condition.op == FAILED:
            return view.result == "fail"
        value, limit = phases.number(view.value), phases.number(condition.value)
        if value is None or limit is None:
            return False
        return {LT: value < limit, LE: value <= limit, GT: value > limit, GE: value >= limit}[
            condition.op
        ]

    def _instance(self, step_id: str) -> str:
        """The record id of a step's current run: repeats in a loop get #2, #3…"""
        n = self.iterations.get(step_id, 1)
        return step_id if n == 1 else f"{step_id}#{n}"

    async def _mix(self, step: PlanStep) -> None:
        """Run the mix; a device failure holds the batch until a signed restart or abort."""
        while self.state != ABORTED:
            self.mixing.add(step.step_id)
            run = self._start_mix(step)
            await workflow.wait_condition(lambda r=run: r.done() or self.state == ABORTED)
            self.mixing.discard(step.step_id)
            if not run.done():
                run.cancel()
                return
            try:
                self.mix_runs[step.step_id] = run.result()
                return
            except ActivityError as err:
                if step.on_fail != ON_FAIL_WARN and workflow.patched("device-failure-policy"):
                    await self._device_failed(step, _cause(err), operator_retries=False)
                    await self._await_retry(step)
                    continue
                self.state, self.hold_reason = HELD, _cause(err)
                await self._event(f"mix.failed/{workflow.info().get_current_history_length()}",
                                  "system", {"step": step.step_id, "error": self.hold_reason})
                await workflow.wait_condition(lambda: self.state != HELD)

    def _start_mix(self, step: PlanStep) -> workflow.ActivityHandle[MixRun]:
        duration = step.duration_s or 0
        return workflow.start_activity(
            "run_mix",
            MixInput(
                batch_id=self.inp.batch_id,
                step_id=self._instance(step.step_id),
                equipment_id=self._equipment(step),
                speed_rpm=step.speed_rpm or 0,
                duration_s=duration,
            ),
            result_type=MixRun,
            start_to_close_timeout=timedelta(seconds=duration + 300),
            heartbeat_timeout=timedelta(seconds=15),
            retry_policy=MIX_RETRY,
            **self._device_queue(step),
        )

    # --- phases the batch completes by itself ----------------------------------

    async def _run_automatic(self, step: PlanStep) -> None:
        """PLC set/read, calculation, label: perform, record, judge; a failure goes to the
        recipe's on_fail, and the phase runs again once a person has cleared it."""
        view = self.views[step.step_id]
        while True:
            await workflow.wait_condition(
                lambda: self.state in (RUNNING, ABORTED)
                and self.views[step.step_id].status != "awaiting_disposition"
            )
            view = self.views[step.step_id]
            if self.state == ABORTED or view.status in ("done", "awaiting_verification"):
                return
            try:
                result, values = await self._perform_automatic(step)
            except (ActivityError, ExpressionError, ApplicationError) as err:
                message = _cause(err) if isinstance(err, ActivityError) else str(err)
                if isinstance(err, ExpressionError):
                    message = f"{step.title}: {step.expression} cannot be evaluated: {message}"
                await self._device_failed(step, message, operator_retries=False)
                continue
            await self._record_automatic(step, result, values)

    async def _perform_automatic(self, step: PlanStep) -> tuple[str, dict[str, str]]:
        instance = self._instance(step.step_id)
        unit = step.unit or (step.limits.unit if step.limits else "")
        if step.kind == CALC:
            inputs = phases.calc_inputs(self.plan, ((v.step_id, v.value)
                                                    for v in self.views.values()
                                                    if v.status != "pending"))
            value = phases.calculate(step, inputs)
            judged = phases.judge_number(Decimal(value), step.limits, step.alert_limits)
            return judged.result, _values(judged, unit, expression=step.expression or "")
        if step.kind == LABEL:
            content = phases.render_label(step.label_template or "", self.inp.batch_id,
                                          self.plan, self._recorded_values())
            printed = await workflow.execute_activity(
                "print_label", LabelInput(self.inp.batch_id, instance, content),
                result_type=LabelPrinted, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LABEL_RETRY,
            )
            return "pass", {"path": printed.path, "sha256": printed.sha256, "content": content}
        equipment = self._equipment(step)
        if step.kind == PLC_SET:
            held = await workflow.execute_activity(
                "plc_set", PlcSetInput(self.inp.batch_id, instance, equipment, step.tag or "",
                                       step.setpoint or ""),
                result_type=PlcValue, retry_policy=PLC_RETRY, **PLC_TIMEOUTS,
                **self._device_queue(step),
            )
            # The driver verified the read-back; a PLC that clamps the value fails there.
            result = "pass" if Decimal(held.value) == Decimal(step.setpoint or "NaN") else "fail"
            return result, {"value": held.value, "unit": unit, "setpoint": step.setpoint or "",
                            "tag": held.tag, "equipment": equipment, "read_at": held.read_at}
        read = await workflow.execute_activity(
            "plc_read", PlcReadInput(self.inp.batch_id, instance, equipment, step.tag or ""),
            result_type=PlcValue, retry_policy=PLC_RETRY, **PLC_TIMEOUTS,
            **self._device_queue(step),
        )
        judged = phases.judge_number(Decimal(read.value), step.limits, step.alert_limits)
        return judged.result, _values(judged, unit, tag=read.tag, equipment=equipment,
                                      read_at=read.read_at)

    async def _record_automatic(self, step: PlanStep, result: str, values: dict[str, str]) -> None:
        instance = self._instance(step.step_id)
        signature = SignatureIntent(SYSTEM_SIGNER, RECORDED_MEANING, workflow.now().isoformat())
        recorded = await self._record_step(StepRecordInput(
            batch_id=self.inp.batch_id, step_id=instance, update_id=f"{instance}/recorded",
            kind=step.kind, title=step.title, result=result, values=values, signature=signature,
        ))
        await self._finish(step, result, values, signature, recorded)

    async def _finish(
        self, step: PlanStep, result: str, values: dict[str, str], signature: SignatureIntent,
        recorded: StepRecorded,
    ) -> None:
        """A recorded step: flag an alert, apply the exception policy, update the view."""
        view = self.views[step.step_id]
        if values.get("alert"):
            await self._event("value.alert", signature.signer.username,
                              {"step": step.step_id, "value": values.get("value", ""),
                               "alert": values["alert"]},
                              key=f"{self.inp.batch_id}/{self._instance(step.step_id)}/alert")
        if result == "fail" and step.on_fail in (ON_FAIL_HOLD, ON_FAIL_ABORT):
            # Before the step counts as done, or the procedure would already move on.
            await self._apply_exception_policy(step, values, signature.signer)
        if view.status != "awaiting_disposition":
            view.status = "awaiting_verification" if step.verify_role else "done"
        view.result = result
        view.value, view.unit = values.get("value"), values.get("unit")
        view.alert = values.get("alert", "")
        view.signed_by = signature.signer.full_name
        view.signed_at = signature.signed_at
        self.step_hashes[step.step_id] = recorded.content_sha256

    def _recorded_values(self) -> dict[str, str | None]:
        return {v.step_id: v.value for v in self.views.values() if v.status != "pending"}

    async def _device_failed(self, step: PlanStep, message: str, *, operator_retries: bool) -> None:
        """A device (or calculation, or label) that still fails after its retries: the
        recipe's on_fail decides. abort ends the batch; hold opens a deviation that holds
        the phase until QA accepts (then it runs again); otherwise the failure is recorded
        and, where no operator can simply try again, the batch holds for a restart."""
        instance = self._instance(step.step_id)
        stamp = workflow.now().strftime("%Y%m%dT%H%M%S%f")
        await self._event("device.failed", "system", {"step": step.step_id, "error": message},
                          key=f"{self.inp.batch_id}/{instance}/device.failed/{stamp}")
        if step.on_fail == ON_FAIL_ABORT:
            self.state = ABORTED
            await self._event(f"batch.aborted/{instance}", "system",
                              {"reason": f"{message}; the recipe aborts the batch."})
            return
        if step.on_fail == ON_FAIL_HOLD and self.inp.quality:
            what = f"{step.title}: {message}"
            ref = await self._open_deviation(step, f"device-failure-{stamp}", what[:200], what,
                                             MINOR)
            self.deviations[ref.deviation_id] = step.step_id
            self.retry_after.add(ref.deviation_id)
            self.views[step.step_id].status = "awaiting_disposition"
            return
        if not operator_retries or step.on_fail == ON_FAIL_HOLD:
            self.state = HELD
            self.hold_reason = (f"{step.title}: {message} — fix the cause, then a supervisor "
                                "or QA restarts the batch.")

    async def _await_retry(self, step: PlanStep) -> None:
        await workflow.wait_condition(
            lambda: self.state in (RUNNING, ABORTED)
            and self.views[step.step_id].status != "awaiting_disposition"
        )

    def _device_queue(self, step: PlanStep) -> dict[str, Any]:
        """Run the device activity on the station worker that reaches this equipment. If
        that station's worker is down nothing else can serve the queue: after 30 s the
        attempt fails as a device failure the operator sees, instead of waiting forever."""
        equipment = self.inp.equipment.get(step.equipment_role or "")
        queue = self.inp.task_queues.get(equipment or "")
        if not queue:
            return {}
        return {"task_queue": queue, "schedule_to_start_timeout": STATION_START_TIMEOUT}

    # --- operator actions ----------------------------------------------------

    @workflow.update
    async def capture_weight(self, req: CaptureWeightRequest) -> WeightReading:
        self.updates += 1
        async with self.lock:
            self._check_current(req.step_id, WEIGH, req.requested_by, OPERATOR)
            step = self._step(req.step_id)
            due = self._due(step)
            assert due is not None
            try:
                reading = await workflow.execute_activity(
                    "read_weight",
                    ReadWeightInput(
                        batch_id=self.inp.batch_id,
                        step_id=self._instance(step.step_id),
                        equipment_id=self._equipment(step),
                        unit=due.unit,
                        low=due.low,
                        high=due.high,
                    ),
                    result_type=WeightReading,
                    start_to_close_timeout=timedelta(seconds=30),
                    # The worker beats for it while the scale settles: a weighing whose
                    # worker died is retried in seconds, not after the 30 s (a read has no
                    # effect to repeat).
                    heartbeat_timeout=SHORT_CALL_HEARTBEAT,
                    retry_policy=SCALE_RETRY,
                    **self._device_queue(step),
                )
            except ActivityError as err:
                # An unstable or overloaded scale is the operator's to fix; a scale that
                # cannot be reached after the retries is a device failure for on_fail.
                if not _refused(err) and workflow.patched("device-failure-policy"):
                    await self._device_failed(step, _cause(err), operator_retries=True)
                raise ApplicationError(_cause(err), type=_cause_type(err),
                                       non_retryable=True) from err
            low, high = Decimal(due.low), Decimal(due.high)
            reading = replace(reading, in_tolerance=low <= Decimal(reading.value) <= high)
            self.readings[step.step_id] = reading
            return reading

    @capture_weight.validator
    def _validate_capture(self, req: CaptureWeightRequest) -> None:
        self._check_current(req.step_id, WEIGH, req.requested_by, OPERATOR)

    @workflow.update
    async def scan_material(self, req: ScanMaterialRequest) -> MaterialScanned:
        """A pick step: the WMS checks the scanned label (material, lot, expiry, status)."""
        self.updates += 1
        async with self.lock:
            step = self._validate_scan(req)
            assert step.material is not None
            due = self._due(step)
            assert due is not None
            try:
                found = await workflow.execute_activity(
                    "wms_verify_scan",
                    ScanRequest(raw=req.barcode, material_code=step.material.material_code),
                    result_type=ScanResult, **SYSTEM_TIMEOUTS,
                    retry_policy=SYSTEM_RETRY,
                )
            except ActivityError as err:
                if _refused(err) and _cause_type(err) != "BadScan":
                    # The wrong container is an event in the record, and per the recipe a
                    # deviation (hold) or the end of the batch (abort).
                    await self._scan_refused(step, req, _cause(err))
                raise ApplicationError(_cause(err), type=_cause_type(err) or "ScanRefused",
                                       non_retryable=True) from err
            scanned = MaterialScanned(
                material_code=found.material_code, lot_number=found.lot_number,
                gtin=found.gtin, expiry=found.expiry, quantity=due.target, unit=due.unit,
            )
            self.scans[step.step_id] = scanned
            return scanned

    @scan_material.validator
    def _validate_scan_update(self, req: ScanMaterialRequest) -> None:
        self._validate_scan(req)

    def _validate_scan(self, req: ScanMaterialRequest) -> PlanStep:
        planned = self.plan.step(req.step_id)
        role = planned.perform_role if planned else OPERATOR
        self._check_current(req.step_id, PICK, req.requested_by, role)
        if not self.inp.inventory:
            raise ApplicationError(
                "This batch runs without the WMS, so a pick cannot be verified: start it on "
                "a site with the WMS enabled.",
                type="NoWms",
            )
        if not req.barcode.strip() or len(req.barcode) > 512:
            raise ApplicationError("Scan the container's GS1 label (1 to 512 characters).",
                                   type="BadValue")
        return self._step(req.step_id)

    async def _scan_refused(self, step: PlanStep, req: ScanMaterialRequest, message: str) -> None:
        instance = self._instance(step.step_id)
        stamp = workflow.now().strftime("%Y%m%dT%H%M%S%f")
        await self._event("pick.refused", req.requested_by.username,
                          {"step": step.step_id, "scan": req.barcode[:200], "error": message},
                          key=f"{self.inp.batch_id}/{instance}/pick.refused/{stamp}")
        if step.on_fail == ON_FAIL_ABORT:
            self.state = ABORTED
            await self._event(f"batch.aborted/{instance}", "system",
                              {"reason": f"{message}; the recipe aborts the batch."})
        elif step.on_fail == ON_FAIL_HOLD and self.inp.quality:
            what = f"{step.title}: wrong container scanned"
            ref = await self._open_deviation(step, f"scan-refused-{stamp}", what,
                                             f"{message} Scanned by {req.requested_by.full_name}.",
                                             MINOR)
            self.deviations[ref.deviation_id] = step.step_id
            self.retry_after.add(ref.deviation_id)
            self.views[step.step_id].status = "awaiting_disposition"

    async def _issue_pick(self, step: PlanStep) -> dict[str, str]:
        """Issue the picked quantity of the scanned lot to the batch, exactly once."""
        scanned = self.scans[step.step_id]
        instance = self._instance(step.step_id)
        try:
            issued = await workflow.execute_activity(
                "wms_issue",
                IssueRequest(
                    key=issue_key(self.inp.batch_id, instance, 1), batch_id=self.inp.batch_id,
                    phase_instance=instance, line=1, material_code=scanned.material_code,
                    lot_number=scanned.lot_number, quantity=scanned.quantity,
                    unit=scanned.unit, actor="ebr",
                ),
                result_type=Issued, **SYSTEM_TIMEOUTS,
                retry_policy=SYSTEM_RETRY,
            )
        except ActivityError as err:
            raise ApplicationError(_cause(err), type=_cause_type(err)) from err
        return {
            "value": scanned.quantity, "unit": scanned.unit, "lot": issued.lot_number,
            "gtin": scanned.gtin, "expiry": scanned.expiry,
            "lots": f"{issued.lot_number} {issued.quantity} {issued.unit}",
        }

    @workflow.update
    async def request_hold(self, req: HoldRequest) -> ReleaseOutcome:
        """An operator stops the batch (a spill, a doubt): signed, with the reason."""
        self.updates += 1
        async with self.lock:
            self._validate_hold_request(req)
            return await self._change_state(
                StateChangeRequest(req.signature, f"Requested by {req.signature.signer.full_name}:"
                                                  f" {req.reason.strip()}"),
                HELD,
            )

    @request_hold.validator
    def _validate_request_hold(self, req: HoldRequest) -> None:
        self._validate_hold_request(req)

    def _validate_hold_request(self, req: HoldRequest) -> None:
        signer = req.signature.signer
        if self.state != RUNNING:
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; only a running batch can be held.",
                type="WrongState",
            )
        if not ({OPERATOR, SUPERVISOR, QA} & set(signer.roles)):
            raise ApplicationError(
                f"{signer.full_name} is not an operator, supervisor or QA of this batch.",
                type="NotPermitted",
            )
        if req.signature.meaning != HOLD_MEANING:
            raise ApplicationError(f"A hold is signed with the meaning '{HOLD_MEANING}'.")
        if not req.reason.strip() or len(req.reason) > 2000:
            raise ApplicationError("Give the reason for the hold (1 to 2000 characters).",
                                   type="Missing")

    @workflow.update
    async def complete_step(self, req: CompleteStepRequest) -> StepOutcome:
        self.updates += 1
        async with self.lock:
            step = self._validate_completion(req)
            result, values = self._judge(step, req)
            reading = self.readings.get(step.step_id) if step.kind == WEIGH else None
            if reading is not None and self.inp.inventory:
                values["lots"] = await self._consume(step, reading)
            if step.kind == PICK:
                values.update(await self._issue_pick(step))
            update = workflow.current_update_info()
            recorded = await self._record_step(
                StepRecordInput(
                    batch_id=self.inp.batch_id,
                    step_id=self._instance(step.step_id),
                    update_id=update.id if update else f"{step.step_id}/complete",
                    kind=step.kind,
                    title=step.title,
                    result=result,
                    values=values,
                    signature=req.signature,
                    reading=reading,
                )
            )
            await self._finish(step, result, values, req.signature, recorded)
            # A sign-off with another meaning (reviewed, approved) is not performing.
            if req.signature.meaning == PERFORMED:
                self.performers.add(req.signature.signer.user_id)
            self.step_performer[step.step_id] = req.signature.signer.user_id
            self.scans.pop(step.step_id, None)
            return StepOutcome(
                step_id=step.step_id,
                result=result,
                content_sha256=recorded.content_sha256,
                signature_id=recorded.signature_id,
                next_step_id=step.step_id if step.verify_role else self._next_step_id(step.step_id),
            )

    @complete_step.validator
    def _validate_complete(self, req: CompleteStepRequest) -> None:
        self._validate_completion(req)

    @workflow.update
    async def verify_step(self, req: VerifyStepRequest) -> StepOutcome:
        self.updates += 1
        async with self.lock:
            step = self._validate_verification(req)
            update = workflow.current_update_info()
            recorded = await workflow.execute_activity(
                "record_verification",
                VerificationRecordInput(
                    batch_id=self.inp.batch_id,
                    step_id=self._instance(step.step_id),
                    update_id=update.id if update else f"{step.step_id}/verify",
                    step_sha256=self.step_hashes[step.step_id],
                    signature=req.signature,
                ),
                result_type=StepRecorded,
                retry_policy=RECORD_RETRY,
                **RECORD_TIMEOUTS,
            )
            view = self.views[step.step_id]
            view.status, view.verified_by = "done", req.signature.signer.full_name
            return StepOutcome(
                step_id=step.step_id,
                result=view.result or "pass",
                content_sha256=recorded.content_sha256,
                signature_id=recorded.signature_id,
                next_step_id=self._next_step_id(step.step_id),
            )

    @verify_step.validator
    def _validate_verify(self, req: VerifyStepRequest) -> None:
        self._validate_verification(req)

    @workflow.update
    async def correct_value(self, req: CorrectValueRequest) -> StepOutcome:
        self.updates += 1
        async with self.lock:
            step = self._validate_correction(req)
            result, values = self._judge(
                step, CompleteStepRequest(step.step_id, req.signature, req.value)
            )
            update = workflow.current_update_info()
            recorded = await self._record_step(
                StepRecordInput(
                    batch_id=self.inp.batch_id,
                    step_id=self._instance(step.step_id),
                    update_id=update.id if update else f"{step.step_id}/correct",
                    kind=step.kind,
                    title=step.title,
                    result=result,
                    values=values,
                    signature=req.signature,
                    reason=req.reason,
                )
            )
            view = self.views[step.step_id]
            view.result, view.value = result, values.get("value")
            view.alert = values.get("alert", "")
            view.corrections += 1
            self.step_hashes[step.step_id] = recorded.content_sha256
            return StepOutcome(
                step_id=step.step_id,
                result=result,
                content_sha256=recorded.content_sha256,
                signature_id=recorded.signature_id,
                next_step_id=self._next_step_id(step.step_id),
            )

    @correct_value.validator
    def _validate_correct(self, req: CorrectValueRequest) -> None:
        self._validate_correction(req)

    @workflow.update
    async def disposition(self, req: DispositionUpdate) -> ReleaseOutcome:
        self.updates += 1
        async with self.lock:
            step = self._validate_disposition(req)
            update = workflow.current_update_info()
            try:
                await workflow.execute_activity(
                    "qms_disposition",
                    DispositionRequest(
                        key=f"disposition:{self.inp.batch_id}:{update.id if update else ''}",
                        deviation_id=req.deviation_id,
                        disposition=req.disposition,
                        rationale=req.rationale,
                        signature=req.signature,
                        capa_ref=req.capa_ref,
                    ),
                    result_type=DeviationRef,
                    **SYSTEM_TIMEOUTS,
                    retry_policy=SYSTEM_RETRY,
                )
            except ActivityError as err:
                raise ApplicationError(_cause(err), type=_cause_type(err)) from err
            del self.deviations[req.deviation_id]
            if req.deviation_id in self.retry_after and req.disposition != REJECT:
                # The device (or the scan) failed, not the material: try the phase again.
                self.retry_after.discard(req.deviation_id)
                self.views[step.step_id].status = "active"
            elif req.disposition == REWORK:
                iteration = self.iterations.get(step.step_id, 1) + 1
                self._reset([FlowNode(STEP, step_id=step.step_id)], iteration)
                self.views[step.step_id].status = "active"
                self.views[step.step_id].active_since = workflow.now().isoformat()
                self._show_due(step)
                if workflow.patched("phase-started-event"):
                    self._in_background(self._phase_started(step))
            elif req.disposition == REJECT:
                self.state = ABORTED
                await self._event(
                    f"batch.aborted/{req.deviation_id}", req.signature.signer.username,
                    {"reason": f"QA rejected the batch on {req.deviation_id}: {req.rationale}"},
                )
            else:
                self.views[step.step_id].status = "done"
            return ReleaseOutcome(state=self.state, content_sha256="", signature_id=0)

    @disposition.validator
    def _validate_disposition_update(self, req: DispositionUpdate) -> None:
        self._validate_disposition(req)

    @workflow.update
    async def release(self, req: ReleaseRequest) -> ReleaseOutcome:
        self.updates += 1
        async with self.lock:
            decision = self._validate_release_request(req)
            if self.inp.quality and decision == RELEASED:
                # Deviations may also be raised in the QMS directly, not only by this batch.
                open_now = await workflow.execute_activity(
                    "qms_open_deviations", OpenDeviationsQuery(batch_id=self.inp.batch_id),
                    result_type=OpenDeviations, **SYSTEM_TIMEOUTS,
                    retry_policy=SYSTEM_RETRY,
                )
                if open_now.deviations:
                    ids = ", ".join(d.deviation_id for d in open_now.deviations)
                    raise ApplicationError(
                        f"Deviations {ids} are still open: QA must disposition them before "
                        "the batch can be released.",
                        type="OpenDeviations",
                    )
            update = workflow.current_update_info()
            recorded = await workflow.execute_activity(
                "record_release",
                ReleaseRecordInput(
                    batch_id=self.inp.batch_id,
                    update_id=update.id if update else "release",
                    decision=decision,
                    reason=req.reason,
                    signature=req.signature,
                ),
                result_type=StepRecorded,
                retry_policy=RECORD_RETRY,
                **RECORD_TIMEOUTS,
            )
            self.state = decision
            return ReleaseOutcome(
                state=decision,
                content_sha256=recorded.content_sha256,
                signature_id=recorded.signature_id,
            )

    @release.validator
    def _validate_release(self, req: ReleaseRequest) -> None:
        self._validate_release_request(req)

    @workflow.update
    async def hold(self, req: StateChangeRequest) -> ReleaseOutcome:
        self.updates += 1
        async with self.lock:
            self._validate_state_change(req, HOLD_MEANING, (RUNNING,))
            return await self._change_state(req, HELD)

    @hold.validator
    def _validate_hold(self, req: StateChangeRequest) -> None:
        self._validate_state_change(req, HOLD_MEANING, (RUNNING,))

    @workflow.update
    async def restart(self, req: StateChangeRequest) -> ReleaseOutcome:
        self.updates += 1
        async with self.lock:
            self._validate_state_change(req, RESTART_MEANING, (HELD,))
            return await self._change_state(req, RUNNING)

    @restart.validator
    def _validate_restart(self, req: StateChangeRequest) -> None:
        self._validate_state_change(req, RESTART_MEANING, (HELD,))

    @workflow.update
    async def abort(self, req: StateChangeRequest) -> ReleaseOutcome:
        self.updates += 1
        async with self.lock:
            self._validate_state_change(req, ABORT_MEANING, (RUNNING, HELD, COMPLETE))
            return await self._change_state(req, ABORTED)

    @abort.validator
    def _validate_abort(self, req: StateChangeRequest) -> None:
        self._validate_state_change(req, ABORT_MEANING, (RUNNING, HELD, COMPLETE))

    @workflow.update
    async def comment(self, req: CommentRequest) -> CommentOutcome:
        self.updates += 1
        self._validate_comment_request(req)
        update = workflow.current_update_info()
        recorded = await workflow.execute_activity(
            "record_event",
            BatchEvent(
                batch_id=self.inp.batch_id,
                key=f"{self.inp.batch_id}/{update.id if update else 'comment'}",
                action="comment.added",
                state=self.state,
                actor=req.author.username,
                at=workflow.now().isoformat(),
                detail={"step": req.step_id, "comment": req.text},
            ),
            result_type=EventRecorded,
            retry_policy=RECORD_RETRY,
            **RECORD_TIMEOUTS,
        )
        return CommentOutcome(event_id=recorded.event_id)

    @comment.validator
    def _validate_comment(self, req: CommentRequest) -> None:
        self._validate_comment_request(req)

    @workflow.query
    def view(self, _: StateQuery) -> BatchView:
        current = self.active[0] if self.active else None
        return BatchView(
            batch_id=self.inp.batch_id,
            state=self.state,
            current_step_id=current,
            steps=list(self.views.values()),
            pending_reading=self.readings.get(current) if current else None,
            mixing=bool(self.mixing),
            active_step_ids=list(self.active),
            awaiting=self._awaiting(),
            open_deviations=dict(self.deviations),
            report=self.report,
            hold_reason=self.hold_reason if self.state == HELD else "",
            held_since=self.held_since,
            held_total_s=self.held_total_s,
            pending_signatures=[a for a in self._awaiting() if a.meaning],
            pending_scan=self.scans.get(current) if current else None,
        )

    def _awaiting(self) -> list[Awaiting]:
        if self.state == HELD:
            return [Awaiting("restart", None, [SUPERVISOR, QA], RESTART_MEANING)]
        if self.state == COMPLETE:
            return [Awaiting("release", None, [QA], RELEASED_MEANING)]
        if self.state != RUNNING:
            return []
        waiting = []
        for step_id in self.active:
            step, view = self._step(step_id), self.views[step_id]
            if view.status == "awaiting_disposition":
                waiting.append(Awaiting("disposition", step_id, [QA], REVIEWED))
            elif view.status == "awaiting_verification":
                waiting.append(Awaiting("verify", step_id, [step.verify_role or OPERATOR],
                                        VERIFIED))
            elif step_id in self.mixing or step.kind in (PLC_SET, PLC_READ, CALC, LABEL):
                if view.status != "done":
                    waiting.append(Awaiting("device", step_id, []))
            elif step.kind == WEIGH and step_id not in self.readings:
                waiting.append(Awaiting("weigh", step_id, [OPERATOR]))
            elif step.kind == PICK and step_id not in self.scans:
                waiting.append(Awaiting("scan", step_id, [step.perform_role]))
            elif view.status != "done":
                waiting.append(Awaiting("perform", step_id, [step.perform_role],
                                        step.sign_meaning))
        return waiting

    # --- rules (shared by validators and handlers) ---------------------------

    def _check_current(self, step_id: str, kind: str | None, signer: Signer, role: str) -> None:
        if self.state != RUNNING:
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; steps can only be done while it "
                "is running.",
                type="WrongState",
            )
        if role not in signer.roles:
            raise ApplicationError(
                f"{signer.full_name} does not hold the {role} role for this action.",
                type="NotPermitted",
            )
        step = self.plan.step(step_id)
        if step is None:
            raise ApplicationError(f"Step {step_id} is not part of this batch.", type="WrongStep")
        done = self.views[step_id]
        # Checked before `active`: a step completed a moment ago is still active until the
        # procedure moves on, and an update admitted meanwhile must not complete it twice.
        if done.status == "done":
            # A second tablet (or a double tap) learns who was first, and when.
            raise ApplicationError(
                f"Step {step_id} was already completed by {done.signed_by or 'the system'}"
                f" at {done.signed_at or 'an earlier time'}.",
                type="Duplicate",
            )
        if step_id not in self.active:
            raise ApplicationError(
                f"Step {step_id} is not a current step; the current step is "
                f"{' or '.join(self.active) or 'none'}.",
                type="WrongStep",
            )
        if self.views[step_id].status == "awaiting_disposition":
            raise ApplicationError(
                f"Step {step_id} is held by a deviation until QA signs its disposition.",
                type="AwaitingDisposition",
            )
        if self.views[step_id].status == "awaiting_verification":
            raise ApplicationError(
                f"Step {step_id} was performed and waits for verification by a second person.",
                type="AwaitingVerification",
            )
        if kind is not None and step.kind != kind:
            raise ApplicationError(f"Step {step_id} is a {step.kind} step.", type="WrongStep")

    def _validate_completion(self, req: CompleteStepRequest) -> PlanStep:
        planned = self.plan.step(req.step_id)
        role = planned.perform_role if planned else OPERATOR
        self._check_current(req.step_id, None, req.signature.signer, role)
        step = self._step(req.step_id)
        if req.signature.meaning != step.sign_meaning:
            raise ApplicationError(f"This step is signed with the meaning '{step.sign_meaning}'.")
        if step.kind in (PLC_SET, PLC_READ, CALC, LABEL):
            raise ApplicationError(
                f"Step {step.step_id} is a {step.kind} step the batch completes by itself.",
                type="WrongStep",
            )
        if step.kind == PICK and step.step_id not in self.scans:
            raise ApplicationError(
                "Scan the label of the picked container first: no lot is scanned for this step.",
                type="MissingScan",
            )
        if step.kind == WEIGH:
            reading = self.readings.get(step.step_id)
            if reading is None:
                raise ApplicationError(
                    "Weigh the material first: no scale reading for this step yet.",
                    type="MissingReading",
                )
            if not reading.in_tolerance:
                due = self._due(step)
                assert due is not None
                raise ApplicationError(
                    f"The weight {reading.value} {reading.unit} is outside "
                    f"{due.low}-{due.high} {due.unit}: adjust the "
                    "material on the scale and weigh again.",
                    type="OutOfTolerance",
                )
        if step.kind == MIX and step.step_id not in self.mix_runs:
            raise ApplicationError(
                "The mixer is still running; sign when the mix has finished.", type="Mixing"
            )
        if step.kind == CHECK:
            phases.judge_entry(step, req.entered_value)
        if step.kind == TIMER:
            elapsed = self._elapsed(step)
            if elapsed < (step.min_duration_s or 0):
                raise ApplicationError(
                    f"The hold time is not reached: {(step.min_duration_s or 0) - elapsed} s "
                    f"left of the minimum {step.min_duration_s} s.",
                    type="TooEarly",
                )
        return step

    def _elapsed(self, step: PlanStep) -> int:
        started = self.started.get(step.step_id)
        return int((workflow.now() - started).total_seconds()) if started else 0

    def _judge(self, step: PlanStep, req: CompleteStepRequest) -> tuple[str, dict[str, str]]:
        values: dict[str, str] = {}
        if req.comment:
            values["comment"] = req.comment
        result = "pass"
        if step.kind == WEIGH:
            reading = self.readings[step.step_id]
            values.update(value=reading.value, unit=reading.unit)
        elif step.kind == MIX:
            run = self.mix_runs[step.step_id]
            values.update(
                value=str(run.run_time_s), unit="s", speed_rpm=str(run.speed_rpm),
                setpoint_rpm=str(step.speed_rpm), setpoint_s=str(step.duration_s),
            )
            if run.run_time_s < (step.duration_s or 0):
                result = "fail"
        elif step.kind == CHECK:
            judged = phases.judge_entry(step, req.entered_value)
            values.update(_values(judged, step.unit or (step.limits.unit if step.limits else "")))
            result = judged.result
        elif step.kind == SIGNOFF:
            values.update(signed_as=step.sign_meaning)
        elif step.kind == INSTRUCTION:
            values.update(confirmed="yes")
        elif step.kind == TIMER:
            elapsed = self._elapsed(step)
            values.update(value=str(elapsed), unit="s")
            if step.max_duration_s is not None and elapsed > step.max_duration_s:
                result = "fail"
        return result, values

    def _validate_release_request(self, req: ReleaseRequest) -> str:
        signer = req.signature.signer
        if self.state != COMPLETE:
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; only a complete batch can be "
                "released or rejected.",
                type="WrongState",
            )
        if QA not in signer.roles:
            raise ApplicationError(
                f"{signer.full_name} does not hold the QA role needed to release.",
                type="NotPermitted",
            )
        if signer.user_id in self.performers:
            raise ApplicationError(
                f"{signer.full_name} performed steps of this batch and cannot also release it.",
                type="NotPermitted",
            )
        meaning = req.signature.meaning
        if meaning not in (RELEASED_MEANING, REJECTED_MEANING):
            raise ApplicationError("A release is signed as 'released' or 'rejected'.")
        if meaning == REJECTED_MEANING and not req.reason.strip():
            raise ApplicationError("Give the reason for rejecting the batch.", type="Missing")
        return RELEASED if meaning == RELEASED_MEANING else REJECTED

    def _validate_verification(self, req: VerifyStepRequest) -> PlanStep:
        signer = req.signature.signer
        if self.state != RUNNING:
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; steps are verified while it runs.",
                type="WrongState",
            )
        step = self.plan.step(req.step_id)
        if step is None:
            raise ApplicationError(f"Step {req.step_id} is not part of this batch.",
                                   type="WrongStep")
        if self.views[step.step_id].status != "awaiting_verification":
            raise ApplicationError(
                f"Step {step.step_id} is not waiting for verification "
                f"(it is {self.views[step.step_id].status}).",
                type="WrongStep",
            )
        if step.verify_role not in signer.roles:
            raise ApplicationError(
                f"{signer.full_name} does not hold the {step.verify_role} role to verify.",
                type="NotPermitted",
            )
        if self.step_performer.get(step.step_id) == signer.user_id:
            raise ApplicationError(
                "The person who performed a step cannot verify it; ask a second person.",
                type="NotPermitted",
            )
        if req.signature.meaning != VERIFIED:
            raise ApplicationError("A verification is signed with the meaning 'verified'.")
        return step

    def _validate_correction(self, req: CorrectValueRequest) -> PlanStep:
        signer = req.signature.signer
        if self.state not in (RUNNING, HELD, COMPLETE):
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; its record is closed.",
                type="WrongState",
            )
        step = self.plan.step(req.step_id)
        if step is None or self.views[step.step_id].status == "pending":
            raise ApplicationError(f"Step {req.step_id} has no recorded value to correct.",
                                   type="WrongStep")
        if step.kind != CHECK:
            raise ApplicationError(
                "Only entered values can be corrected; device readings are repeated, not edited.",
                type="WrongStep",
            )
        if not ({OPERATOR, SUPERVISOR} & set(signer.roles)):
            raise ApplicationError(f"{signer.full_name} may not correct recorded values.",
                                   type="NotPermitted")
        if req.signature.meaning != PERFORMED:
            raise ApplicationError("A correction is signed with the meaning 'performed'.")
        if not req.reason.strip():
            raise ApplicationError("Give the reason for the correction.", type="Missing")
        phases.judge_entry(step, req.value)
        return step

    def _next_step_id(self, step_id: str) -> str | None:
        """The step after this one in the recipe's written order (informational)."""
        ids = [s.step_id for s in self.plan.steps]
        nxt = ids.index(step_id) + 1
        return ids[nxt] if nxt < len(ids) else None

    def _validate_disposition(self, req: DispositionUpdate) -> PlanStep:
        signer = req.signature.signer
        if req.deviation_id not in self.deviations:
            raise ApplicationError(
                f"{req.deviation_id} does not hold a step of batch {self.inp.batch_id}.",
                type="WrongStep",
            )
        if QA not in signer.roles:
            raise ApplicationError(f"{signer.full_name} needs the QA role to disposition.",
                                   type="NotPermitted")
        if req.disposition not in DISPOSITIONS:
            raise ApplicationError(f"A disposition is one of {', '.join(DISPOSITIONS)}.",
                                   type="BadValue")
        if req.signature.meaning != REVIEWED:
            raise ApplicationError("A disposition is signed with the meaning 'reviewed'.")
        if not req.rationale.strip():
            raise ApplicationError("Give the rationale for the disposition.", type="Missing")
        return self._step(self.deviations[req.deviation_id])

    async def _consume(self, step: PlanStep, reading: WeightReading) -> str:
        """Issue the weighed quantity to the batch from FEFO lots, each line exactly once."""
        assert step.material is not None
        instance = self._instance(step.step_id)
        try:
            reservation = await workflow.execute_activity(
                "wms_reserve",
                ReserveRequest(
                    key=f"reserve:{self.inp.batch_id}:{instance}:1", batch_id=self.inp.batch_id,
                    phase_instance=instance, line=1, material_code=step.material.material_code,
                    quantity=reading.value, unit=reading.unit, actor="ebr",
                ),
                result_type=Reservation, **SYSTEM_TIMEOUTS,
                retry_policy=SYSTEM_RETRY,
            )
            issued = []
            for line, pick in enumerate(reservation.picks, start=1):
                issued.append(await workflow.execute_activity(
                    "wms_issue",
                    IssueRequest(
                        key=issue_key(self.inp.batch_id, instance, line),
                        batch_id=self.inp.batch_id, phase_instance=instance, line=line,
                        material_code=step.material.material_code,
                        lot_number=pick.lot_number, quantity=pick.quantity, unit=pick.unit,
                        actor="ebr", bin_code=pick.bin_code,
                    ),
                    result_type=Issued, **SYSTEM_TIMEOUTS,
                    retry_policy=SYSTEM_RETRY,
                ))
        except ActivityError as err:
            raise ApplicationError(_cause(err), type=_cause_type(err)) from err
        return "; ".join(f"{i.lot_number} {i.quantity} {i.unit}" for i in issued)

    async def _apply_exception_policy(
        self, step: PlanStep, values: dict[str, str], signer: Signer
    ) -> None:
        """The recipe's answer to a failed check: hold the phase for QA, or abort."""
        instance = self._instance(step.step_id)
        what = f"{step.title}: {values.get('value')} {values.get('unit', '')} outside limits"
        if self.inp.quality:
            if step.step_id in self.timer_deviations:
                # The deviation opened when the hold passed its maximum is this excursion.
                deviation_id = self.timer_deviations.pop(step.step_id)
            else:
                ref = await self._open_deviation(
                    step, "out-of-limits", what, f"{what}; recorded by {signer.full_name}.",
                    MINOR if step.on_fail == ON_FAIL_HOLD else "critical",
                )
                deviation_id = ref.deviation_id
            if step.on_fail == ON_FAIL_HOLD:
                self.deviations[deviation_id] = step.step_id
                self.views[step.step_id].status = "awaiting_disposition"
                return
        if step.on_fail == ON_FAIL_HOLD:
            self.state, self.hold_reason = HELD, f"{what}: QA must decide (restart or abort)."
            await self._event(f"check.failed/{instance}", "system", {"reason": self.hold_reason})
        else:
            self.state = ABORTED
            await self._event(f"batch.aborted/{instance}", "system",
                              {"reason": f"{what}; the recipe aborts the batch."})

    async def _open_deviation(
        self, step: PlanStep, reason: str, title: str, description: str, classification: str
    ) -> DeviationRef:
        instance = self._instance(step.step_id)
        return await workflow.execute_activity(
            "qms_open_deviation",
            OpenDeviationRequest(
                key=deviation_key(self.inp.batch_id, instance, reason),
                batch_id=self.inp.batch_id, phase_instance=instance,
                classification=classification, title=title, description=description,
                actor="ebr", origin="automatic",
            ),
            result_type=DeviationRef, **SYSTEM_TIMEOUTS,
            retry_policy=SYSTEM_RETRY,
        )

    def _validate_state_change(
        self, req: StateChangeRequest, meaning: str, allowed: tuple[str, ...]
    ) -> None:
        signer = req.signature.signer
        if self.state not in allowed:
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; it cannot be {meaning} now.",
                type="WrongState",
            )
        if not ({SUPERVISOR, QA} & set(signer.roles)):
            raise ApplicationError(
                f"{signer.full_name} needs the supervisor or QA role to sign '{meaning}'.",
                type="NotPermitted",
            )
        if req.signature.meaning != meaning:
            raise ApplicationError(f"This action is signed with the meaning '{meaning}'.")
        if not req.reason.strip():
            raise ApplicationError(f"Give the reason the batch is {meaning}.", type="Missing")

    def _validate_comment_request(self, req: CommentRequest) -> None:
        if self.state in (RELEASED, REJECTED, ABORTED):
            raise ApplicationError(
                f"Batch {self.inp.batch_id} is {self.state}; its record is closed.",
                type="WrongState",
            )
        if not ({OPERATOR, SUPERVISOR, QA} & set(req.author.roles)):
            raise ApplicationError("Only operators, supervisors and QA comment on a batch.",
                                   type="NotPermitted")
        if req.step_id and self.plan.step(req.step_id) is None:
            raise ApplicationError(f"Step {req.step_id} is not part of this batch.",
                                   type="WrongStep")
        if not req.text.strip() or len(req.text) > 2000:
            raise ApplicationError("A comment needs 1 to 2000 characters.", type="BadValue")

    async def _change_state(self, req: StateChangeRequest, to_state: str) -> ReleaseOutcome:
        update = workflow.current_update_info()
        recorded = await workflow.execute_activity(
            "record_state_change",
            StateChangeRecordInput(
                batch_id=self.inp.batch_id,
                update_id=update.id if update else to_state,
                from_state=self.state,
                to_state=to_state,
                reason=req.reason,
                signature=req.signature,
            ),
            result_type=StepRecorded,
            retry_policy=RECORD_RETRY,
            **RECORD_TIMEOUTS,
        )
        self.state = to_state
        self.hold_reason = req.reason if to_state == HELD else ""
        return ReleaseOutcome(
            state=to_state,
            content_sha256=recorded.content_sha256,
            signature_id=recorded.signature_id,
        )

    # --- helpers ---------------------------------------------------------------

    def _step(self, step_id: str) -> PlanStep:
        step = self.plan.step(step_id)
        assert step is not None
        return step

    def _equipment(self, step: PlanStep) -> str:
        role = step.equipment_role or ""
        if role not in self.inp.equipment:
            raise ApplicationError(f"No equipment is bound to the role '{role}'.")
        return self.inp.equipment[role]

    async def _record_step(self, inp: StepRecordInput) -> StepRecorded:
        return await workflow.execute_activity(
            "record_step", inp, result_type=StepRecorded, retry_policy=RECORD_RETRY,
            **RECORD_TIMEOUTS,
        )

    async def _event(
        self, action: str, actor: str, detail: dict[str, str], key: str | None = None
    ) -> None:
        await workflow.execute_activity(
            "record_event",
            self._batch_event(action, actor, detail, key),
            retry_policy=RECORD_RETRY,
            **RECORD_TIMEOUTS,
        )

    def _batch_event(
        self, action: str, actor: str, detail: dict[str, str], key: str | None
    ) -> BatchEvent:
        return BatchEvent(
            batch_id=self.inp.batch_id,
            key=key or f"{self.inp.batch_id}/{action}",
            action=action,
            state=self.state,
            actor=actor,
            at=workflow.now().isoformat(),
            detail=detail,
        )


def _values(judged: phases.Judged, unit: str, **extra: str) -> dict[str, str]:
    values = {"value": judged.value, "unit": unit, **extra}
    if judged.alert:
        values["alert"] = judged.alert
    return values


def _refused(err: ActivityError) -> bool:
    """The activity refused (non-retryable): a person can act on it; otherwise it ran out
    of retries or time, which is a device (or system) failure."""
    return err.retry_state == RetryState.NON_RETRYABLE_FAILURE


def _reported(err: ActivityError) -> BaseException | None:
    """The failure the activity reported: the ApplicationError it raised, with the message
    written for the operator. Its own causes are the technical detail behind it (a serial
    port's "read failed: socket disconnected"), kept in the history, never shown as the
    reason. Runs that began before the patch named the deepest cause, and still do."""
    cause = err.cause
    if workflow.patched("reported-activity-error"):
        raised = cause
        while raised is not None and not isinstance(raised, ApplicationError):
            raised = raised.cause
        if raised is not None:
            return raised
    while cause is not None and getattr(cause, "cause", None) is not None:
        cause = cause.cause
    return cause


def _cause_type(err: ActivityError) -> str | None:
    return getattr(_reported(err), "type", None)


def _cause(err: ActivityError) -> str:
    reported = _reported(err)
    if isinstance(reported, ApplicationError) and workflow.patched("reported-activity-error"):
        return reported.message  # the type is the error's code, not part of the sentence
    return str(reported or err)
