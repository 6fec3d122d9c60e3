"""Pure rules of the phase kinds: typed entries, alert and action limits, calculated
targets, calculations and label text.

Deterministic and free of I/O, so the batch workflow calls them inside the sandbox and
unit tests call them directly. A value the operator can fix raises a non-retryable
`ApplicationError` typed `BadValue`, which the API answers with 422.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from temporalio.exceptions import ApplicationError

from recipes.expr import evaluate
from recipes.plan import (
    VALUE_BOOLEAN,
    VALUE_INTEGER,
    VALUE_TEXT,
    BatchPlan,
    Limits,
    MaterialCharge,
    PlanStep,
)

TRUE_WORDS = ("true", "yes", "pass", "ok", "1")
FALSE_WORDS = ("false", "no", "fail", "0")
MAX_TEXT = 2000


@dataclass(frozen=True)
class Judged:
    """An entered or read value as recorded: its text, the result, and any alert flag."""

    value: str
    result: str  # pass | fail
    alert: str = ""  # set when the value is outside the alert (not the action) limits


@dataclass(frozen=True)
class Due:
    """The quantity a WEIGH or PICK step must deliver, and its acceptance range."""

    target: str
    low: str
    high: str
    unit: str


def number(text: str | None) -> Decimal | None:
    """A finite decimal from recorded text, or None (text entries, booleans, nothing)."""
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_decimal(text: str | None, label: str) -> Decimal:
    value = number(text)
    if value is None:
        raise ApplicationError(f"Enter {label} as a number, e.g. 1.25.", type="BadValue")
    return value


def judge_entry(step: PlanStep, text: str | None) -> Judged:
    """A CHECK step's entry by its value type, against its action and alert limits."""
    label = step.value_label or "the measured value"
    if step.value_type == VALUE_TEXT:
        value = (text or "").strip()
        if not value or len(value) > MAX_TEXT:
            raise ApplicationError(f"Enter {label} as text (1 to {MAX_TEXT} characters).",
                                   type="BadValue")
        return Judged(value, "pass")
    if step.value_type == VALUE_BOOLEAN:
        word = (text or "").strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ApplicationError(f"Answer {label} with yes or no.", type="BadValue")
        return Judged("true" if word in TRUE_WORDS else "false", "pass")
    value = parse_decimal(text, label)
    if step.value_type == VALUE_INTEGER and value != value.to_integral_value():
        raise ApplicationError(f"Enter {label} as a whole number, e.g. 12.", type="BadValue")
    return judge_number(value, step.limits, step.alert_limits)


def judge_number(value: Decimal, limits: Limits | None, alert: Limits | None) -> Judged:
    """Outside the action limits: fail (the recipe's on_fail decides); outside only the
    alert limits: pass, flagged for review."""
    text = str(value)
    if limits is not None and not _within(value, limits):
        return Judged(text, "fail")
    if alert is not None and not _within(value, alert):
        return Judged(text, "pass", f"outside the alert limits {alert.low}-{alert.high} "
                                    f"{alert.unit}")
    return Judged(text, "pass")


def _within(value: Decimal, limits: Limits) -> bool:
    return Decimal(limits.low) <= value <= Decimal(limits.high)


def calc_inputs(plan: BatchPlan, recorded: Iterable[tuple[str, str | None]]) -> dict[str, Decimal]:
    """What a CALC expression may read: parameters, then each step's latest numeric value."""
    values: dict[str, Decimal] = {p.id: Decimal(p.value) for p in plan.parameters}
    for step_id, text in recorded:
        value = number(text)
        if value is not None:
            values[step_id] = value
    return values


def calculate(step: PlanStep, values: Mapping[str, Decimal]) -> str:
    """A CALC step's result rounded half-even to its decimals; ExpressionError when the
    expression cannot be evaluated with what is recorded."""
    result = evaluate(step.expression or "", values)
    if step.decimals is not None:
        result = result.quantize(Decimal(1).scaleb(-step.decimals), rounding=ROUND_HALF_EVEN)
    return str(result)



def due(step: PlanStep, computed: str | None) -> Due | None:
    """The target and limits of a WEIGH or PICK step: the formula's, or around a CALC
    result (`target_from`) by the charge's tolerance."""
    material = step.material
    if material is None:
        return None
    if not step.target_from:
        return Due(material.target, material.low, material.high, material.unit)
    target = number(computed)
    if target is None:
        raise ApplicationError(
            f"{step.title} takes its quantity from {step.target_from}, which has no result "
            "yet: complete that calculation first.",
            type="MissingTarget",
        )
    low, high = _tolerance(material, target)
    return Due(str(target), str(low), str(high), material.unit)


def _tolerance(material: MaterialCharge, target: Decimal) -> tuple[Decimal, Decimal]:
    if material.tolerance_absolute is not None:
        band = Decimal(material.tolerance_absolute)
    elif material.tolerance_percent is not None:
        band = target * Decimal(material.tolerance_percent) / 100
    else:  # the formula's own band, moved to the computed target
        below = Decimal(material.target) - Decimal(material.low)
        above = Decimal(material.high) - Decimal(material.target)
        return target - below, target + above
    exponent = min(target.as_tuple().exponent, -2)  # type: ignore[type-var]
    band = band.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)
    return target - band, target + band


_PLACEHOLDER = re.compile(r"\{(batch_id|product_code|product_name|recipe|step:[^{}]+)\}")


def render_label(
    template: str, batch_id: str, plan: BatchPlan, recorded: Mapping[str, str | None]
) -> str:
    """The label text: {batch_id}, {product_code}, {product_name}, {recipe} and
    {step:<id>} (that step's recorded value) filled in; anything else stays as written."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("step:"):
            step_id = name[5:]
            value = recorded.get(step_id)
            if value is None:
                raise ApplicationError(
                    f"The label needs the value of {step_id}, which is not recorded yet.",
                    type="MissingValue", non_retryable=True,
                )
            return value
        return {
            "batch_id": batch_id,
            "product_code": plan.product_code,
            "product_name": plan.product_name,
            "recipe": f"{plan.recipe_id} {plan.recipe_version}",
        }[name]

    return _PLACEHOLDER.sub(fill, template)
