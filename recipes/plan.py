"""The compiled execution plan: the frozen data a batch workflow interprets.

Standard library only, so the Temporal workflow sandbox can import it. Decimal
quantities travel as strings (exact, and plain JSON) and are parsed with
`decimal.Decimal` where they are compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PLAN_FORMAT = "ebr.plan/1"

# What a phase does, and therefore which operator action completes it.
WEIGH = "weigh"  # dispense a material on a scale; the scale's stable reading is the value
MIX = "mix"  # run a mixer at a speed for a duration through its PLC
CHECK = "check"  # the operator enters a measured value, judged against limits
INSTRUCTION = "instruction"  # the operator confirms an instruction was carried out
TIMER = "timer"  # a hold time on workflow time: at least min_duration_s, at most max_duration_s
PLC_SET = "plc_set"  # write `setpoint` to a PLC tag, verified by reading it back (no operator)
PLC_READ = "plc_read"  # read a PLC tag and judge it against the limits (no operator)
PICK = "pick"  # pick a material lot from the WMS: the operator scans the lot's GS1 label
CALC = "calc"  # evaluate `expression` over recorded values and parameters (no operator)
LABEL = "label"  # print a label from `label_template` (no operator)
SIGNOFF = "signoff"  # a person holding `perform_role` signs with `sign_meaning`
STEP_KINDS = (WEIGH, MIX, CHECK, INSTRUCTION, TIMER, PLC_SET, PLC_READ, PICK, CALC, LABEL, SIGNOFF)
# Kinds the workflow completes by itself through activities or evaluation.
AUTOMATIC_KINDS = (MIX, PLC_SET, PLC_READ, CALC, LABEL)

# Value types of a data entry (CHECK) step.
VALUE_DECIMAL, VALUE_INTEGER, VALUE_TEXT, VALUE_BOOLEAN = "decimal", "integer", "text", "boolean"
VALUE_TYPES = (VALUE_DECIMAL, VALUE_INTEGER, VALUE_TEXT, VALUE_BOOLEAN)

# Procedure logic (ISA-88 transitions, divergence and convergence), as a tree.
STEP = "step"  # run one phase
SEQUENCE = "sequence"  # children one after the other
PARALLEL = "parallel"  # children at the same time; done when all are done
LOOP = "loop"  # children again until the condition holds, at most max_iterations times
IF = "if"  # children when the condition holds, `otherwise` when it does not
FLOW_KINDS = (STEP, SEQUENCE, PARALLEL, LOOP, IF)

# What a value outside its action limits (or a device failure) should do: the recipe's
# exception policy.
ON_FAIL_WARN, ON_FAIL_HOLD, ON_FAIL_ABORT = "warn", "hold", "abort"
ON_FAIL_POLICIES = (ON_FAIL_WARN, ON_FAIL_HOLD, ON_FAIL_ABORT)

# Tests a condition makes on a recorded step.
PASSED, FAILED, LT, LE, GT, GE = "passed", "failed", "lt", "le", "gt", "ge"
CONDITION_OPS = (PASSED, FAILED, LT, LE, GT, GE)


@dataclass(frozen=True)
class Limits:
    """Inclusive acceptance range; `low`/`high` are decimal strings in `unit`."""

    low: str
    high: str
    unit: str


@dataclass(frozen=True)
class MaterialCharge:
    """A quantity of one input material, already scaled to the ordered batch size."""

    material_code: str
    material_name: str
    target: str
    unit: str
    low: str
    high: str
    # The tolerance as written, so a target computed at run time (a CALC step's result,
    # e.g. a potency-adjusted quantity) gets its limits the same way. One of the two.
    tolerance_percent: str | None = None
    tolerance_absolute: str | None = None  # in `unit`
    # Lot status the WMS must report for a lot to be used ("released" unless stated).
    lot_status: str = "released"


@dataclass(frozen=True)
class EquipmentRequirement:
    """An equipment role the recipe needs; bound to a real equipment id at batch start."""

    role: str
    equipment_class: str
    description: str = ""
    # What the bound equipment must offer (decimal strings in `unit`); None: no constraint.
    unit: str | None = None
    min_capacity: str | None = None  # the equipment's range must reach down to this
    max_capacity: str | None = None  # ... and up to this
    max_resolution: str | None = None  # the equipment's readability must be this or finer
    # Preconditions checked when the batch binds equipment.
    require_calibrated: bool = True
    require_clean: bool = True
    max_hours_since_cleaning: int | None = None


@dataclass(frozen=True)
class Parameter:
    """A process parameter, already scaled to the ordered batch size when it scales."""

    id: str
    name: str
    value: str  # decimal string in `unit`
    unit: str


@dataclass(frozen=True)
class PlanStep:
    """One phase, flattened in execution order with its place in the ISA-88 hierarchy."""

    step_id: str
    kind: str
    title: str
    instruction: str
    unit_procedure: str
    operation: str
    equipment_role: str | None = None
    material: MaterialCharge | None = None
    limits: Limits | None = None
    value_label: str | None = None
    duration_s: int | None = None
    speed_rpm: int | None = None
    # A second person holding this role must verify the step (four-eyes principle).
    verify_role: str | None = None
    # Exception policy (ON_FAIL_POLICIES) for a value outside the action limits.
    on_fail: str = ON_FAIL_WARN
    # Timer steps: completing before the minimum is refused; passing the maximum is an
    # excursion recorded for review.
    min_duration_s: int | None = None
    max_duration_s: int | None = None
    # Who performs the step and what their signature means (a SIGNOFF step uses both).
    perform_role: str = "operator"
    sign_meaning: str = "performed"
    # CHECK: the value's type and unit; `limits` are the action limits (outside: on_fail),
    # `alert_limits` the narrower alert limits (outside: flagged for review, no action).
    value_type: str = VALUE_DECIMAL
    alert_limits: Limits | None = None
    # PLC_SET / PLC_READ: the tag of the bound equipment, and the setpoint to write.
    tag: str | None = None
    setpoint: str | None = None
    unit: str | None = None  # unit of the setpoint, the read value or the CALC result
    # CALC: an arithmetic expression over step ids (their latest recorded value) and
    # parameter ids, evaluated by recipes.expr (never eval); the result rounds to `decimals`.
    expression: str | None = None
    decimals: int | None = None
    # WEIGH / PICK: the target comes from this CALC step's result instead of the formula.
    target_from: str | None = None
    # LABEL: the text printed, with {batch_id}, {product_code}, {step:<id>} placeholders.
    label_template: str | None = None


@dataclass(frozen=True)
class Condition:
    """A test on the latest recorded value (or result) of one step."""

    step_id: str
    op: str
    value: str | None = None  # decimal string, for the comparisons


@dataclass(frozen=True)
class FlowNode:
    kind: str
    step_id: str | None = None
    children: list[FlowNode] = field(default_factory=list)
    otherwise: list[FlowNode] = field(default_factory=list)
    condition: Condition | None = None
    max_iterations: int = 1


def linear_flow(steps: list[PlanStep]) -> FlowNode:
    return FlowNode(SEQUENCE, children=[FlowNode(STEP, step_id=s.step_id) for s in steps])


@dataclass(frozen=True)
class BatchPlan:
    """Everything a batch needs to run, independent of the YAML it came from."""

    recipe_id: str
    recipe_version: str
    recipe_sha256: str
    product_code: str
    product_name: str
    batch_size: str
    batch_unit: str
    equipment: list[EquipmentRequirement] = field(default_factory=list)
    steps: list[PlanStep] = field(default_factory=list)
    format: str = PLAN_FORMAT
    # How the steps run; None means one after the other in the order of `steps`.
    flow: FlowNode | None = None
    parameters: list[Parameter] = field(default_factory=list)
    # The master recipe's validity window (ISO dates); batches start only inside it.
    effective: str | None = None
    expiry: str | None = None

    def step(self, step_id: str) -> PlanStep | None:
        return next((s for s in self.steps if s.step_id == step_id), None)
