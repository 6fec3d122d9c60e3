"""Schema violations are reported with the line and path of the offending key, and a fix."""

from __future__ import annotations

from collections.abc import Callable

from recipes.errors import Problem

Edit = Callable[..., str]
One = Callable[[str], Problem]
Lines = Callable[[str, str], int]

PHASE_0 = "procedure.unit_procedures[0].operations[0].phases[0]"
BLEND = "procedure.unit_procedures[1].operations[0].phases[1]"


class TestUnknownKeys:
    def test_unknown_header_key(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("  author: Ada Author\n", "  author: Ada Author\n  colour: red\n"))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (line_with(text, "colour"), "header.colour")
        assert problem.message.startswith("unknown key 'colour'; allowed here: author,")

    def test_misspelled_key_gets_a_suggestion(self, edit: Edit, only_problem: One) -> None:
        text = edit(("      quantity: 1200\n", "      quantity: 1200\n      quantiy: 3\n"))
        problem = only_problem(text)
        assert problem.path == "formula.inputs[0].quantiy"
        assert "(did you mean 'quantity'?)" in problem.message

    def test_unknown_key_in_a_flow_mapping(
        self, edit: Edit, only_problem: One, line_with: Lines
    ) -> None:
        text = edit(("limits: {low: 0.0,", "limits: {lo: 0.0, low: 0.0,"))
        problem = only_problem(text)
        path = "procedure.unit_procedures[1].operations[0].phases[2].limits.lo"
        assert (problem.line, problem.path) == (line_with(text, "{lo: 0.0"), path)

    def test_key_of_another_phase_type(
        self, edit: Edit, only_problem: One, line_with: Lines
    ) -> None:
        weigh = "              material: RM-ASC\n"
        text = edit((weigh, weigh + "              speed: mix_time\n"))
        problem = only_problem(text)
        line = line_with(text, "speed: mix_time")
        assert (problem.line, problem.path) == (line, f"{PHASE_0}.speed")
        assert problem.message == "'speed' does not apply to a weigh phase; remove it"


class TestWrongTypes:
    def test_quoted_quantity(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("quantity: 1200", 'quantity: "1200"'))
        problem = only_problem(text)
        assert problem.line == line_with(text, '"1200"')
        assert problem.path == "formula.inputs[0].quantity"
        assert "expected a number, got the text '1200'; write the number plainly" in (
            problem.message
        )

    def test_exponent_is_not_a_number(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("quantity: 1200", "quantity: 1.2e3")))
        assert "expected a number, got the text '1.2e3'" in problem.message

    def test_version_written_as_a_number(
        self, edit: Edit, only_problem: One, line_with: Lines
    ) -> None:
        text = edit(("version: 1.0.0", "version: 1.0"))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (line_with(text, "  version: 1.0"), "header.version")
        assert "got the number 1.0; expected semantic version MAJOR.MINOR.PATCH" in (
            problem.message
        )

    def test_version_not_semver(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("version: 1.0.0", "version: v1")))
        assert problem.path == "header.version" and "semantic version" in problem.message

    def test_yes_is_not_a_boolean(self, edit: Edit, only_problem: One) -> None:
        text = edit(("unit: rpm, scaled: false", "unit: rpm, scaled: yes"))
        problem = only_problem(text)
        assert problem.path == "formula.parameters[0].scaled"
        assert "write true or false" in problem.message

    def test_list_expected(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        outputs = (
            "  outputs:\n"
            "    - material: VC-BLEND-500\n"
            "      name: Vitamin C 500 mg blend\n"
            "      expected_yield: {min: 98, max: 100.5, unit: percent}\n"
        )
        text = edit((outputs, "  outputs: VC-BLEND-500\n"))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (line_with(text, "outputs:"), "formula.outputs")
        assert problem.message == "expected a list, got the text 'VC-BLEND-500'"

    def test_bad_code(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("  id: VC-BLEND ", "  id: VC BLEND ")))
        assert problem.path == "header.id"
        assert "'VC BLEND' is not written correctly; expected a code" in problem.message


class TestMissingAndInvalid:
    def test_missing_material_of_a_weigh_phase(
        self, edit: Edit, problems_in: Callable, line_with: Lines
    ) -> None:
        text = edit(("              material: RM-MCC\n", ""))
        missing, never_weighed = sorted(problems_in(text), key=lambda p: -(p.line or 0))
        assert missing.line == line_with(text, "- id: weigh-mcc")
        assert missing.path == "procedure.unit_procedures[0].operations[0].phases[1]"
        assert missing.message == (
            "a weigh phase needs 'material': code of the formula input to dispense"
        )
        assert never_weighed.path == "formula.inputs[1].material"
        assert "'RM-MCC' is never weighed" in never_weighed.message

    def test_missing_header_key(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("  author: Ada Author\n", ""))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (line_with(text, "header:"), "header")
        assert problem.message == "missing required key 'author' (person who wrote this version)"

    def test_unknown_phase_type(self, edit: Edit, only_problem: One, line_with: Lines) -> None:
        text = edit(("type: mix", "type: stir"))
        problem = only_problem(text)
        assert (problem.line, problem.path) == (line_with(text, "type: stir"), f"{BLEND}.type")
        assert "use one of: weigh, mix, check, entry, instruction, timer," in problem.message

    def test_tolerance_with_both_forms(self, edit: Edit, problems_in: Callable) -> None:
        text = edit(
            (
                "      tolerance: {percent: 1}       #",
                "      tolerance: {percent: 1, absolute: 5, unit: g}   #",
            )
        )
        found = problems_in(text)
        assert {p.path for p in found} == {
            "formula.inputs[0].tolerance.absolute",
            "formula.inputs[0].tolerance.unit",
        }
        assert all("cannot be combined with 'percent'" in p.message for p in found)

    def test_empty_tolerance(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(
            edit(("      tolerance: {percent: 1}       #", "      tolerance: {}  #"))
        )
        assert problem.path == "formula.inputs[0].tolerance"
        assert problem.message == "needs one of 'percent' or 'absolute'"

    def test_zero_quantity(self, edit: Edit, only_problem: One) -> None:
        problem = only_problem(edit(("quantity: 800", "quantity: 0")))
        assert problem.path == "formula.inputs[1].quantity"
        assert problem.message == "is 0; it must be greater than 0"

    def test_empty_procedure(self, edit: Edit, problems_in: Callable) -> None:
        text = edit(
            ("procedure:\n  unit_procedures:\n", "procedure:\n  unit_procedures: []\n  old:\n")
        )
        assert any(p.message.startswith("the list is empty") for p in problems_in(text))


def test_other_language_version_is_reported_alone(
    edit: Edit, only_problem: One, line_with: Lines
) -> None:
    text = edit(("ebr_recipe: 1 ", "ebr_recipe: 2 "), ("  author: Ada Author\n", ""))
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_with(text, "ebr_recipe: 2"), "ebr_recipe")
    assert "this ebr reads 'ebr_recipe: 1'" in problem.message


def test_not_a_mapping(only_problem: One) -> None:
    problem = only_problem("- just\n- a list\n")
    assert problem.path == "" and problem.message.startswith("expected a mapping")


def test_all_problems_are_reported_at_once_in_line_order(edit: Edit, problems_in: Callable) -> None:
    text = edit(
        ("version: 1.0.0", "version: 1.0"),
        ("quantity: 800", 'quantity: "800"'),
        ("type: mix", "type: stir"),
    )
    found = problems_in(text)
    assert len(found) == 3
    assert [p.line for p in found] == sorted(p.line or 0 for p in found)
