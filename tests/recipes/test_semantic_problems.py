"""Checks across the recipe: references, equipment classes, units, ranges, unique ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recipes.errors import Problem

Edit = Callable[..., str]
One = Callable[[str], Problem]
Many = Callable[[str], list[Problem]]
Lines = Callable[[str, str], int]

UP0_OP0 = "procedure.unit_procedures[0].operations[0]"
UP1_OP0 = "procedure.unit_procedures[1].operations[0]"
WEIGH_ASC = f"{UP0_OP0}.phases[0]"
BLEND = f"{UP1_OP0}.phases[1]"
LOD = f"{UP1_OP0}.phases[2]"
MCC_TOLERANCE = "tolerance: {percent: 1}\n  out"  # the second input's tolerance


class TestDanglingReferences:
    def test_unknown_material(self, edit: Edit, problems_in: Many, line_with: Lines) -> None:
        text = edit(
            (
                "material: RM-ASC\n              equipment",
                "material: RM-ASX\n              equipment",
            )
        )
        dangling, never = sorted(problems_in(text), key=lambda p: -(p.line or 0))
        assert (dangling.line, dangling.path) == (
            line_with(text, "RM-ASX"),
            f"{WEIGH_ASC}.material",
        )
        assert dangling.message == (
            "unknown material 'RM-ASX' (did you mean 'RM-ASC'?); formula.inputs lists: "
            "RM-ASC, RM-MCC"
        )
        assert never.path == "formula.inputs[0].material"

    def test_unknown_equipment_role(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("              equipment: mixer\n", "              equipment: blender\n"))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (
            line_with(text, "equipment: blender"),
            f"{BLEND}.equipment",
        )
        assert "unknown equipment role 'blender'" in problem.message
        assert "declares: mixer, scale" in problem.message

    def test_unknown_parameter(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("duration: mix_time ", "duration: mix_tme "))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (line_with(text, "mix_tme"), f"{BLEND}.duration")
        assert "unknown parameter 'mix_tme' (did you mean 'mix_time'?)" in problem.message

    def test_weigh_needs_a_scale(self, edit: Edit, problems_in: Many) -> None:
        text = edit(("    class: scale\n", "    class: balance\n"))
        found = problems_in(text)
        assert [p.path for p in found] == [
            f"{WEIGH_ASC}.equipment",
            f"{UP0_OP0}.phases[1].equipment",
        ]
        assert found[0].message == (
            "role 'scale' is of class 'balance'; a weigh phase needs a role of class 'scale'"
        )

    def test_mix_needs_a_mixer(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(
            edit(("              equipment: mixer\n", "              equipment: scale\n"))
        )
        assert problem.path == f"{BLEND}.equipment"
        assert "a mix phase needs a role of class 'mixer'" in problem.message


class TestRanges:
    def test_limits_low_above_high(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("{low: 0.0, high: 2.0,", "{low: 3.0, high: 2.0,"))
        problem = only_problem(text)
        assert problem.path == "procedure.unit_procedures[1].operations[0].phases[2].limits"
        assert problem.line == line_with(text, "low: 3.0")
        assert problem.message == "low 3.0 is greater than high 2.0; swap them"

    def test_equal_limits_are_fine(self, edit: Edit) -> None:
        from recipes.validate import load_recipe

        load_recipe(edit(("{low: 0.0, high: 2.0,", "{low: 2.0, high: 2.0,")))

    @pytest.mark.parametrize(
        ("sizes", "path", "message"),
        [
            ("nominal: 5", "header.batch_size.nominal", "nominal 5 is above max 4"),
            ("nominal: 0.5", "header.batch_size.nominal", "nominal 0.5 is below min 1"),
        ],
    )
    def test_batch_size_order(
        self, edit: Edit, only_problem: One, sizes: str, path: str, message: str
    ) -> None:
        problem = only_problem(edit(("nominal: 2", sizes)))
        assert problem.path == path and problem.message.startswith(message)

    def test_batch_min_above_max(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("min: 1\n", "min: 5\n")))
        assert problem.path == "header.batch_size.min"
        assert problem.message == "min 5 is greater than max 4; swap them"

    def test_yield_min_above_max(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("{min: 98, max: 100.5", "{min: 101, max: 100.5")))
        assert problem.path == "formula.outputs[0].expected_yield"

    def test_expiry_before_effective(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("expiry: 2028-12-31", "expiry: 2025-12-31")))
        assert problem.path == "header.expiry"
        assert "is not after effective 2026-01-01" in problem.message

    def test_impossible_date(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("effective: 2026-01-01", "effective: 2026-02-30")))
        assert problem.path == "header.effective"
        assert "'2026-02-30' is not a calendar date" in problem.message

    def test_date_format(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("effective: 2026-01-01", "effective: 1.1.2026")))
        assert problem.path == "header.effective" and "YYYY-MM-DD" in problem.message


class TestUnits:
    @pytest.mark.parametrize(
        ("old", "new", "path"),
        [
            ("high: 2.0, unit: percent}", "high: 2.0, unit: prcent}", f"{LOD}.limits.unit"),
            ("unit: kg\n", "unit: kgs\n", "header.batch_size.unit"),
            ("      quantity: 800\n      unit: g", "      quantity: 800\n      unit: gramm",
             "formula.inputs[1].unit"),
            ("value: 3, unit: min", "value: 3, unit: minutes_", "formula.parameters[1].unit"),
        ],
    )  # fmt: skip
    def test_unknown_unit(
        self, edit: Edit, only_problem: One, old: str, new: str, path: str
    ) -> None:
        problem = only_problem(edit((old, new)))
        assert problem.path == path
        assert problem.message.startswith("unknown unit")

    def test_prefix_traps_are_refused(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("high: 2.0, unit: percent}", "high: 2.0, unit: pct}")))
        assert problem.path == f"{LOD}.limits.unit"
        assert "'pct' would be read as picocarat" in problem.message

    def test_weighed_input_must_be_a_mass(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(
            edit(("      quantity: 800\n      unit: g", "      quantity: 800\n      unit: mL"))
        )
        assert problem.path == f"{UP0_OP0}.phases[1].material"
        assert "'RM-MCC' is given in 'mL', which is not a mass" in problem.message

    @pytest.mark.parametrize("unit", ["Hz", "1/min", "min"])
    def test_speed_must_be_a_rotational_speed(
        self, edit: Edit, only_problem: One, unit: str
    ) -> None:
        problem = only_problem(edit(("value: 25, unit: rpm", f"value: 25, unit: {unit}")))
        assert problem.path == f"{BLEND}.speed"
        assert "which is not a rotational speed such as rpm" in problem.message

    def test_duration_must_be_a_time(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("value: 3, unit: min", "value: 3, unit: kg")))
        assert problem.path == f"{BLEND}.duration"
        assert "is in 'kg', which is not a time" in problem.message

    def test_duration_must_convert_to_whole_seconds(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("value: 3, unit: min", "value: 3.33, unit: min")))
        assert problem.path == f"{BLEND}.duration"
        assert "3.33 min is 199.8 s; the mixer takes whole s" in problem.message

    def test_speed_must_be_positive(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("value: 25, unit: rpm", "value: 0, unit: rpm")))
        assert "a mix speed must be > 0" in problem.message

    def test_absolute_tolerance_in_another_dimension(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit((MCC_TOLERANCE, "tolerance: {absolute: 5, unit: mL}\n  out")))
        assert problem.path == "formula.inputs[1].tolerance.unit"
        assert "'mL' cannot be converted to the input's unit 'g'" in problem.message

    def test_absolute_tolerance_as_large_as_the_quantity(
        self, edit: Edit, only_problem: One
    ) -> None:
        text = edit((MCC_TOLERANCE, "tolerance: {absolute: 0.8, unit: kg}\n  out"))
        problem = only_problem(text)
        assert problem.path == "formula.inputs[1].tolerance.absolute"
        assert "0.8 kg is not smaller than the quantity 800 g" in problem.message


class TestUniqueIds:
    @pytest.mark.parametrize(
        ("old", "new", "path", "what"),
        [
            ("    - id: blending\n", "    - id: dispensing\n",
             "procedure.unit_procedures[1].id", "unit procedure id 'dispensing'"),
            ("            - id: discharge\n", "            - id: blend\n",
             f"{UP1_OP0}.phases[3].id", "phase id 'blend'"),
            ("    - {id: mix_time,", "    - {id: mix_speed,",
             "formula.parameters[1].id", "parameter id 'mix_speed'"),
            ("  - role: mixer\n", "  - role: scale\n",
             "equipment[1].role", "equipment role 'scale'"),
        ],
    )  # fmt: skip
    def test_duplicate_ids(
        self, edit: Edit, problems_in: Many, old: str, new: str, path: str, what: str
    ) -> None:
        found = problems_in(edit((old, new)))
        duplicate = next(p for p in found if p.path == path)
        assert duplicate.message.startswith(f"duplicate {what}, already used at line ")

    def test_duplicate_operation_id(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        operation = (
            "        - id: weigh\n"
            "          name: Second\n"
            "          phases:\n"
            "            - {id: note, type: instruction, instruction: Note.}\n"
        )
        text = edit(("    - id: blending\n", operation + "    - id: blending\n"))
        problem = only_problem(text)
        assert problem.path == "procedure.unit_procedures[0].operations[1].id"
        assert problem.line == line_with(text, "name: Second") - 1
        first = line_with(text, "name: Weigh raw materials") - 1
        assert problem.message == (
            f"duplicate operation id 'weigh', already used at line {first}; give each "
            "operation id a different value"
        )

    def test_same_phase_id_in_different_operations_is_fine(self, edit: Edit) -> None:
        from recipes.validate import load_recipe

        recipe = load_recipe(edit(("id: charge-blender", "id: weigh-mcc")))
        assert recipe.procedure.unit_procedures[1].operations[0].phases[0].id == "weigh-mcc"


class TestEachInputWeighedOnce:
    def test_input_weighed_twice(self, edit: Edit, problems_in: Many, line_with: Lines) -> None:
        text = edit(
            (
                "material: RM-MCC\n              equipment",
                "material: RM-ASC\n              equipment",
            )
        )
        never, twice = problems_in(text)
        lines = [n for n, line in enumerate(text.splitlines(), 1) if "material: RM-ASC" in line]
        _, first, second = lines
        assert (twice.path, twice.line) == (f"{UP0_OP0}.phases[1].material", second)
        assert twice.message == (
            "'RM-ASC' is already weighed by step dispensing/weigh/weigh-ascorbic-acid (line "
            f"{first}); each input is weighed or picked exactly once"
        )
        assert never.path == "formula.inputs[1].material"
        assert never.line == line_with(text, "- material: RM-MCC")
        assert never.message.startswith("input 'RM-MCC' is never weighed")
