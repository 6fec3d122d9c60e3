"""`ebr recipe simulate`: every example recipe runs to completion on the time-skipping
server with the real workflow and record activities; scenarios script excursions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from recipes.compile import compile_plan
from recipes.errors import RecipeError
from recipes.plan import IF, FlowNode
from recipes.validate import load_recipe_file
from runtime.seed import EXAMPLES
from runtime.simulate import SimulationResult, load_scenario, simulate, simulate_path

SCENARIOS = EXAMPLES / "scenarios"


async def run(recipe: str, scenario: str | Path | None = None) -> SimulationResult:
    """Simulate an example recipe; `scenario` names one in SCENARIOS, or is a file's path."""
    plan = compile_plan(load_recipe_file(EXAMPLES / recipe))
    script = (
        load_scenario(SCENARIOS / scenario, [s.step_id for s in plan.steps]) if scenario else None
    )
    return await simulate(plan, script)


def guarded(node: FlowNode | None, inside: bool = False) -> set[str]:
    """Steps under a `when` condition: the only ones a default run may skip."""
    if node is None:
        return set()
    here = {node.step_id} if inside and node.step_id else set()
    return here.union(*(guarded(c, inside or node.kind == IF)
                        for c in node.children + node.otherwise))


def path_of(result: SimulationResult) -> list[str]:
    return [entry.step_id for entry in result.path]


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
async def test_every_example_runs_to_release_with_every_signature_intact(example: str) -> None:
    result = await run(example)
    assert result.state == "released"
    assert result.failures == [] and result.alerts == []
    assert set(result.skipped) <= guarded(result.plan.flow)
    steps = result.record["steps"]
    assert {s["step_id"] for s in steps} | set(result.skipped) == {
        s.step_id for s in result.plan.steps}
    assert all(s["signature_verified"] for s in steps)


async def test_vitamin_c_blend_runs_its_six_steps_in_order() -> None:
    result = await run("vitamin-c-blend.yaml")
    assert path_of(result) == [s.step_id for s in result.plan.steps]
    assert len(result.path) == 6


async def test_wet_granulation_excursions_are_refused_held_and_repeated() -> None:
    result = await run("wet-granulation.yaml", "wet-granulation-excursions.yaml")
    assert result.state == "released"
    path = path_of(result)
    assert path[-5:] == [
        "granulation/drying/lod#2", "granulation/drying/dry#3", "granulation/drying/lod#3",
        "finishing/sizing/mill", "finishing/sizing/discharge",
    ]
    results = {e.step_id: (e.result, e.value) for e in result.path}
    assert results["granulation/drying/lod"] == ("fail", "3.4 percent")
    assert results["granulation/drying/lod#3"] == ("pass", "2.1 percent")
    assert results["dispensing/weigh/weigh-paracetamol"] == ("pass", "500.2 g")
    assert any("503.5 g is outside 497.50-502.50 g" in f for f in result.failures)
    assert any(f.startswith("held: Mixer SIM-GRANULATOR stopped before the mix was complete")
               and f.endswith("-> restart")
               for f in result.failures)
    verified = {e.step_id for e in result.path if e.verified_by}
    assert verified == {"dispensing/weigh/weigh-paracetamol", "finishing/sizing/discharge"}
    # Binder preparation and dry mixing ran side by side: both were open at once.
    assert path.index("granulation/dry-mix/charge") < path.index(
        "granulation/binder/binder-temperature")


async def test_emulsion_rework_loop_then_conditional_rest() -> None:
    result = await run("cosmetic-emulsion.yaml", "cosmetic-emulsion-rework.yaml")
    assert result.state == "released"
    assert [p for p in path_of(result) if "homogenise" in p or "viscosity" in p
            or p.endswith("rest")] == [
        "emulsion/emulsify/homogenise", "emulsion/emulsify/viscosity",
        "emulsion/emulsify/homogenise#2", "emulsion/emulsify/viscosity#2",
        "emulsion/emulsify/rest",
    ]


async def test_emulsion_without_rework_skips_the_rest_and_exhausted_rework_is_aborted() -> None:
    default = await run("cosmetic-emulsion.yaml")
    assert "emulsion/emulsify/rest" not in path_of(default)  # 11000 mPa*s: no rest needed
    assert default.skipped == ["emulsion/emulsify/rest"]

    exhausted = await run("cosmetic-emulsion.yaml", "cosmetic-emulsion-exhausted.yaml")
    assert exhausted.state == "aborted"
    assert path_of(exhausted)[-1] == "emulsion/emulsify/viscosity#3"
    assert "after 3 tries" in exhausted.failures[-1] and exhausted.failures[-1].endswith("abort")


def test_scenario_problems_name_file_line_and_column(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("values:\n  lot: 2\ndecisions: [retry]\nspeed: 3\n")
    with pytest.raises(RecipeError) as info:
        load_scenario(scenario, ["b/b/lod", "b/b/mix"])
    assert [str(p) for p in info.value.problems] == [
        f"{scenario}:2:3: values.lot: 'lot' is not a step of the recipe; write a phase id, "
        "operation/phase or the full step id",
        f"{scenario}:3:13: decisions.0: 'retry' is not a decision; write restart or abort",
        f"{scenario}:4:1: speed: unknown key 'speed'; a scenario has: batch_size, values, "
        "mixer_trips, wrong_scans, decisions, release",
    ]


def test_simulate_command_prints_the_path_and_writes_the_record(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    result = CliRunner().invoke(app, [
        "recipe", "simulate", str(EXAMPLES / "vitamin-c-blend.yaml"), "--batch-size", "3",
        "--record", str(record),
    ])
    assert result.exit_code == 0, result.output
    assert "batch 3 kg" in result.output and "Final state: released" in result.output
    assert "dispensing/weigh/weigh-ascorbic-acid  weigh       1800.00 g" in result.output
    assert json.loads(record.read_text())["batch"]["batch_size"] == "3"


def test_simulating_an_invalid_recipe_lists_its_problems_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "vitamin-c-blend.yaml").read_text().replace(
        "speed: mix_speed ", "speed: mix_sped "))
    code, lines = simulate_path(bad)
    assert code == 1 and "unknown parameter 'mix_sped' (did you mean 'mix_speed'?)" in lines[0]


async def test_sausage_cooks_in_intervals_until_the_core_reaches_72_degc() -> None:
    result = await run("cooked-sausage.yaml", "cooked-sausage-slow-cook.yaml")
    assert result.state == "released"
    results = {e.step_id: (e.kind, e.value) for e in result.path}
    reads = [results[f"cooking/cook/core_temp{n}"] for n in ("", "#2", "#3", "#4")]
    assert reads == [("plc_read", f"{v} degC") for v in ("45.5", "61.2", "68.9", "73.4")]
    assert "cooking/cook/core_temp#5" not in results
    assert results["cooking/cook/cook-interval#4"] == ("timer", "900 s")
    assert results["cooking/cook/hold"][0] == "timer"
    assert results["packing/metal-detection/metal-detector-test"] == ("check", "3 count")
    assert result.plc_writes == [
        "SIM-COOKER setpoint_temp = 78", "SIM-COOKER chill_temp = 2", "SIM-COOKER chill = 1"]
    [label] = result.labels.values()
    assert label.endswith("cooked to 73.4 degC")
    assert result.alerts == [
        "preparation/chop/batter-temperature: 11.0 degC outside the alert limits 0-10 degC"]
    ccp = next(e for e in result.path if e.step_id == "packing/labelling/ccp-review")
    assert ccp.signed_by == "Simulated Supervisor"


async def test_sausage_that_never_reaches_72_degc_is_held_after_eight_intervals(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "undercooked.yaml"
    scenario.write_text("values:\n  core_temp: 65\ndecisions: [abort]\n")
    result = await run("cooked-sausage.yaml", scenario)
    assert result.state == "aborted"
    assert path_of(result)[-1] == "cooking/cook/core_temp#8"
    assert "after 8 tries" in result.failures[-1] and result.failures[-1].endswith("abort")


async def test_supplement_weighs_the_potency_adjusted_quantity() -> None:
    result = await run("supplement-blend.yaml", "supplement-blend-low-assay.yaml")
    assert result.state == "released"
    results = {e.step_id: (e.kind, e.value) for e in result.path}
    assert results["dispensing/potency/assay"] == ("check", "97.6 percent")
    # 5000 g at 100 % / 0.976, rounded to the calc's one decimal.
    assert results["dispensing/potency/asc_quantity"] == ("calc", "5123.0 g")
    assert results["dispensing/weigh/weigh-ascorbic-acid"] == ("weigh", "5124.2 g")
    assert results["dispensing/weigh/pick-silica"] == ("pick", "100.00 g")
    assert result.failures == [
        "dispensing/weigh/weigh-ascorbic-acid: 5160 g is outside 5097.38-5148.62 g; refused at "
        "the scale, weighed again"]
    assert result.alerts == [
        "dispensing/potency/assay: 97.6 percent outside the alert limits 98.5-101.5 percent"]
    signers = {e.step_id: e.signed_by for e in result.path}
    assert signers["blending/blend/uniformity"] == "Simulated QA Analyst"
    assert signers["blending/discharge/line-clearance"] == "Simulated Supervisor"
    [label] = result.labels.values()
    assert label.endswith("ascorbic acid assay 97.6 %")


async def test_wet_granulation_writes_the_dryer_setpoints_before_drying() -> None:
    result = await run("wet-granulation.yaml")
    assert result.plc_writes == [
        "SIM-DRYER inlet_temp_setpoint = 60", "SIM-DRYER air_flow_setpoint = 120"]
    path = path_of(result)
    assert path.index("granulation/drying/set-air-flow") < path.index("granulation/drying/dry")


async def test_emulsion_otherwise_runs_when_no_rest_is_needed() -> None:
    default = await run("cosmetic-emulsion.yaml")
    assert "emulsion/emulsify/appearance" in path_of(default)
    reworked = await run("cosmetic-emulsion.yaml", "cosmetic-emulsion-rework.yaml")
    assert "emulsion/emulsify/appearance" not in path_of(reworked)
    assert "emulsion/emulsify/appearance" in reworked.skipped


async def test_a_wrong_container_scanned_at_a_pick_is_refused_then_the_right_one_issued(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "wrong-scan.yaml"
    scenario.write_text("wrong_scans: [pick-silica]\n")
    result = await run("supplement-blend.yaml", scenario)
    assert result.state == "released"
    [refused] = result.failures
    assert refused.startswith("dispensing/weigh/pick-silica: scanned (01)")
    assert "(10)SIM-UNKNOWN: refused (" in refused
    assert ("dispensing/weigh/pick-silica", "pass") in [(e.step_id, e.result)
                                                        for e in result.path]
    assert any(a["action"] == "pick.refused" for a in result.record["audit"])
