"""Scaling, rounding, tolerances, unit conversion and generated texts of `compile_plan`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from recipes.compile import compile_plan
from recipes.errors import RecipeError
from recipes.plan import BatchPlan, MaterialCharge
from recipes.validate import load_recipe

Edit = Callable[..., str]

ASC_LINE = "quantity: 1200\n      unit: g\n      tolerance: {percent: 1}"
MCC_LINE = "quantity: 800\n      unit: g\n      tolerance: {percent: 1}"


def plan_of(text: str, batch_size: str | None = None) -> BatchPlan:
    return compile_plan(load_recipe(text), None if batch_size is None else Decimal(batch_size))


def charges(plan: BatchPlan) -> list[tuple[str, str, str]]:
    return [(s.material.target, s.material.low, s.material.high) for s in plan.steps if s.material]


class TestRounding:
    def test_half_even_at_a_hundredth_and_window_rounded_inwards(self, edit: Edit) -> None:
        text = edit(
            (ASC_LINE, ASC_LINE.replace("1200", "1.01")),
            (MCC_LINE, MCC_LINE.replace("800", "1.03")),
        )
        # 1.01 * 1.5 = 1.515 -> 1.52 and 1.03 * 1.5 = 1.545 -> 1.54 (half to even);
        # 1 % windows 1.5048..1.5352 and 1.5246..1.5554 shrink to whole hundredths.
        assert charges(plan_of(text, "3")) == [
            ("1.52", "1.51", "1.53"),
            ("1.54", "1.53", "1.55"),
        ]

    def test_more_decimals_as_written_are_kept(self, edit: Edit) -> None:
        text = edit((ASC_LINE, ASC_LINE.replace("1200", "1234.567")))
        assert charges(plan_of(text))[0] == ("1234.567", "1222.222", "1246.912")
        # 1851.8505 -> 1851.850 (half to even at the written 0.001 g)
        assert charges(plan_of(text, "3"))[0] == ("1851.850", "1833.332", "1870.368")

    def test_target_text_has_no_exponent(self, edit: Edit) -> None:
        text = edit((ASC_LINE, ASC_LINE.replace("1200", "1000")))
        assert charges(plan_of(text, "4"))[0] == ("2000.00", "1980.00", "2020.00")

    def test_fractional_batch_size(self, example_text: str) -> None:
        plan = plan_of(example_text, "2.5")
        assert plan.batch_size == "2.5"
        assert charges(plan) == [
            ("1500.00", "1485.00", "1515.00"),
            ("1000.00", "990.00", "1010.00"),
        ]


class TestTolerances:
    def test_absolute_tolerance_is_converted_and_not_scaled(self, edit: Edit) -> None:
        text = edit(
            (ASC_LINE, ASC_LINE.replace("{percent: 1}", "{absolute: 0.005, unit: kg}")),
        )
        assert charges(plan_of(text))[0] == ("1200.00", "1195.00", "1205.00")
        assert charges(plan_of(text, "3"))[0] == ("1800.00", "1795.00", "1805.00")

    def test_window_must_stay_positive_at_the_ordered_size(self, edit: Edit) -> None:
        text = edit(
            (ASC_LINE, ASC_LINE.replace("{percent: 1}", "{absolute: 1000, unit: g}")),
        )
        plan_of(text)  # 200.00 .. 2200.00 at the nominal size
        with pytest.raises(RecipeError) as info:
            plan_of(text, "1")
        (problem,) = info.value.problems
        assert "step dispensing/weigh/weigh-ascorbic-acid" in problem.message
        assert "leaves no positive window" in problem.message


class TestScaling:
    def test_unscaled_input_keeps_its_quantity(self, edit: Edit) -> None:
        text = edit((MCC_LINE, MCC_LINE + "\n      scaled: false"))
        assert charges(plan_of(text, "3"))[1] == ("800.00", "792.00", "808.00")

    def test_scaled_parameters(self, edit: Edit) -> None:
        text = edit(
            ("unit: rpm, scaled: false", "unit: rpm, scaled: true"),
            ("unit: min, scaled: false", "unit: min, scaled: true"),
        )
        mix = plan_of(text, "3").steps[3]
        # 25 * 1.5 = 37.5 rpm -> 38 (half to even); 3 min * 1.5 = 270 s
        assert (mix.speed_rpm, mix.duration_s) == (38, 270)
        mix = plan_of(text, "1").steps[3]
        assert (mix.speed_rpm, mix.duration_s) == (12, 90)  # 12.5 -> 12

    def test_units_are_converted(self, edit: Edit) -> None:
        text = edit(
            ("value: 25, unit: rpm", "value: 0.5, unit: rps"),
            ("value: 3, unit: min", "value: 90, unit: s"),
        )
        mix = plan_of(text).steps[3]
        assert (mix.speed_rpm, mix.duration_s) == (30, 90)


class TestGeneratedTexts:
    def test_defaults_when_name_and_instruction_are_left_out(self, edit: Edit) -> None:
        text = edit(
            (
                "              instruction: >-\n                Tare a clean, labelled container, "
                "then dispense microcrystalline\n                cellulose into it.\n",
                "",
            ),
            ("              name: Blend\n", ""),
            ("              instruction: Start the blender; it runs at the set speed for the "
             "set time.\n", ""),
            (
                "              instruction: >-\n                Take a 2 g sample from the top of "
                "the blend, measure loss on drying\n                (105 °C, 5 min) and enter the "
                "result.\n",
                "",
            ),
        )  # fmt: skip
        plan = plan_of(text, "3")
        weigh, mix, check = plan.steps[1], plan.steps[3], plan.steps[4]
        assert weigh.title == "Weigh Microcrystalline cellulose PH-102"
        assert weigh.instruction == (
            "Weigh 1200.00 g of Microcrystalline cellulose PH-102 (RM-MCC) on the scale; "
            "accepted 1188.00 to 1212.00 g."
        )
        assert (mix.title, mix.instruction) == ("Blend", "Run the mixer at 25 rpm for 3 min.")
        assert check.instruction == (
            "Measure Loss on drying and enter the result; accepted 0.0 to 2.0 percent."
        )

    def test_authored_texts_are_kept(self, example_text: str) -> None:
        plan = plan_of(example_text)
        assert plan.steps[2].title == "Charge blender"
        assert plan.steps[2].instruction == (
            "Charge both dispensed materials into the blender and close the lid."
        )
        assert plan.steps[0].instruction.startswith("Tare a clean, labelled container")


def test_material_charge_matches_the_contract(example_text: str) -> None:
    step = plan_of(example_text).steps[0]
    assert step.material == MaterialCharge(
        material_code="RM-ASC",
        material_name="Ascorbic acid",
        target="1200.00",
        unit="g",
        low="1188.00",
        high="1212.00",
        tolerance_percent="1",  # kept, so a computed target gets its window the same way
        lot_status="released",
    )
