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
import re
from collections.abc import Callable
from dataclasses import asdict
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from recipes import units
from recipes.errors import Problem, RecipeError
from recipes.model import (
    CalcPhase,
    CheckPhase,
    EntryPhase,
    EquipmentRole,
    Flow,
    InstructionPhase,
    LabelPhase,
    MaterialInput,
    MixPhase,
    Parameter,
    Phase,
    PickPhase,
    PlcReadPhase,
    PlcSetPhase,
    Recipe,
    SignoffPhase,
    Step,
    Test,
    TimerPhase,
    WeighPhase,
)
from recipes.model import Limits as RecipeLimits
from recipes.plan import (
    CALC,
    CHECK,
    IF,
    INSTRUCTION,
    LABEL,
    LOOP,
    MIX,
    PARALLEL,
    PICK,
    PLC_READ,
    PLC_SET,
    SEQUENCE,
    SIGNOFF,
    STEP,
    TIMER,
    WEIGH,
    BatchPlan,
    Condition,
    EquipmentRequirement,
    FlowNode,
    Limits,
    MaterialCharge,
    PlanStep,
)
from recipes.plan import Parameter as PlanParameter

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
        parameters = [context.parameter(p) for p in recipe.formula.parameters]
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
        equipment=[_requirement(e) for e in recipe.equipment],
        steps=steps,
        flow=_flow_node(recipe.procedure.flow) if recipe.procedure.flow else None,
        parameters=parameters,
        effective=header.effective.isoformat() if header.effective else None,
        expiry=header.expiry.isoformat() if header.expiry else None,
    )


def _requirement(role: EquipmentRole) -> EquipmentRequirement:
    span = role.range
    return EquipmentRequirement(
        role.role,
        role.equipment_class,
        role.description,
        unit=span.unit if span else None,
        min_capacity=_text(span.min) if span else None,
        max_capacity=_text(span.max) if span else None,
        max_resolution=_text(role.resolution) if role.resolution is not None else None,
        require_calibrated=role.calibrated,
        require_clean=role.clean,
        max_hours_since_cleaning=role.max_hours_since_cleaning,
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
        return FlowNode(
            IF, children=[node], condition=_condition(flow.when),
            otherwise=_flattened(flow.otherwise),
        )
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
        phase = step.phase
        fields.setdefault("perform_role", phase.perform_role or "operator")
        fields.setdefault("sign_meaning", phase.sign_meaning or "performed")
        return PlanStep(
            step_id=step.step_id,
            kind=kind,
            unit_procedure=step.unit_procedure.id,
            operation=step.operation.id,
            equipment_role=phase.equipment,
            verify_role=phase.verify_role,
            **fields,
        )

    def parameter(self, parameter: Parameter) -> PlanParameter:
        return PlanParameter(
            parameter.id, parameter.name, _text(self.scaled_parameter(parameter)), parameter.unit
        )

    def scaled_parameter(self, parameter: Parameter) -> Decimal:
        if not parameter.scaled:
            return parameter.value
        quantum = Decimal(1).scaleb(min(MIN_QUANTUM_EXPONENT, parameter.value.as_tuple().exponent))
        return (parameter.value * self.factor).quantize(quantum, ROUND_HALF_EVEN)

    def weigh(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, WeighPhase)
        charge = self.charge(self.recipe.formula.input(phase.material), step_id)
        unit = charge.unit
        if phase.target_calc:
            default = (
                f"Weigh the quantity of {charge.material_name} ({charge.material_code}) "
                f"calculated by step {phase.target_calc}, in {unit}, on the {phase.equipment}; "
                f"tolerance {_tolerance_text(charge)}."
            )
        else:
            default = (
                f"Weigh {charge.target} {unit} of {charge.material_name} "
                f"({charge.material_code}) on the {phase.equipment}; accepted {charge.low} to "
                f"{charge.high} {unit}."
            )
        return {
            "title": phase.name or f"Weigh {charge.material_name}",
            "instruction": phase.instruction or default,
            "material": charge,
            "target_from": phase.target_calc,
        }

    def pick(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, PickPhase)
        charge = self.charge(self.recipe.formula.input(phase.material), step_id)
        quantity = (
            f"the quantity calculated by step {phase.target_calc}" if phase.target_calc
            else f"{charge.target} {charge.unit}"
        )
        default = (
            f"Pick {quantity} of {charge.material_name} ({charge.material_code}) from a lot "
            f"with status {charge.lot_status} and scan the lot's label."
        )
        return {
            "title": phase.name or f"Pick {charge.material_name}",
            "instruction": phase.instruction or default,
            "material": charge,
            "target_from": phase.target_calc,
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
        absolute = (
            _text(units.convert(tolerance.absolute, tolerance.unit, item.unit).normalize())
            if tolerance.absolute is not None and tolerance.unit is not None
            else None
        )
        return MaterialCharge(
            material_code=item.material,
            material_name=item.name,
            target=_text(target),
            unit=item.unit,
            low=_text(low),
            high=_text(high),
            tolerance_percent=_text(tolerance.percent) if tolerance.percent is not None else None,
            tolerance_absolute=absolute,
            lot_status=item.lot_status,
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
            "alert_limits": _limits(phase.alert_limits, phase.limits.unit),
            "value_label": phase.label,
            "on_fail": phase.on_fail,
        }

    def instruction(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, InstructionPhase)
        return {"title": phase.name or _humanize(phase.id), "instruction": phase.instruction}

    def entry(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, EntryPhase)
        unit = phase.unit or (phase.limits.unit if phase.limits else None)
        limits = _limits(phase.limits, unit)
        alert = _limits(phase.alert_limits, unit)
        if limits:
            accepted = f"; accepted {limits.low} to {limits.high} {limits.unit}"
        else:
            accepted = f" ({phase.value_type}{' in ' + unit if unit else ''})"
        return {
            "title": phase.name or phase.label,
            "instruction": phase.instruction or f"Enter {phase.label}{accepted}.",
            "limits": limits,
            "alert_limits": alert,
            "value_label": phase.label,
            "value_type": phase.value_type,
            "unit": unit,
            "on_fail": phase.on_fail,
        }

    def timer(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, TimerPhase)
        formula = self.recipe.formula
        shortest = self.whole(formula.parameter(phase.min_duration), "s")
        longest = (
            self.whole(formula.parameter(phase.max_duration), "s") if phase.max_duration else None
        )
        bound = f", at most {_duration_text(longest)}" if longest is not None else ""
        return {
            "title": phase.name or _humanize(phase.id),
            "instruction": phase.instruction
            or f"Hold for at least {_duration_text(shortest)}{bound}, then confirm.",
            "min_duration_s": shortest,
            "max_duration_s": longest,
        }

    def plc_set(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, PlcSetPhase)
        if isinstance(phase.setpoint, str):
            parameter = self.recipe.formula.parameter(phase.setpoint)
            unit = phase.unit or parameter.unit
            value = units.convert(self.scaled_parameter(parameter), parameter.unit, unit)
        else:
            unit, value = phase.unit, phase.setpoint
        setpoint = _text(value.quantize(SETPOINT_QUANTUM, ROUND_HALF_EVEN).normalize())
        shown = f"{setpoint} {unit}" if unit else setpoint
        return {
            "title": phase.name or _humanize(phase.id),
            "instruction": phase.instruction
            or f"Set {phase.tag} of the {phase.equipment} to {shown}.",
            "tag": phase.tag,
            "setpoint": setpoint,
            "unit": unit,
        }

    def plc_read(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, PlcReadPhase)
        limits = _limits(phase.limits, phase.unit)
        label = phase.label or phase.tag
        accepted = f"; accepted {limits.low} to {limits.high} {limits.unit}" if limits else ""
        return {
            "title": phase.name or label,
            "instruction": phase.instruction
            or f"Read {phase.tag} of the {phase.equipment} in {phase.unit}{accepted}.",
            "tag": phase.tag,
            "unit": phase.unit,
            "limits": limits,
            "alert_limits": _limits(phase.alert_limits, phase.unit),
            "value_label": label,
            "on_fail": phase.on_fail,
        }

    def calc(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, CalcPhase)
        return {
            "title": phase.name or _humanize(phase.id),
            "instruction": phase.instruction
            or f"Calculated: {phase.expression} (in {phase.unit}, rounded to "
            f"{phase.decimals} decimal{'' if phase.decimals == 1 else 's'}).",
            "expression": phase.expression,
            "decimals": phase.decimals,
            "unit": phase.unit,
            "value_label": phase.name or _humanize(phase.id),
        }

    def label(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, LabelPhase)
        step_ids = [s.step_id for s in self.recipe.procedure.steps()]

        def full(match: re.Match[str]) -> str:
            (resolved,) = _resolve(match.group(1), step_ids)  # validated: exactly one
            return "{step:" + resolved + "}"

        return {
            "title": phase.name or _humanize(phase.id),
            "instruction": phase.instruction or "Print the label and apply it.",
            "label_template": _STEP_PLACEHOLDER.sub(full, phase.template),
        }

    def signoff(self, phase: Phase, step_id: str) -> dict[str, object]:
        assert isinstance(phase, SignoffPhase)
        return {
            "title": phase.name or f"Sign-off: {phase.meaning} by {phase.role}",
            "instruction": phase.instruction
            or f"A person with the {phase.role} role signs: {phase.meaning}.",
            "perform_role": phase.role,
            "sign_meaning": phase.meaning,
        }


_STEP_PLACEHOLDER = re.compile(r"\{step:([^{}]+)\}")
# PLC setpoints are given to at most 6 decimals (a converted unit would give more).
SETPOINT_QUANTUM = Decimal("0.000001")


def _resolve(ref: str, step_ids: list[str]) -> list[str]:
    parts = ref.split("/")
    return [s for s in step_ids if s.split("/")[-len(parts):] == parts]


def _limits(limits: RecipeLimits | None, unit: str | None) -> Limits | None:
    """Limits in `unit` (converted when written in another unit), as decimal strings."""
    if limits is None:
        return None
    if unit is None or unit == limits.unit:
        return Limits(_text(limits.low), _text(limits.high), limits.unit)
    low, high = (units.convert(v, limits.unit, unit) for v in (limits.low, limits.high))
    return Limits(_text(low.normalize()), _text(high.normalize()), unit)


def _tolerance_text(charge: MaterialCharge) -> str:
    if charge.tolerance_percent is not None:
        return f"+/-{charge.tolerance_percent} %"
    return f"+/-{charge.tolerance_absolute} {charge.unit}"


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
    EntryPhase: (CHECK, _Context.entry),
    InstructionPhase: (INSTRUCTION, _Context.instruction),
    TimerPhase: (TIMER, _Context.timer),
    PlcSetPhase: (PLC_SET, _Context.plc_set),
    PlcReadPhase: (PLC_READ, _Context.plc_read),
    PickPhase: (PICK, _Context.pick),
    CalcPhase: (CALC, _Context.calc),
    LabelPhase: (LABEL, _Context.label),
    SignoffPhase: (SIGNOFF, _Context.signoff),
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
