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
STEP_KINDS = (WEIGH, MIX, CHECK, INSTRUCTION, TIMER)

# Procedure logic (ISA-88 transitions, divergence and convergence), as a tree.
STEP = "step"  # run one phase
SEQUENCE = "sequence"  # children one after the other
PARALLEL = "parallel"  # children at the same time; done when all are done
LOOP = "loop"  # children again until the condition holds, at most max_iterations times
IF = "if"  # children when the condition holds, `otherwise` when it does not
FLOW_KINDS = (STEP, SEQUENCE, PARALLEL, LOOP, IF)

# What a check result outside its limits should do (the recipe's exception policy). Carried
# in the plan for the workflow's owner; the batch does not act on it yet (always warn).
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


@dataclass(frozen=True)
class EquipmentRequirement:
    """An equipment role the recipe needs; bound to a real equipment id at batch start."""

    role: str
    equipment_class: str
    description: str = ""


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
    # Exception policy of a check (ON_FAIL_POLICIES); not enforced by the workflow yet.
    on_fail: str = ON_FAIL_WARN
    # Timer steps: completing before the minimum is refused; passing the maximum is an
    # excursion recorded for review.
    min_duration_s: int | None = None
    max_duration_s: int | None = None


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

    def step(self, step_id: str) -> PlanStep | None:
        return next((s for s in self.steps if s.step_id == step_id), None)
