"""The shipped example loads, and compiles to the expected plan at 2 kg and 3 kg."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recipes import plan as plan_module
from recipes.compile import compile_plan
from recipes.errors import RecipeError
from recipes.model import Recipe
from recipes.plan import (
    CHECK,
    INSTRUCTION,
    MIX,
    PLAN_FORMAT,
    STEP_KINDS,
    WEIGH,
    BatchPlan,
    EquipmentRequirement,
    Limits,
    MaterialCharge,
    PlanStep,
)
from recipes.validate import load_recipe_file

EXPECTED_STEPS = [
    ("dispensing/weigh/weigh-ascorbic-acid", WEIGH),
    ("dispensing/weigh/weigh-mcc", WEIGH),
    ("blending/blend/charge-blender", INSTRUCTION),
    ("blending/blend/blend", MIX),
    ("blending/blend/loss-on-drying", CHECK),
    ("blending/blend/discharge", INSTRUCTION),
]


def test_example_header_and_identity(example: Recipe, example_text: str) -> None:
    assert (example.id, example.version) == ("VC-BLEND", "1.0.0")
    header = example.header
    assert header.product.code == "VC-BLEND-500"
    assert (header.batch_size.nominal, header.batch_size.min, header.batch_size.max) == (2, 1, 4)
    assert header.batch_size.unit == "kg"
    assert (header.effective, header.expiry) == (date(2026, 1, 1), date(2028, 12, 31))
    assert example.source_text == example_text
    assert example.sha256 == hashlib.sha256(example_text.encode("utf-8")).hexdigest()


def test_sha256_is_the_file_bytes(example_path: Path) -> None:
    recipe = load_recipe_file(example_path)
    assert recipe.sha256 == hashlib.sha256(example_path.read_bytes()).hexdigest()
    assert recipe.source == str(example_path)


def test_steps_in_order_with_kinds(example: Recipe) -> None:
    plan = compile_plan(example)
    assert [(s.step_id, s.kind) for s in plan.steps] == EXPECTED_STEPS
    step = plan.steps[0]
    assert (step.unit_procedure, step.operation) == ("dispensing", "weigh")
    assert plan.step("blending/blend/blend") is plan.steps[3]


def test_plan_header_and_equipment(example: Recipe) -> None:
    plan = compile_plan(example)
    assert (plan.recipe_id, plan.recipe_version) == ("VC-BLEND", "1.0.0")
    assert plan.recipe_sha256 == example.sha256
    assert (plan.product_code, plan.product_name) == ("VC-BLEND-500", "Vitamin C 500 mg blend")
    assert (plan.batch_size, plan.batch_unit) == ("2", "kg")
    assert plan.format == PLAN_FORMAT
    assert plan.equipment == [
        EquipmentRequirement("scale", "scale", "Bench scale 0-6 kg, d = 0.01 g"),
        EquipmentRequirement("mixer", "mixer", "V-blender 10 L"),
    ]


@pytest.mark.parametrize(
    ("batch_size", "asc", "mcc"),
    [
        (None, ("1200.00", "1188.00", "1212.00"), ("800.00", "792.00", "808.00")),
        (Decimal("2"), ("1200.00", "1188.00", "1212.00"), ("800.00", "792.00", "808.00")),
        (Decimal("3"), ("1800.00", "1782.00", "1818.00"), ("1200.00", "1188.00", "1212.00")),
        (Decimal("1"), ("600.00", "594.00", "606.00"), ("400.00", "396.00", "404.00")),
    ],
)
def test_weigh_targets_scale_with_batch_size(
    example: Recipe,
    batch_size: Decimal | None,
    asc: tuple[str, str, str],
    mcc: tuple[str, str, str],
) -> None:
    plan = compile_plan(example, batch_size)
    charges = [s.material for s in plan.steps if s.kind == WEIGH]
    assert charges == [
        MaterialCharge("RM-ASC", "Ascorbic acid", asc[0], "g", asc[1], asc[2],
                       tolerance_percent="1"),
        MaterialCharge("RM-MCC", "Microcrystalline cellulose PH-102", mcc[0], "g", *mcc[1:],
                       tolerance_percent="1"),
    ]
    assert all(s.equipment_role == "scale" for s in plan.steps if s.kind == WEIGH)


def test_batch_size_is_recorded_as_given(example: Recipe) -> None:
    assert compile_plan(example, Decimal("3")).batch_size == "3"
    assert compile_plan(example, Decimal("2.5")).batch_size == "2.5"


@pytest.mark.parametrize("batch_size", [Decimal("2"), Decimal("3")])
def test_mix_check_and_instructions_do_not_scale(example: Recipe, batch_size: Decimal) -> None:
    plan = compile_plan(example, batch_size)
    mix = plan.step("blending/blend/blend")
    assert mix is not None
    assert (mix.speed_rpm, mix.duration_s, mix.equipment_role) == (25, 180, "mixer")
    check = plan.step("blending/blend/loss-on-drying")
    assert check is not None
    assert check.limits == Limits("0.0", "2.0", "percent")
    assert check.value_label == "Loss on drying"
    assert check.title == "Loss on drying"
    final = plan.steps[-1]
    assert final.instruction == "Discharge the blend into labelled, tared drums."
    assert (final.title, final.material, final.limits) == ("Discharge", None, None)


def test_batch_size_limits_are_inclusive(example: Recipe) -> None:
    assert compile_plan(example, Decimal("1")).batch_size == "1"
    assert compile_plan(example, Decimal("4.000")).batch_size == "4.000"


@pytest.mark.parametrize("size", ["0.99", "4.01", "0", "-2", "NaN", "Infinity", "sNaN"])
def test_batch_size_outside_the_range_is_refused(example: Recipe, size: str) -> None:
    with pytest.raises(RecipeError) as info:
        compile_plan(example, Decimal(size))
    (problem,) = info.value.problems
    assert problem.path == "header.batch_size"
    assert problem.line == example_line(example, "  batch_size:")
    assert "outside the range this recipe allows (1 to 4 kg)" in problem.message


def test_float_batch_size_is_a_programming_error(example: Recipe) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        compile_plan(example, 3.0)  # type: ignore[arg-type]


def test_plan_is_made_of_the_contract_dataclasses(example: Recipe) -> None:
    plan = compile_plan(example, Decimal("3"))
    assert type(plan) is BatchPlan
    assert all(type(s) is PlanStep and s.kind in STEP_KINDS for s in plan.steps)
    assert all(type(e) is EquipmentRequirement for e in plan.equipment)
    assert type(plan.steps[0].material) is MaterialCharge
    assert type(plan.steps[4].limits) is Limits
    assert BatchPlan.__module__ == plan_module.__name__ == "recipes.plan"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps[0].kind = MIX  # type: ignore[misc]


def test_plan_is_plain_json_with_decimal_strings(example: Recipe) -> None:
    data = json.loads(json.dumps(dataclasses.asdict(compile_plan(example, Decimal("3")))))
    assert data["steps"][0]["material"]["target"] == "1800.00"
    assert data["steps"][3]["duration_s"] == 180
    for step in data["steps"]:
        for key in ("target", "low", "high"):
            if step["material"]:
                Decimal(step["material"][key])  # parses exactly


def example_line(recipe: Recipe, prefix: str) -> int:
    lines = recipe.source_text.splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(prefix))
