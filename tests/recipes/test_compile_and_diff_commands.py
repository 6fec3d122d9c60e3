"""`ebr recipe compile` prints the plan as JSON; `ebr recipe diff` lists semantic changes:
phases added, removed, moved or changed, and formula, limit and header changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from recipes.commands import compile_path, diff_paths
from recipes.diff import diff_recipes
from recipes.model import Recipe
from recipes.validate import load_recipe

runner = CliRunner()

CHARGE = """\
            - id: charge-blender
              type: instruction
              name: Charge blender
              instruction: Charge both dispensed materials into the blender and close the lid.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestCompile:
    def test_prints_the_plan_scaled_to_the_batch_size(self, example_path: Path) -> None:
        code, text, notes = compile_path(example_path, "3")
        plan = json.loads(text)
        assert code == 0 and plan["batch_size"] == "3"
        assert [s["material"]["target"] for s in plan["steps"][:2]] == ["1800.00", "1200.00"]
        assert notes[0].startswith("plan sha256 ") and len(notes[0].split()[-1]) == 64

    def test_the_same_plan_has_the_same_hash(self, example_path: Path) -> None:
        assert compile_path(example_path, "2")[2] == compile_path(example_path, None)[2]
        assert compile_path(example_path, "3")[2] != compile_path(example_path, None)[2]

    def test_a_size_outside_the_range_is_refused_naming_the_range(self, example_path: Path) -> None:
        code, text, notes = compile_path(example_path, "5")
        assert (code, text) == (1, "")
        assert "outside the range this recipe allows (1 to 4 kg)" in notes[0]

    def test_a_size_that_is_not_a_number_is_refused(self, example_path: Path) -> None:
        assert compile_path(example_path, "two") == (
            2,
            "",
            ["--batch-size 'two' is not a number; e.g. 2.5"],
        )

    def test_through_the_ebr_command(self, example_path: Path) -> None:
        result = runner.invoke(app, ["recipe", "compile", str(example_path), "--batch-size", "1"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["steps"][0]["material"]["target"] == "600.00"


class TestDiff:
    def test_identical_recipes_have_no_changes(self, example: Recipe) -> None:
        assert diff_recipes(example, example) == []

    def test_phases_added_removed_moved_and_changed(
        self, example: Recipe, edit: Callable[..., str]
    ) -> None:
        text = edit(
            ("version: 1.0.0", "version: 2.0.0"),
            (CHARGE, ""),
            ("            - id: loss-on-drying", CHARGE + "            - id: loss-on-drying"),
            ("{low: 0.0, high: 2.0, unit: percent}", "{low: 0.5, high: 2.0, unit: percent}"),
            ("            - id: discharge\n", "            - id: unload\n"),
        )
        changes = [str(c) for c in diff_recipes(example, load_recipe(text, "v2.yaml"))]
        assert changes == [
            "changed header: version '1.0.0' -> '2.0.0'",
            "removed phase blending/blend/discharge: instruction",
            "moved phase blending/blend/charge-blender: from step 3 to step 4",
            "changed phase blending/blend/loss-on-drying: limits "
            "{low=0.0, high=2.0, unit='percent'} -> {low=0.5, high=2.0, unit='percent'}",
            "added phase blending/blend/unload: instruction, step 6",
        ]

    def test_a_phase_moved_to_another_operation_names_where_it_was(
        self, example: Recipe, edit: Callable[..., str]
    ) -> None:
        text = edit(
            (CHARGE, ""),
            (
                "                cellulose into it.\n",
                "                cellulose into it.\n" + CHARGE,
            ),
        )
        changes = [str(c) for c in diff_recipes(example, load_recipe(text, "v2.yaml"))]
        assert changes == [
            "moved phase dispensing/weigh/charge-blender: from blending/blend/charge-blender"
        ]

    def test_formula_and_equipment_changes(self, example: Recipe, edit: Callable[..., str]) -> None:
        text = edit(
            ("quantity: 1200", "quantity: 1250"),
            (
                "{id: mix_speed, name: Blender speed, value: 25",
                "{id: mix_speed, name: Blender speed, value: 30",
            ),
            ('description: "V-blender 10 L"', 'description: "V-blender 20 L"'),
        )
        changes = [str(c) for c in diff_recipes(example, load_recipe(text, "v2.yaml"))]
        assert changes == [
            "changed input RM-ASC: quantity 1200 -> 1250",
            "changed parameter mix_speed: value 25 -> 30",
            "changed equipment role mixer: description 'V-blender 10 L' -> 'V-blender 20 L'",
        ]

    def test_the_command_exits_1_when_there_are_changes(
        self, tmp_path: Path, example_path: Path, edit: Callable[..., str]
    ) -> None:
        newer = write(tmp_path, "v2.yaml", edit(("value: 3, unit: min", "value: 4, unit: min")))
        assert diff_paths(example_path, newer) == (1, ["changed parameter mix_time: value 3 -> 4"])
        result = runner.invoke(app, ["recipe", "diff", str(example_path), str(newer)])
        assert result.exit_code == 1 and "mix_time: value 3 -> 4" in result.stdout

    def test_the_command_exits_0_for_the_same_process(self, example_path: Path) -> None:
        code, lines = diff_paths(example_path, example_path)
        assert code == 0 and lines[0].startswith("no semantic changes")

    def test_an_invalid_recipe_exits_2_with_its_problems(
        self, tmp_path: Path, example_path: Path
    ) -> None:
        broken = write(tmp_path, "broken.yaml", "ebr_recipe: 1\nheader: 3\n")
        code, lines = diff_paths(example_path, broken)
        assert code == 2 and lines and all(line.startswith(f"{broken}:") for line in lines)
