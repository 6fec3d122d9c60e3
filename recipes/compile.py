"""Compile a validated `Recipe` into the frozen `BatchPlan` a batch workflow interprets.

The recipe is interpreted here, outside the workflow: the workflow only receives the plan.

Scaling and rounding rules (all Decimal, never float):

* factor = ordered batch size / nominal batch size (Decimal division, 60 significant
  digits).
* Input quantities with `scaled: true` (the default) and parameters with `scaled: true`
  are multiplied by the factor; the others are used as written.
* A weigh target is quantized to 0.01 of the input's unit, or finer when the quantity was
  written with more decimals (1.234 kg stays at 0.001 kg), with ROUND_HALF_EVEN.
* The weigh window is target -/+ tolerance: `percent` of the quantized target, or the
  `absolute` tolerance converted into the input's unit (not scaled). The window is rounded
  *inwards* at the target's resolution (low up, high down), so it never exceeds the stated
  tolerance.
* Mix speed is converted to rpm and duration to seconds with pint, then rounded to whole
  numbers with ROUND_HALF_EVEN (the validator already demands whole numbers at the nominal
  size; rounding only matters for scaled parameters).
* Check limits are copied exactly as written.

Procedure logic (`parallel:`, `repeat:`, `when:`) becomes `BatchPlan.flow`, a tree over the
same step ids; `BatchPlan.steps` stays every phase once in written order, and a recipe
without procedure logic keeps `flow = None` (the steps in order). Nested sequences are
flattened into their parent, so each unit procedure, operation and block is a top-level
element of the flow, where a long batch may continue as new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from recipes import units
from recipes.errors import Problem, RecipeError
from recipes.model import (
    CheckPhase,
    Flow,
    InstructionPhase,
    MaterialInput,
    MixPhase,
    Parameter,
    Phase,
    Recipe,
    Step,
    Test,
    WeighPhase,
)
from recipes.plan import (
    CHECK,
    IF,
    INSTRUCTION,
    LOOP,
    MIX,
    PARALLEL,
    SEQUENCE,
    STEP,
    WEIGH,
    BatchPlan,
    Condition,
    EquipmentRequirement,
    FlowNode,
    Limits,
    MaterialCharge,
    PlanStep,
)

MIN_QUANTUM_EXPONENT = -2  # targets are given to at least 0.01 of their unit
DECIMAL_PRECISION = 60  # significant digits; recipe numbers have at most 30 characters


def compile_plan(recipe: Recipe, batch_size: Decimal | None = None) -> BatchPlan:
    """The plan for one batch of `batch_size` (in the recipe's batch unit; default nominal).

    Raises `RecipeError` when the batch size is outside the recipe's min..max, or when a
    weigh window would not be positive at that size.
    """
    size = _batch_size(recipe, batch_size)
    with localcontext(prec=DECIMAL_PRECISION):
        context = _Context(recipe, size / recipe.header.batch_size.nominal)
        steps = [context.step(step) for step in recipe.procedure.steps()]
    if len({s.step_id for s in steps}) != len(steps):
        raise RecipeError.single(recipe.source, "step ids are not unique; validate the recipe")
    header = recipe.header
    return BatchPlan(
        recipe_id=header.id,
        recipe_version=header.version,
        recipe_sha256=recipe.sha256,
        product_code=header.product.code,
        product_name=header.product.name,
        batch_size=_text(size),
        batch_unit=header.batch_size.unit,
        equipment=[
            EquipmentRequirement(e.role, e.equipment_class, e.description) for e in recipe.equipment
        ],
        steps=steps,
        flow=_flow_node(recipe.procedure.flow) if recipe.procedure.flow else None,
    )


def _flow_node(flow: Flow) -> FlowNode:
    """The plan's flow tree; `when` becomes an `if` around the element it guards."""
    if flow.kind == "step":
        node = FlowNode(STEP, step_id=flow.step_id)
    elif flow.kind == "repeat":
        assert flow.until is not None
        node = FlowNode(
            LOOP,
            children=_flattened(flow.children),
            condition=_condition(flow.until),
            max_iterations=flow.at_most,
        )
    else:
        kind = PARALLEL if flow.kind == "parallel" else SEQUENCE
        children = (
            [_flow_node(c) for c in flow.children] if kind == PARALLEL
            else _flattened(flow.children)
        )
        node = FlowNode(kind, children=children)
    if flow.when is not None:
        return FlowNode(IF, children=[node], condition=_condition(flow.when))
    return node


def _flattened(children: tuple[Flow, ...]) -> list[FlowNode]:
    nodes: list[FlowNode] = []
    for child in children:
        node = _flow_node(child)
        nodes.extend(node.children if node.kind == SEQUENCE else [node])
    return nodes


def _condition(test: Test) -> Condition:
    return Condition(test.step_id, test.op, _text(test.value) if test.value is not None else None)


def _batch_size(recipe: Recipe, batch_size: Decimal | int | str | None) -> Decimal:
    allowed = recipe.header.batch_size
    if batch_size is None:
        return allowed.nominal
    if isinstance(batch_size, float | bool):
        raise TypeError("batch_size must be a Decimal (floats are not exact), e.g. Decimal('3')")
    size = Decimal(batch_size)
    if not (size.is_finite() and allowed.min <= size <= allowed.max):
        unit = allowed.unit
        raise RecipeError(
            [
                Problem(
                    recipe.source,
                    recipe.line_of("header.batch_size"),
                    "header.batch_size",
                    f"batch size {size} {unit} is outside the range this recipe allows "
                    f"({_text(allowed.min)} to {_text(allowed.max)} {unit}); order a size in "
                    "that range or use a recipe made for this size",
                )
            ]
        )
    return size


def _text(value: Decimal) -> str:
    """Plain decimal notation, never exponent notation."""
    return format(value, "f")


def _humanize(identifier: str) -> str:
    words = identifier.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


class _Context:
    def __init__(self, recipe: Recipe, factor: Decimal) -> None:
        self.recipe = recipe
        self.factor = factor

    def step(self, step: Step) -> PlanStep:
        kind, build = _BUILDERS[type(step.phase)]
        fields = build(self, step.phase, step.step_id)
        return PlanStep(
            step_id=step.step_id,
            kind=kind,
            unit_procedure=step.unit_procedure.id,
            operation=step.operation.id,
            equipment_role=step.phase.equipment,
            verify_role=step.phase.verify_role,
            **fields,
        )

    def weigh(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, WeighPhase)
        charge = self.charge(self.recipe.formula.input(phase.material), step_id)
        unit = charge.unit
        default = (
            f"Weigh {charge.target} {unit} of {charge.material_name} ({charge.material_code}) "
            f"on the {phase.equipment}; accepted {charge.low} to {charge.high} {unit}."
        )
        return {
            "title": phase.name or f"Weigh {charge.material_name}",
            "instruction": phase.instruction or default,
            "material": charge,
        }

    def charge(self, item: MaterialInput, step_id: str) -> MaterialCharge:
        quantum = Decimal(1).scaleb(min(MIN_QUANTUM_EXPONENT, item.quantity.as_tuple().exponent))
        exact = item.quantity * self.factor if item.scaled else item.quantity
        target = exact.quantize(quantum, ROUND_HALF_EVEN)
        tolerance = item.tolerance
        if tolerance.percent is not None:
            band = target * tolerance.percent / 100
        else:
            assert tolerance.absolute is not None and tolerance.unit is not None
            band = units.convert(tolerance.absolute, tolerance.unit, item.unit)
        low = (target - band).quantize(quantum, ROUND_CEILING)
        high = (target + band).quantize(quantum, ROUND_FLOOR)
        if not (Decimal(0) < low <= high):
            raise RecipeError.single(
                self.recipe.source,
                f"step {step_id}: at this batch size the target of {item.material} is "
                f"{_text(target)} {item.unit} and its tolerance leaves no positive window "
                f"({_text(low)} to {_text(high)}); order a larger batch or narrow the tolerance",
            )
        return MaterialCharge(
            material_code=item.material,
            material_name=item.name,
            target=_text(target),
            unit=item.unit,
            low=_text(low),
            high=_text(high),
        )

    def whole(self, parameter: Parameter, unit: str) -> int:
        value = parameter.value * self.factor if parameter.scaled else parameter.value
        converted = units.convert(value, parameter.unit, unit)
        return int(converted.quantize(Decimal(1), ROUND_HALF_EVEN))

    def mix(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, MixPhase)
        formula = self.recipe.formula
        speed = self.whole(formula.parameter(phase.speed), "rpm")
        duration = self.whole(formula.parameter(phase.duration), "s")
        default = f"Run the {phase.equipment} at {speed} rpm for {_duration_text(duration)}."
        return {
            "title": phase.name or _humanize(phase.id),
            "instruction": phase.instruction or default,
            "speed_rpm": speed,
            "duration_s": duration,
        }

    def check(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, CheckPhase)
        limits = Limits(_text(phase.limits.low), _text(phase.limits.high), phase.limits.unit)
        default = (
            f"Measure {phase.label} and enter the result; accepted {limits.low} to "
            f"{limits.high} {limits.unit}."
        )
        return {
            "title": phase.name or phase.label,
            "instruction": phase.instruction or default,
            "limits": limits,
            "value_label": phase.label,
            "on_fail": phase.on_fail,
        }

    def instruction(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, InstructionPhase)
        return {"title": phase.name or _humanize(phase.id), "instruction": phase.instruction}


def _duration_text(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if minutes and not rest:
        return f"{minutes} min"
    if minutes:
        return f"{minutes} min {rest} s"
    return f"{seconds} s"


_Builder = Callable[[_Context, Phase, str], dict[str, object]]
_BUILDERS: dict[type[Phase], tuple[str, _Builder]] = {
    WeighPhase: (WEIGH, _Context.weigh),
    MixPhase: (MIX, _Context.mix),
    CheckPhase: (CHECK, _Context.check),
    InstructionPhase: (INSTRUCTION, _Context.instruction),
}


def plan_dict(plan: BatchPlan) -> dict[str, Any]:
    """The plan as plain JSON data (Decimal quantities are already strings in the plan)."""
    return asdict(plan)


def plan_sha256(plan: BatchPlan) -> str:
    """SHA-256 of the canonical JSON of the plan (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(
        plan_dict(plan), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
