"""The typed `Recipe`: exact decimals, typed phases, frozen, and lines for later errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

import pytest

from recipes.compile import compile_plan
from recipes.model import (
    CheckPhase,
    InstructionPhase,
    Limits,
    MixPhase,
    Recipe,
    Tolerance,
    WeighPhase,
)
from recipes.validate import load_recipe


def test_quantities_keep_their_exact_decimal_text(edit: Callable[..., str]) -> None:
    text = edit(
        ("quantity: 1200\n", "quantity: 1200.50\n"),
        ("{low: 0.0, high: 2.0,", "{low: 0.10, high: 2.000,"),
    )
    recipe = load_recipe(text)
    quantity = recipe.formula.inputs[0].quantity
    assert type(quantity) is Decimal and str(quantity) == "1200.50"
    assert recipe.formula.inputs[0].tolerance == Tolerance(percent=Decimal("1"))
    plan = compile_plan(recipe)
    assert plan.steps[0].material is not None
    assert plan.steps[0].material.target == "1200.50"
    assert plan.steps[4].limits is not None
    assert (plan.steps[4].limits.low, plan.steps[4].limits.high) == ("0.10", "2.000")


def test_phases_are_typed(example: Recipe) -> None:
    steps = list(example.procedure.steps())
    assert [type(s.phase) for s in steps] == [
        WeighPhase,
        WeighPhase,
        InstructionPhase,
        MixPhase,
        CheckPhase,
        InstructionPhase,
    ]
    mix = steps[3].phase
    assert isinstance(mix, MixPhase) and (mix.speed, mix.duration) == ("mix_speed", "mix_time")
    check = steps[4].phase
    assert isinstance(check, CheckPhase)
    assert check.limits == Limits(Decimal("0.0"), Decimal("2.0"), "percent")
    assert steps[0].step_id == "dispensing/weigh/weigh-ascorbic-acid"


def test_formula_and_equipment(example: Recipe) -> None:
    formula = example.formula
    assert [i.material for i in formula.inputs] == ["RM-ASC", "RM-MCC"]
    assert formula.input("RM-MCC").quantity == Decimal("800")
    assert formula.parameter("mix_time").unit == "min"
    assert formula.parameter("mix_speed").scaled is False
    assert formula.outputs[0].expected_yield is not None
    assert formula.outputs[0].expected_yield.max == Decimal("100.5")
    assert [(e.role, e.equipment_class) for e in example.equipment] == [
        ("scale", "scale"),
        ("mixer", "mixer"),
    ]


def test_recipe_is_frozen_and_hashable(example: Recipe) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        example.sha256 = "0" * 64  # type: ignore[misc]
    assert isinstance(hash(example), int)
    assert example == load_recipe(example.source_text, example.source)


def test_lines_are_kept_for_later_errors(example: Recipe) -> None:
    lines = example.source_text.splitlines()
    at = example.line_of("procedure.unit_procedures[1].operations[0].phases[2].limits")
    assert at is not None and lines[at - 1].strip().startswith("limits: {low: 0.0")
    assert example.line_of("no.such.path") is None
