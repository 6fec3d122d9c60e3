"""Data that crosses the workflow boundary: workflow, update, query and activity I/O.

One dataclass in and one out for each of them. Standard library only (plus the
plan), so both the workflow sandbox and the activities can import it. Passwords
never appear here: the API checks them before anything reaches Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recipes.plan import BatchPlan

# Batch states (ISA-88 names where they exist).
RUNNING = "running"
HELD = "held"  # stopped by a supervisor or QA; nothing may be done until restarted
COMPLETE = "complete"  # every step done; awaiting QA review
RELEASED = "released"
REJECTED = "rejected"
ABORTED = "aborted"

# Signature meanings (21 CFR 11.50(a)(3)).
PERFORMED = "performed"
VERIFIED = "verified"
APPROVED = "approved"
RELEASED_MEANING = "released"
REJECTED_MEANING = "rejected"
REVIEWED = "reviewed"  # QA's disposition of a deviation
HOLD_MEANING = "held"
RESTART_MEANING = "restarted"
ABORT_MEANING = "aborted"
# What the record store shows as the "signer" of a step the batch completed by itself
# (PLC set/read, calculation, label): not a person's e-signature, an attribution.
RECORDED_MEANING = "recorded"

# Roles the workflow checks in its validators.
OPERATOR = "operator"
SUPERVISOR = "supervisor"
QA = "qa"


@dataclass
class Signer:
    """Who signs, as the API established it after re-checking the password."""

    user_id: int
    username: str
    full_name: str
    roles: list[str] = field(default_factory=list)


@dataclass
class SignatureIntent:
    """A person's e-signature: identity, meaning and the UTC time they signed."""

    signer: Signer
    meaning: str
    signed_at: str  # ISO 8601 with offset, UTC


# --- workflow -----------------------------------------------------------------


@dataclass
class BatchInput:
    batch_id: str
    plan: BatchPlan
    equipment: dict[str, str]  # recipe equipment role -> bound equipment id
    created_by: str
    # Set when a long batch continues as a new run: where it was and what it knows.
    resume: ResumeState | None = None
    # Events per run before continuing as new (Temporal warns at 10,240).
    history_budget: int = 8000
    # Consume weighed material from WMS lots (FEFO), and raise QMS deviations on excursions.
    inventory: bool = False
    quality: bool = False
    # Equipment id -> task queue of the station worker that reaches it; equipment absent
    # here is reached from the batch's own task queue.
    task_queues: dict[str, str] = field(default_factory=dict)


@dataclass
class ResumeState:
    position: int  # the next top-level procedure element to run
    generation: int
    views: list[StepView]
    performers: list[int]
    step_performer: dict[str, int]
    step_hashes: dict[str, str]
    iterations: dict[str, int]
    state: str = RUNNING
    hold_reason: str = ""
    held_since: str = ""
    held_total_s: int = 0


@dataclass
class ReportRef:
    """Where the signed eBMR lives; the PDF itself never passes through Temporal."""

    path: str
    sha256: str
    pages: int


@dataclass
class BatchResult:
    batch_id: str
    state: str
    report: ReportRef | None = None


# --- updates ------------------------------------------------------------------


@dataclass
class CaptureWeightRequest:
    step_id: str
    requested_by: Signer


@dataclass
class WeightReading:
    """A stable scale reading: the instrument's own frames beside the parsed value."""

    equipment_id: str
    value: str  # in the step's unit, at the scale's resolution
    unit: str
    device_value: str  # as the scale sent it
    device_unit: str
    raw_frames: list[str]
    device_serial: str
    read_at: str
    in_tolerance: bool


@dataclass
class CompleteStepRequest:
    step_id: str
    signature: SignatureIntent
    entered_value: str | None = None  # check steps: the entered value, as text
    comment: str = ""


@dataclass
class ScanMaterialRequest:
    """A pick step: the operator scanned the GS1 label of the container they picked."""

    step_id: str
    barcode: str  # element string as the scanner sends it, or the printed (01)…(10)… text
    requested_by: Signer


@dataclass
class MaterialScanned:
    """The lot a pick step will issue, as the WMS verified it from the scanned label."""

    material_code: str
    lot_number: str
    gtin: str
    expiry: str
    quantity: str  # what completing the step issues, in `unit`
    unit: str


@dataclass
class HoldRequest:
    """Any operator of the batch stops it with a signed reason; supervisor or QA restart."""

    reason: str
    signature: SignatureIntent


@dataclass
class VerifyStepRequest:
    step_id: str
    signature: SignatureIntent


@dataclass
class CorrectValueRequest:
    """A new value for a recorded entry; the original stays in the record beside it."""

    step_id: str
    value: str
    reason: str
    signature: SignatureIntent


@dataclass
class StepOutcome:
    step_id: str
    result: str  # "pass" or "fail"
    content_sha256: str
    signature_id: int
    next_step_id: str | None


@dataclass
class ReleaseRequest:
    signature: SignatureIntent
    reason: str = ""


@dataclass
class StateChangeRequest:
    """Hold, restart or abort: a signed decision with a reason (the meaning says which)."""

    signature: SignatureIntent
    reason: str


@dataclass
class DispositionUpdate:
    """QA's signed decision on a deviation that holds a step: accept, reject or rework."""

    deviation_id: str
    disposition: str
    rationale: str
    signature: SignatureIntent
    capa_ref: str = ""


@dataclass
class CommentRequest:
    step_id: str
    author: Signer
    text: str


@dataclass
class CommentOutcome:
    event_id: int


@dataclass
class ReleaseOutcome:
    state: str
    content_sha256: str
    signature_id: int


# --- queries ------------------------------------------------------------------


@dataclass
class StateQuery:
    """Empty on purpose: every query takes one dataclass."""


@dataclass
class StepView:
    step_id: str
    kind: str
    title: str
    status: str  # pending | active | done
    result: str | None = None
    value: str | None = None
    unit: str | None = None
    signed_by: str | None = None
    signed_at: str | None = None
    verify_role: str | None = None
    verified_by: str | None = None
    corrections: int = 0
    # When the step became active (workflow time, ISO): hold steps show their elapsed time.
    active_since: str | None = None
    # WEIGH / PICK: the quantity due and its limits (a CALC result when `target_from`).
    target: str | None = None
    low: str | None = None
    high: str | None = None
    alert: str = ""  # a value outside the alert limits, flagged for review


@dataclass
class Awaiting:
    """What the batch waits for now, and who may do it."""

    action: str  # weigh | scan | perform | verify | device | disposition | restart | release
    step_id: str | None
    roles: list[str]
    meaning: str = ""  # the signature meaning the action is signed with ('' = none)


@dataclass
class BatchView:
    batch_id: str
    state: str
    current_step_id: str | None
    steps: list[StepView]
    pending_reading: WeightReading | None = None
    mixing: bool = False
    report: ReportRef | None = None
    hold_reason: str = ""
    active_step_ids: list[str] = field(default_factory=list)
    open_deviations: dict[str, str] = field(default_factory=dict)  # deviation id -> step
    awaiting: list[Awaiting] = field(default_factory=list)
    # Holds: when the current one began (ISO, '' when running) and the seconds of the
    # holds already ended; the API adds the running hold's elapsed time at query time.
    held_since: str = ""
    held_total_s: int = 0
    pending_signatures: list[Awaiting] = field(default_factory=list)
    pending_scan: MaterialScanned | None = None


# --- activities ---------------------------------------------------------------


@dataclass
class BatchEvent:
    """A batch lifecycle fact for the record store; `key` makes the write idempotent."""

    batch_id: str
    key: str
    action: str
    state: str
    actor: str
    at: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass
class EventRecorded:
    event_id: int


@dataclass
class ReadWeightInput:
    batch_id: str
    step_id: str
    equipment_id: str
    unit: str
    low: str
    high: str


@dataclass
class MixInput:
    batch_id: str
    step_id: str
    equipment_id: str
    speed_rpm: int
    duration_s: int


@dataclass
class PlcSetInput:
    batch_id: str
    step_id: str  # the phase instance
    equipment_id: str
    tag: str
    value: str  # decimal text in the tag's engineering unit


@dataclass
class PlcReadInput:
    batch_id: str
    step_id: str
    equipment_id: str
    tag: str


@dataclass
class PlcValue:
    """A tag value as the PLC holds it (read back after a write, or read)."""

    equipment_id: str
    tag: str
    value: str  # decimal text
    read_at: str


@dataclass
class LabelInput:
    batch_id: str
    step_id: str  # the phase instance; names the label file
    content: str


@dataclass
class LabelPrinted:
    path: str
    sha256: str
    replayed: bool = False  # the same label had been written before (a retried activity)


@dataclass
class MixRun:
    """What the PLC reported for a finished mix: its own counters, not our clock."""

    equipment_id: str
    speed_rpm: int  # read back from the PLC while running
    run_time_s: int  # as counted by the PLC
    started_at: str
    finished_at: str


@dataclass
class StepRecordInput:
    """A completed step: the values and the signature that binds them, by hash."""

    batch_id: str
    step_id: str
    update_id: str
    kind: str
    title: str
    result: str
    values: dict[str, str]
    signature: SignatureIntent
    reading: WeightReading | None = None
    reason: str = ""  # set for a correction: why the recorded value changed


@dataclass
class VerificationRecordInput:
    batch_id: str
    step_id: str
    update_id: str
    step_sha256: str  # the performed record the verifier attests to
    signature: SignatureIntent


@dataclass
class StepRecorded:
    record_id: int
    content_sha256: str
    signature_id: int


@dataclass
class ReleaseRecordInput:
    batch_id: str
    update_id: str
    decision: str  # released | rejected
    reason: str
    signature: SignatureIntent


@dataclass
class StateChangeRecordInput:
    batch_id: str
    update_id: str
    from_state: str
    to_state: str
    reason: str
    signature: SignatureIntent


@dataclass
class ReportInput:
    batch_id: str
