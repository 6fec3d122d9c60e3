"""Procedure logic in the recipe language: `parallel:`, `repeat:`, `when:`, `verify:` and
`on_fail:` compile into the plan's flow and steps; wrong logic is refused at its line."""

from __future__ import annotations

import textwrap

import pytest

from recipes.compile import compile_plan
from recipes.errors import Problem, RecipeError
from recipes.plan import GT, IF, LOOP, LT, PARALLEL, PASSED, SEQUENCE, STEP, FlowNode
from recipes.validate import load_recipe

HEAD = """\
ebr_recipe: 1
header:
  id: T-LOGIC
  name: Logic test
  version: 1.0.0
  product: {code: T-1, name: Test}
  batch_size: {nominal: 2, min: 1, max: 4, unit: kg}
  author: Ada Author
formula:
  inputs:
    - {material: RM-A, name: A, quantity: 1200, unit: g, tolerance: {percent: 1}}
  parameters:
    - {id: speed, name: Speed, value: 25, unit: rpm}
    - {id: time, name: Time, value: 3, unit: min}
equipment:
  - {role: scale, class: scale}
  - {role: mixer, class: mixer}
  - {role: mixer-2, class: mixer}
procedure:
  unit_procedures:
    - id: d
      name: Dispensing
      operations:
        - id: w
          name: Weigh
          phases:
            - {id: weigh-a, type: weigh, material: RM-A, equipment: scale}
    - id: b
      name: Blending
      operations:
"""

MIX = "{type: mix, equipment: mixer, speed: speed, duration: time}"
LOD = "{type: check, label: LOD, limits: {low: 0, high: 2, unit: percent}}"
LOD_LINES = """\
type: check
label: LOD
limits: {low: 0, high: 2, unit: percent}"""


def lines(text: str, indent: int) -> str:
    """`text` indented to continue a block mapping at `indent` spaces."""
    return textwrap.indent(text, " " * indent).lstrip()


# An LOD check a second person verifies and that holds the batch when it fails.
VERIFIED_LOD = f"""
        - id: o
          name: Blend
          phases:
            - id: lod
              {lines(LOD_LINES, 14)}
              verify: {{role: qa}}
              on_fail: hold
    """


def recipe_text(operations: str) -> str:
    return HEAD + textwrap.indent(textwrap.dedent(operations).strip("\n"), " " * 8) + "\n"


def problems(operations: str) -> list[Problem]:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe_text(operations), "t.yaml")
    return info.value.problems


def only(operations: str) -> Problem:
    found = problems(operations)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def line_of(operations: str, needle: str) -> int:
    lines = [n for n, line in enumerate(recipe_text(operations).splitlines(), 1) if needle in line]
    assert len(lines) == 1, lines
    return lines[0]


def flow_of(operations: str) -> FlowNode:
    plan = compile_plan(load_recipe(recipe_text(operations), "t.yaml"))
    assert plan.flow is not None
    return plan.flow


def shape(node: FlowNode) -> object:
    """A compact picture of a flow tree: step ids, and (kind, children) for the rest."""
    if node.kind == STEP:
        return node.step_id
    return (node.kind, [shape(c) for c in node.children])


REMIX = f"""
- id: o
  name: Blend
  phases:
    - repeat:
        until: {{step: lod, passed: true}}
        at_most: 3
        phases:
          - {{id: mix, {MIX[1:]}
          - {{id: lod, {LOD[1:]}
    - {{id: discharge, type: instruction, instruction: Discharge.}}
"""


def test_repeat_becomes_a_bounded_loop_on_the_written_step_ids() -> None:
    flow = flow_of(REMIX)
    assert shape(flow) == (SEQUENCE, [
        "d/w/weigh-a", (LOOP, ["b/o/mix", "b/o/lod"]), "b/o/discharge",
    ])
    loop = flow.children[1]
    assert (loop.condition.step_id, loop.condition.op) == ("b/o/lod", PASSED)  # type: ignore[union-attr]
    assert loop.max_iterations == 3


def test_steps_stay_every_phase_once_in_written_order() -> None:
    plan = compile_plan(load_recipe(recipe_text(REMIX), "t.yaml"))
    assert [s.step_id for s in plan.steps] == [
        "d/w/weigh-a", "b/o/mix", "b/o/lod", "b/o/discharge",
    ]


def test_parallel_operations_run_as_branches_and_converge() -> None:
    flow = flow_of(f"""
        - parallel:
            - id: left
              name: Left
              phases:
                - {{id: prepare, type: instruction, instruction: Prepare.}}
                - {{id: temp, type: check, label: T, limits: {{low: 15, high: 30, unit: degC}}}}
            - id: right
              name: Right
              phases:
                - {{id: mix, {MIX[1:]}
        - id: after
          name: After
          phases:
            - {{id: discharge, type: instruction, instruction: Discharge.}}
    """)
    assert shape(flow) == (SEQUENCE, [
        "d/w/weigh-a",
        (PARALLEL, [(SEQUENCE, ["b/left/prepare", "b/left/temp"]), (SEQUENCE, ["b/right/mix"])]),
        "b/after/discharge",
    ])


def test_when_guards_a_phase_with_a_comparison_on_an_earlier_value() -> None:
    flow = flow_of(f"""
        - id: o
          name: Blend
          phases:
            - {{id: lod, {LOD[1:]}
            - id: mix
              {lines(MIX[1:-1].replace(", ", chr(10)), 14)}
              when: {{step: lod, above: 1.5}}
            - id: dry
              type: instruction
              instruction: Dry again.
              when: {{step: o/lod, below: 0.2}}
    """)
    guarded = flow.children[2]
    assert guarded.kind == IF and shape(guarded) == (IF, ["b/o/mix"])
    assert (guarded.condition.op, guarded.condition.value) == (GT, "1.5")  # type: ignore[union-attr]
    assert flow.children[3].condition.op == LT  # type: ignore[union-attr]


def test_verify_and_on_fail_reach_the_plan_steps() -> None:
    plan = compile_plan(load_recipe(recipe_text(VERIFIED_LOD), "t.yaml"))
    lod = plan.step("b/o/lod")
    assert lod is not None and (lod.verify_role, lod.on_fail) == ("qa", "hold")
    assert plan.step("d/w/weigh-a").on_fail == "warn"  # type: ignore[union-attr]
    assert plan.flow is None  # no procedure logic: the steps run in order


def test_example_without_logic_keeps_no_flow(example) -> None:  # type: ignore[no-untyped-def]
    assert compile_plan(example).flow is None


@pytest.mark.parametrize("bad, needle, message", [
    ("at_most: 3", "at_most: 11", "is 11; it must be at most 10"),
    ("at_most: 3", "at_most: 0", "is 0; it must be at least 1"),
    ("at_most: 3", "at_most: 2.5", "expected a whole number, got the number 2.5"),
])
def test_loops_are_bounded_from_1_to_10(bad: str, needle: str, message: str) -> None:
    problem = only(REMIX.replace(bad, needle))
    assert problem.message == message
    assert problem.line == line_of(REMIX.replace(bad, needle), needle)


def test_a_loop_must_test_a_step_it_repeats() -> None:
    text = REMIX.replace("until: {step: lod, passed: true}", "until: {step: weigh-a, above: 1}")
    problem = only(text)
    assert problem.path.endswith("repeat.until.step")
    assert problem.message.startswith("d/w/weigh-a is not inside this repeat")
    line = line_of(text, "until:")
    assert (problem.line, problem.column) == (line, recipe_text(text).splitlines()[line - 1]
                                              .index("step:") + 1)


CONDITIONAL = f"""
- id: o
  name: Blend
  phases:
    - {{id: lod, {LOD[1:]}
    - {{id: note, type: instruction, instruction: Note the time.}}
    - {{id: mix, {MIX[1:-1]}, when: {{step: lod, above: 1.5}}}}
    - {{id: confirm, {LOD[1:]}
"""


@pytest.mark.parametrize("when, expected", [
    ("{step: confirm, above: 1.5}", "b/o/confirm runs later, so the condition is decided"),
    ("{step: mix, above: 1.5}", "the condition tests b/o/mix, which it guards"),
    ("{step: lot, above: 1.5}", "no step 'lot' (did you mean 'lod'?)"),
    ("{step: note, passed: true}", "step b/o/note is an instruction, which records no"),
    ("{step: weigh-a, passed: true}", "step d/w/weigh-a is a weigh step, which always passes"),
    ("{step: lod, above: 1.5, below: 3}", "tests above and below at once"),
    ("{step: lod}", "needs one of 'passed' or 'above' or 'below' or 'at_least' or 'at_most'"),
])
def test_conditions_must_test_an_earlier_step_that_records_something(
    when: str, expected: str
) -> None:
    text = CONDITIONAL.replace("{step: lod, above: 1.5}", when)
    problem = only(text)
    assert expected in problem.message
    assert problem.line == line_of(text, "id: mix")


def test_a_condition_naming_a_phase_id_used_twice_asks_for_more_of_the_step_id() -> None:
    text = f"""
        - id: o
          name: Blend
          phases:
            - {{id: lod, {LOD[1:]}
        - id: p
          name: Again
          phases:
            - {{id: lod, {LOD[1:]}
            - {{id: mix, {MIX[1:-1]}, when: {{step: lod, passed: false}}}}
    """
    problem = only(text)
    assert problem.message.startswith("'lod' could mean b/o/lod or b/p/lod")
    flow = flow_of(text.replace("step: lod,", "step: o/lod,"))
    assert flow.children[-1].condition.step_id == "b/o/lod"  # type: ignore[union-attr]


def test_a_condition_on_a_step_of_a_parallel_branch_is_refused() -> None:
    text = f"""
        - parallel:
            - id: left
              name: Left
              phases:
                - {{id: lod, {LOD[1:]}
            - id: right
              name: Right
              phases:
                - {{id: mix, {MIX[1:-1]}, when: {{step: lod, above: 1}}}}
    """
    assert "runs in a parallel branch beside this one" in only(text).message


def test_parallel_branches_may_not_share_an_equipment_role() -> None:
    text = f"""
        - parallel:
            - id: left
              name: Left
              phases:
                - {{id: mix, {MIX[1:]}
            - id: right
              name: Right
              phases:
                - {{id: mix, {MIX[1:]}
    """
    problem = only(text)
    assert problem.message.startswith("this branch and branch 1 both use equipment role 'mixer'")
    assert problem.line == line_of(text, "- id: right")
    fixed = text.replace("equipment: mixer,", "equipment: mixer-2,", 1)
    assert flow_of(fixed).children[1].kind == PARALLEL


def test_a_weigh_phase_cannot_repeat_or_be_conditional() -> None:
    weigh = "{id: weigh-b, type: weigh, material: RM-A, equipment: scale}"
    repeated = problems(REMIX.replace(f"- {{id: mix, {MIX[1:]}", f"- {weigh}"))
    assert any("weigh phase b/o/weigh-b is inside a repeat; each formula input is dispensed "
               "exactly once" in p.message for p in repeated)
    conditional = problems(CONDITIONAL.replace(
        f"{{id: mix, {MIX[1:-1]}", weigh[:-1]))
    assert any("weigh phase b/o/weigh-b is under a condition (when)" in p.message
               for p in conditional)


@pytest.mark.parametrize("bad, expected", [
    ("on_fail: hold", "'abort-now' is not allowed here; use one of: warn, hold, abort"),
    ("verify: {role: qa}", "'boss' is not allowed here; use one of: operator, supervisor, qa"),
])
def test_policies_take_known_values(bad: str, expected: str) -> None:
    wrong = VERIFIED_LOD.replace(bad, bad.replace("hold", "abort-now").replace("qa}", "boss}"))
    assert only(wrong).message.startswith(expected)


def test_on_fail_belongs_to_check_phases_only() -> None:
    text = """
        - id: o
          name: Blend
          phases:
            - {id: note, type: instruction, instruction: Note., on_fail: abort}
    """
    assert only(text).message == "'on_fail' does not apply to a instruction phase; remove it"


def test_diff_reports_a_changed_loop_bound_as_procedure_logic() -> None:
    from recipes.diff import diff_recipes

    old = load_recipe(recipe_text(REMIX), "a.yaml")
    new = load_recipe(recipe_text(REMIX.replace("at_most: 3", "at_most: 5")), "b.yaml")
    assert [str(c) for c in diff_recipes(old, new)] == [
        "removed procedure logic: repeat b/o/mix, b/o/lod until b/o/lod passed, at most 3 times",
        "added procedure logic: repeat b/o/mix, b/o/lod until b/o/lod passed, at most 5 times",
    ]
