"""recipes.expr: the safe arithmetic evaluator behind CALC phases (never eval)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recipes.expr import ExpressionError, evaluate, names

D = Decimal


class TestArithmetic:
    @pytest.mark.parametrize(
        ("expression", "expected"),
        [
            ("1 + 2", "3"),
            ("0.1 + 0.2", "0.3"),  # exact: numbers are read from their text, never floats
            ("10 - 2 * 3", "4"),
            ("(10 - 2) * 3", "24"),
            ("7 / 2", "3.5"),
            ("-3 + +5", "2"),
            ("--4", "4"),
            ("min(3, 1, 2)", "1"),
            ("max(3, 1.5)", "3"),
            ("abs(-2.25)", "2.25"),
            ("round(2.5)", "2"),  # half-even, like the plan's rounding
            ("round(1.23456, 2)", "1.23"),
            ("round(1.235, 2)", "1.24"),
        ],
    )
    def test_evaluates_plain_arithmetic_exactly(self, expression: str, expected: str) -> None:
        assert evaluate(expression, {}) == D(expected)

    def test_names_take_their_values_from_the_mapping(self) -> None:
        values = {"label_claim": D("500"), "batch_kg": D("120"), "assay": D("98.5")}
        result = evaluate("label_claim * batch_kg / (assay / 100) / 1000", values)
        assert round(result, 6) == D("60.913706")

    def test_potency_adjustment_divides_by_the_measured_assay(self) -> None:
        assert evaluate("target / assay * 100", {"target": D("10"), "assay": D("80")}) == D(
            "12.5"
        )

    def test_a_name_finds_the_step_whose_id_ends_with_it(self) -> None:
        values = {"qc/assay/assay": D("80"), "target": D("10")}
        assert evaluate("target / assay * 100", values) == D("12.5")

    def test_a_name_ending_two_step_ids_is_ambiguous(self) -> None:
        values = {"a/x/assay": D("80"), "b/y/assay": D("90")}
        with pytest.raises(ExpressionError, match="`assay` could mean a/x/assay or b/y/assay"):
            evaluate("assay", values)

    def test_values_given_as_text_are_read_as_decimals(self) -> None:
        assert evaluate("a * 2", {"a": "1.5"}) == D("3.0")  # type: ignore[dict-item]


class TestNames:
    def test_lists_every_name_once(self) -> None:
        assert names("a * b + max(a, c) / round(d, 2)") == frozenset({"a", "b", "c", "d"})

    def test_function_names_are_not_names(self) -> None:
        assert names("abs(x)") == frozenset({"x"})

    def test_a_constant_expression_has_no_names(self) -> None:
        assert names("2 * 3") == frozenset()

    def test_refuses_what_evaluate_refuses(self) -> None:
        with pytest.raises(ExpressionError, match="attribute access"):
            names("x.real")


class TestRefusedExpressions:
    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("2 ** 1000000", r"operator `\*\*` is not allowed"),
            ("9 ** 9 ** 9", r"operator `\*\*` is not allowed"),
            ("7 % 2", "operator `%` is not allowed"),
            ("7 // 2", "operator `//` is not allowed"),
            ("1 << 10000", "operator `<<` is not allowed"),
            ("~1", "operator `~` is not allowed"),
            ("not x", "operator `not` is not allowed"),
            ("x.__class__", r"attribute access \(`\.`\)"),
            ("().__class__.__bases__[0]", r"indexing"),
            ("().__class__", r"attribute access"),
            ("__import__('os').system('true')", "calling `system` is not allowed"),
            ("__import__('os')", "calling `__import__` is not allowed"),
            ("eval('1')", "calling `eval` is not allowed"),
            ("open('/etc/passwd')", "calling `open` is not allowed"),
            ("(lambda: 1)()", "calling `this` is not allowed"),
            ("[x for x in y]", "a comprehension is not allowed"),
            ("(x for x in y)", "a comprehension is not allowed"),
            ("x[0]", r"indexing \(`\[\.\.\.\]`\)"),
            ("a < b", "comparisons and conditions are not allowed"),
            ("a if b else c", "comparisons and conditions are not allowed"),
            ("a and b", "comparisons and conditions are not allowed"),
            ("'text'", "text is not a number"),
            ("True", "True is not a number"),
            ("None", "None is not a number"),
            ("(y := 2)", r"an assignment \(`:=`\) is not allowed"),
            ("[1, 2]", "a list is not allowed"),
            ("1, 2", "a tuple is not allowed"),
            ("1e999", "`1e999` is not a plain decimal number"),
            ("1e3", "`1e3` is not a plain decimal number"),
            ("0x1F", "`0x1F` is not a plain decimal number"),
            ("10_000", "`10_000` is not a plain decimal number"),
            ("1j", "1j is not a number"),
            ("min(1)", "`min` needs at least two arguments"),
            ("abs(1, 2)", "`abs` takes exactly one argument"),
            ("round(1, 2, 3)", "`round` takes a value and optionally"),
            ("max(*x)", r"`max` takes no \*arguments"),
            ("round(x, ndigits=2)", "`round` takes no keyword arguments"),
            ("", "the expression is empty"),
            ("   ", "the expression is empty"),
            ("1 +", "the expression is not valid arithmetic"),
            ("a = 1", "the expression is not valid arithmetic"),
            ("1\n+ 2", "the expression must be on one line"),
        ],
    )
    def test_refuses_with_a_message_saying_what_is_wrong(
        self, expression: str, message: str
    ) -> None:
        with pytest.raises(ExpressionError, match=message):
            evaluate(expression, {"x": D(1), "y": D(1), "a": D(1), "b": D(1), "c": D(1)})

    def test_refuses_a_ten_thousand_digit_literal(self) -> None:
        with pytest.raises(ExpressionError, match="at most 500 are allowed"):
            evaluate("1" * 10_000, {})

    def test_refuses_a_literal_longer_than_thirty_digits(self) -> None:
        with pytest.raises(ExpressionError, match="a number has 31 digits; at most 30"):
            evaluate("1" * 31, {})

    def test_refuses_deep_nesting(self) -> None:
        with pytest.raises(ExpressionError, match="nested more than 64 levels"):
            evaluate("-" * 100 + "1", {})

    def test_refuses_deep_parentheses_without_crashing(self) -> None:
        with pytest.raises(ExpressionError):
            evaluate("(" * 240 + "1" + ")" * 240, {})

    def test_refuses_too_many_terms(self) -> None:
        with pytest.raises(ExpressionError, match="more than 200 terms"):
            evaluate("max(" + ",".join(["x"] * 240) + ")", {"x": D(1)})

    def test_refuses_non_text(self) -> None:
        with pytest.raises(ExpressionError, match="must be text"):
            evaluate(12, {})  # type: ignore[arg-type]


class TestEvaluationErrors:
    def test_division_by_zero_is_a_clear_error(self) -> None:
        with pytest.raises(ExpressionError, match=r"^division by zero$"):
            evaluate("target / assay", {"target": D(10), "assay": D(0)})

    def test_an_unknown_name_lists_the_known_ones(self) -> None:
        with pytest.raises(ExpressionError, match=r"unknown name `assy` \(known: assay, target\)"):
            evaluate("target / assy", {"target": D(10), "assay": D(98)})

    def test_a_non_numeric_value_is_refused(self) -> None:
        with pytest.raises(ExpressionError, match="`a` has no numeric value"):
            evaluate("a + 1", {"a": D("NaN")})

    def test_a_result_out_of_range_is_refused(self) -> None:
        big = "9" * 30
        with pytest.raises(ExpressionError, match="out of range"):
            evaluate(f"{big} * {big}", {})

    def test_repeated_products_cannot_grow_without_bound(self) -> None:
        with pytest.raises(ExpressionError, match="out of range"):
            evaluate(" * ".join(["x"] * 60), {"x": D("1000")})

    def test_round_needs_whole_decimals(self) -> None:
        with pytest.raises(ExpressionError, match="whole number of decimals from 0 to 12"):
            evaluate("round(1.5, 0.5)", {})
        with pytest.raises(ExpressionError, match="whole number of decimals from 0 to 12"):
            evaluate("round(1.5, 40)", {})


class TestSandboxSafety:
    def test_uses_only_the_standard_library(self) -> None:
        import ast
        import sys
        from pathlib import Path

        import recipes.expr as module

        tree = ast.parse(Path(module.__file__).read_text())
        imported = {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        } | {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert imported - {"__future__"} <= set(sys.stdlib_module_names)

    def test_evaluation_does_not_change_the_callers_decimal_context(self) -> None:
        import decimal

        before = decimal.getcontext().prec
        evaluate("1 / 3", {})
        assert decimal.getcontext().prec == before
