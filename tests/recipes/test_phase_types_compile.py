"""What each phase type, the sign policy, computed targets, `otherwise`, equipment
constraints, parameters and the validity window compile into (the plan contract)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recipes.compile import compile_plan
from recipes.diff import diff_recipes
from recipes.plan import (
    CALC,
    CHECK,
    IF,
    LABEL,
    PICK,
    PLC_READ,
    PLC_SET,
    SIGNOFF,
    TIMER,
    WEIGH,
    BatchPlan,
    EquipmentRequirement,
    FlowNode,
    Limits,
    Parameter,
    PlanStep,
)  # fmt: skip
from recipes.validate import load_recipe
from tests.recipes.test_invalid_recipes_table import FULL, SOURCE


def plan(text: str = FULL, size: str | None = None) -> BatchPlan:
    return compile_plan(load_recipe(text, SOURCE), Decimal(size) if size else None)


def step(p: BatchPlan, phase: str) -> PlanStep:
    found = p.step(f"make/op/{phase}")
    assert found is not None
    return found


def test_every_phase_type_has_its_step_kind() -> None:
    kinds = {s.step_id.rsplit("/", 1)[-1]: s.kind for s in plan().steps}
    assert kinds == {
        "assay": CHECK, "note": CHECK, "a_qty": CALC, "weigh-a": WEIGH, "pick-b": PICK,
        "weigh-c": WEIGH, "heat": PLC_SET, "core": PLC_READ, "hold": TIMER,
        "rest": "instruction", "reheat": "instruction", "print": LABEL, "approve": SIGNOFF,
        "count": CHECK,
    }  # fmt: skip


def test_entry_carries_value_type_unit_and_both_limit_pairs() -> None:
    assay, note, count = (step(plan(), s) for s in ("assay", "note", "count"))
    assert (assay.value_type, assay.unit, assay.on_fail) == ("decimal", "percent", "hold")
    assert assay.limits == Limits("95", "105", "percent")
    assert assay.alert_limits == Limits("97", "103", "percent")
    assert (note.value_type, note.limits, note.unit) == ("text", None, None)
    assert (count.value_type, count.unit) == ("integer", "count")


def test_entry_limits_in_another_unit_are_converted_to_the_entry_unit() -> None:
    text = FULL.replace(
        "limits: {low: 95, high: 105, unit: percent}",
        "limits: {low: 0.95, high: 1.05, unit: dimensionless}",
    ).replace("              alert_limits: {low: 97, high: 103, unit: percent}\n", "")
    assert step(plan(text), "assay").limits == Limits("95", "105", "percent")


def test_calc_keeps_its_expression_unit_and_decimals() -> None:
    calc = step(plan(), "a_qty")
    assert (calc.expression, calc.unit, calc.decimals) == ("a_claim / (assay / 100)", "g", 2)


def test_a_computed_target_names_the_calc_step_and_keeps_the_tolerance() -> None:
    weigh = step(plan(), "weigh-a")
    assert weigh.target_from == "make/op/a_qty"
    assert weigh.material is not None and weigh.material.tolerance_percent == "1"
    assert step(plan(), "weigh-c").target_from is None


def test_pick_carries_the_scaled_quantity_and_the_lot_status() -> None:
    pick = step(plan(size="4"), "pick-b")
    assert pick.material is not None
    assert (pick.material.target, pick.material.lot_status) == ("1000.00", "released")
    quarantine = FULL.replace(
        "{material: RM-B, name: Ingredient B, quantity: 500, unit: g, tolerance: {percent: 1}}",
        "{material: RM-B, name: Ingredient B, quantity: 500, unit: g, tolerance: {percent: 1},"
        " lot_status: quarantine}",
    )
    assert step(plan(quarantine), "pick-b").material.lot_status == "quarantine"  # type: ignore[union-attr]


def test_plc_set_takes_the_parameter_converted_to_the_tag_unit() -> None:
    heat = step(plan(), "heat")
    assert (heat.tag, heat.setpoint, heat.unit, heat.equipment_role) == (
        "setpoint_temp", "80", "degC", "cooker")
    kelvin = FULL.replace("setpoint: cook_temp, unit: degC}", "setpoint: cook_temp, unit: K}")
    assert (step(plan(kelvin), "heat").setpoint, step(plan(kelvin), "heat").unit) == (
        "353.15", "K")


def test_a_number_setpoint_without_unit_is_written_as_is() -> None:
    text = FULL.replace("setpoint: cook_temp, unit: degC}", "setpoint: 1}")
    heat = step(plan(text), "heat")
    assert (heat.setpoint, heat.unit) == ("1", None)


def test_plc_read_and_timer() -> None:
    core, hold = step(plan(), "core"), step(plan(), "hold")
    assert (core.tag, core.unit, core.limits) == ("core_temp", "degC", None)
    assert (hold.min_duration_s, hold.max_duration_s) == (120, 600)


def test_label_placeholders_name_full_step_ids() -> None:
    assert step(plan(), "print").label_template == (
        "{batch_id} {product_code} assay {step:make/op/assay}")


def test_sign_policy_and_signoff_set_role_and_meaning() -> None:
    p = plan()
    assert (step(p, "approve").perform_role, step(p, "approve").sign_meaning) == ("qa", "approved")
    assert (step(p, "count").perform_role, step(p, "count").sign_meaning) == (
        "supervisor", "verified")
    assert (step(p, "rest").perform_role, step(p, "rest").sign_meaning) == (
        "operator", "performed")


def test_otherwise_becomes_the_else_branch_of_the_if() -> None:
    flow = plan().flow
    assert flow is not None
    [node] = [n for n in flow.children if n.kind == IF]
    assert node.children == [FlowNode("step", step_id="make/op/rest")]
    assert node.otherwise == [FlowNode("step", step_id="make/op/reheat")]
    assert node.condition is not None and node.condition.op == "ge"


def test_equipment_requirements_carry_range_resolution_and_preconditions() -> None:
    scale, cooker = plan().equipment
    assert scale == EquipmentRequirement(
        "scale", "scale", "", unit="g", min_capacity="10", max_capacity="6000",
        max_resolution="0.1")
    assert (cooker.require_calibrated, cooker.require_clean, cooker.max_hours_since_cleaning) == (
        True, True, 24)
    assert (cooker.min_capacity, cooker.max_capacity, cooker.max_resolution) == ("0", "120", None)


def test_parameters_are_scaled_when_they_say_so() -> None:
    parameters = {p.id: p for p in plan(size="4").parameters}
    assert parameters["a_claim"] == Parameter("a_claim", "A at full potency", "2000.00", "g")
    assert parameters["cook_temp"].value == "80"


def test_validity_window_is_carried_as_iso_dates() -> None:
    text = FULL.replace("  author: Ada Author\n",
                        "  author: Ada Author\n  effective: 2026-01-01\n  expiry: 2027-06-30\n")
    p = plan(text)
    assert (p.effective, p.expiry) == ("2026-01-01", "2027-06-30")
    assert (plan().effective, plan().expiry) == (None, None)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("value: 80, unit: degC", "value: 85, unit: degC",
         "changed parameter cook_temp: value 80 -> 85"),
        ("alert_limits: {low: 97, high: 103, unit: percent}",
         "alert_limits: {low: 98, high: 103, unit: percent}",
         "changed phase make/op/assay: alert_limits {low=97, high=103, unit='percent'} -> "
         "{low=98, high=103, unit='percent'}"),
        ("tag: setpoint_temp", "tag: setpoint_temp2",
         "changed phase make/op/heat: tag 'setpoint_temp' -> 'setpoint_temp2'"),
        ("meaning: verified}", "meaning: reviewed}",
         "changed phase make/op/count: sign_meaning 'verified' -> 'reviewed'"),
        ("max_hours_since_cleaning: 24", "max_hours_since_cleaning: 12",
         "changed equipment role cooker: max_hours_since_cleaning 24 -> 12"),
        ("              otherwise:\n                - {id: reheat, type: instruction, "
         "instruction: Heat again.}\n",
         "              otherwise:\n                - {id: reheat, type: instruction, "
         "instruction: Heat again.}\n                - {id: wait, type: instruction, "
         "instruction: Wait.}\n",
         "added procedure logic: make/op/rest only when make/op/core ge 72, otherwise "
         "make/op/reheat, make/op/wait"),
    ],
)
def test_diff_names_parameter_limit_and_policy_changes(old: str, new: str, expected: str) -> None:
    before = load_recipe(FULL, SOURCE)
    after = load_recipe(FULL.replace(old, new), SOURCE)
    assert expected in [str(c) for c in diff_recipes(before, after)]
