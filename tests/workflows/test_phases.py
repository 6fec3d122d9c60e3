"""The pure phase rules the workflow applies: typed entries, limits, targets, labels."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from recipes.expr import ExpressionError
from recipes.plan import Limits, MaterialCharge, PlanStep
from tests.sample_plan import PLAN_KINDS, QTY, WEIGH_ASC
from workflows import phases

CHECK = PlanStep("a/b/c", "check", "C", "", "a", "b", limits=Limits("1", "5", "mg"),
                 alert_limits=Limits("2", "4", "mg"))


class TestTypedEntries:
    @pytest.mark.parametrize(("text", "result", "alert"), [
        ("3", "pass", False), ("1.5", "pass", True), ("5", "pass", True), ("5.01", "fail", False),
    ])
    def test_decimal_is_judged_against_action_then_alert_limits(self, text, result, alert):
        judged = phases.judge_entry(CHECK, text)
        assert (judged.result, bool(judged.alert)) == (result, alert)

    @pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", None])
    def test_decimal_refuses_what_is_not_a_number(self, bad):
        with pytest.raises(ApplicationError) as info:
            phases.judge_entry(CHECK, bad)
        assert info.value.type == "BadValue"

    def test_integer_refuses_a_fraction(self):
        step = replace(CHECK, value_type="integer")
        assert phases.judge_entry(step, "3").value == "3"
        with pytest.raises(ApplicationError):
            phases.judge_entry(step, "3.5")

    def test_boolean_and_text(self):
        assert phases.judge_entry(replace(CHECK, value_type="boolean"), " Yes ").value == "true"
        assert phases.judge_entry(replace(CHECK, value_type="boolean"), "no").value == "false"
        with pytest.raises(ApplicationError):
            phases.judge_entry(replace(CHECK, value_type="boolean"), "perhaps")
        assert phases.judge_entry(replace(CHECK, value_type="text"), " ok ").value == "ok"
        with pytest.raises(ApplicationError):
            phases.judge_entry(replace(CHECK, value_type="text"), "x" * 2001)


class TestCalculatedTargets:
    def test_calc_reads_parameters_and_step_values_and_rounds(self):
        step = PLAN_KINDS.step(QTY)
        inputs = phases.calc_inputs(PLAN_KINDS, [("q/a/assay", "97.5"), ("c/c/text", "white")])
        assert phases.calculate(step, inputs) == "1230.77"

    def test_calc_without_its_input_says_which_name_is_unknown(self):
        with pytest.raises(ExpressionError, match="assay"):
            phases.calculate(PLAN_KINDS.step(QTY), phases.calc_inputs(PLAN_KINDS, []))

    def test_target_from_takes_limits_from_the_tolerance(self):
        weigh = PLAN_KINDS.step(WEIGH_ASC)
        assert phases.due(weigh, "1000") == phases.Due("1000", "990.00", "1010.00", "g")
        absolute = replace(weigh, material=replace(weigh.material, tolerance_percent=None,
                                                   tolerance_absolute="5"))
        assert phases.due(absolute, "1000.0").low == "995.00"
        band = replace(weigh, material=replace(weigh.material, tolerance_percent=None))
        assert phases.due(band, "1000") == phases.Due("1000", "988.00", "1012.00", "g")
        with pytest.raises(ApplicationError) as info:
            phases.due(weigh, None)
        assert info.value.type == "MissingTarget"

    def test_without_target_from_the_formula_applies(self):
        step = PlanStep("a/b/w", "weigh", "W", "", "a", "b",
                        material=MaterialCharge("M", "M", "10", "g", "9", "11"))
        assert phases.due(step, "99") == phases.Due("10", "9", "11", "g")


class TestLabels:
    def test_placeholders_are_filled_and_unknown_ones_stay(self):
        text = phases.render_label("{batch_id}/{product_code} {step:q/a/qty} {other}", "B-1",
                                   PLAN_KINDS, {"q/a/qty": "12.5"})
        assert text == "B-1/T-700 12.5 {other}"

    def test_a_missing_step_value_is_refused(self):
        with pytest.raises(ApplicationError, match="q/a/qty"):
            phases.render_label("{step:q/a/qty}", "B-1", PLAN_KINDS, {})


def test_number_reads_only_finite_decimals():
    assert phases.number("1.50") == Decimal("1.50")
    assert phases.number("true") is None and phases.number("NaN") is None
