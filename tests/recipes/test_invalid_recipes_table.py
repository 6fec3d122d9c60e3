"""A table of invalid and hostile recipes, each with the exact problem(s) expected.

Each case breaks one thing in a small valid recipe and states every problem ebr must
report: line, column, path and the whole message, so a changed wording or a wrong
position is a failing test, not a silent regression. Hostile inputs (alias bombs, deep
nesting, huge files) must be refused quickly, never expanded or waited on.
"""

# The expected messages are written out whole, as the author reads them: long lines here.
# ruff: noqa: E501

from __future__ import annotations

import time

import pytest

from recipes.errors import RecipeError
from recipes.validate import load_recipe
from recipes.yaml_safe import MAX_DEPTH, MAX_NODES

SOURCE = "mini.yaml"

MINIMAL = """\
ebr_recipe: 1
header:
  id: MINI
  name: Minimal blend
  version: 1.0.0
  product: {code: MINI-1, name: Minimal blend}
  batch_size: {nominal: 2, min: 1, max: 4, unit: kg}
  author: Ada Author
formula:
  inputs:
    - material: RM-A
      name: Ingredient A
      quantity: 1200
      unit: g
      tolerance: {percent: 1}
      scaled: true
  parameters:
    - {id: mix_speed, name: Speed, value: 25, unit: rpm}
    - {id: mix_time, name: Time, value: 3, unit: min}
equipment:
  - {role: scale, class: scale}
  - {role: mixer, class: mixer}
procedure:
  unit_procedures:
    - id: make
      name: Make
      operations:
        - id: op
          name: Operation
          phases:
            - {id: weigh-a, type: weigh, material: RM-A, equipment: scale}
            - {id: blend, type: mix, equipment: mixer, speed: mix_speed, duration: mix_time}
            - id: lod
              type: check
              label: Loss on drying
              limits: {low: 0.0, high: 2.0, unit: percent}
"""

PHASES = "procedure.unit_procedures[0].operations[0].phases"
INPUT = "formula.inputs[0]"

# (case id, (old, new) replacement in MINIMAL, expected problems as (line, column, path, message))
CASES: list[tuple[str, tuple[str, str], list[tuple[int, int, str, str]]]] = [
    (
        "no_bool",
        ("      scaled: true", "      scaled: no"),
        [
            (
                16,
                7,
                f"{INPUT}.scaled",
                "expected true or false, got the text 'no'; 'no' is a boolean only in YAML 1.1, so ebr does not guess: write true or false",
            ),
        ],
    ),
    (
        "sexagesimal",
        ("      quantity: 1200", "      quantity: 1:30"),
        [
            (
                13,
                7,
                f"{INPUT}.quantity",
                "expected a number, got the text '1:30'; YAML 1.1 would read 1:30 as a base-60 number (90), so ebr refuses it: write one plain number and put the unit in 'unit' (e.g. 90 with unit: min)",
            ),
        ],
    ),
    (
        "octal",
        ("      quantity: 1200", "      quantity: 0012"),
        [
            (
                13,
                7,
                f"{INPUT}.quantity",
                "expected a number, got the text '0012'; leading zeros are not allowed (YAML 1.1 would read 0012 as an octal number): write 12",
            ),
        ],
    ),
    (
        "version_number",
        ("  version: 1.0.0", "  version: 1.0"),
        [
            (
                5,
                3,
                "header.version",
                "expected text, got the number 1.0; expected semantic version MAJOR.MINOR.PATCH as text, for example 1.0.0",
            ),
        ],
    ),
    (
        "exponent",
        ("      quantity: 1200", "      quantity: 1e3"),
        [
            (
                13,
                7,
                f"{INPUT}.quantity",
                "expected a number, got the text '1e3'; write the number plainly, without quotes, exponent or '_' (e.g. 0.5)",
            ),
        ],
    ),
    (
        "on_bool",
        ("      scaled: true", "      scaled: on"),
        [
            (
                16,
                7,
                f"{INPUT}.scaled",
                "expected true or false, got the text 'on'; 'on' is a boolean only in YAML 1.1, so ebr does not guess: write true or false",
            ),
        ],
    ),
    (
        "dup_key",
        ("  author: Ada Author", "  author: Ada Author\n  author: Bob"),
        [
            (
                9,
                3,
                "header.author",
                "duplicate key 'author': first at line 8, again at line 9; keep one of them",
            ),
        ],
    ),
    (
        "custom_tag",
        ("  author: Ada Author", "  author: !!python/object:os.system ls"),
        [
            (
                8,
                11,
                "header.author",
                "the YAML tag !!python/object:os.system is not supported here (or does not fit the value); remove the tag and write plain text, numbers, true/false, lists and mappings",
            ),
        ],
    ),
    (
        "anchor",
        ("  author: Ada Author", "  author: &who Ada Author"),
        [
            (
                8,
                11,
                "header.author",
                "YAML anchors (&who) are not allowed in recipes: remove '&who' and write repeated values out in full",
            ),
        ],
    ),
    (
        "unknown_key",
        ("      scaled: true", "      scaled: true\n      colour: red"),
        [
            (
                17,
                7,
                f"{INPUT}.colour",
                "unknown key 'colour'; allowed here: material, name, quantity, scaled, tolerance, unit",
            ),
        ],
    ),
    (
        "missing_key",
        ("      unit: g\n", ""),
        [
            (
                11,
                7,
                f"{INPUT}",
                "missing required key 'unit' (unit of the quantity; a mass (g, kg, mg) for weighed inputs)",
            ),
        ],
    ),
    (
        "unknown_material",
        ("material: RM-A, equipment", "material: RM-B, equipment"),
        [
            (
                11,
                7,
                f"{INPUT}.material",
                "input 'RM-A' is never weighed; add a weigh phase with material: RM-A or remove the input from the formula",
            ),
            (
                31,
                42,
                f"{PHASES}[0].material",
                "unknown material 'RM-B' (did you mean 'RM-A'?); formula.inputs lists: RM-A",
            ),
        ],
    ),
    (
        "unknown_param",
        ("speed: mix_speed", "speed: mix_sped"),
        [
            (
                32,
                56,
                f"{PHASES}[1].speed",
                "unknown parameter 'mix_sped' (did you mean 'mix_speed'?); formula.parameters lists: mix_speed, mix_time",
            ),
        ],
    ),
    (
        "bad_unit",
        ("unit: rpm}", "unit: rmp}"),
        [
            (
                18,
                47,
                "formula.parameters[0].unit",
                "unknown unit 'rmp'; write a unit pint knows, e.g. g, kg, mg, min, s, rpm, percent (units are case-sensitive)",
            ),
        ],
    ),
    (
        "limits_reversed",
        ("{low: 0.0, high: 2.0", "{low: 3.0, high: 2.0"),
        [
            (36, 15, f"{PHASES}[2].limits", "low 3.0 is greater than high 2.0; swap them"),
        ],
    ),
    (
        "batch_range",
        ("min: 1, max: 4", "min: 3, max: 4"),
        [
            (
                7,
                16,
                "header.batch_size.nominal",
                "nominal 2 is below min 3; min <= nominal <= max must hold",
            ),
        ],
    ),
    (
        "dup_phase",
        ("id: lod", "id: blend"),
        [
            (
                33,
                15,
                f"{PHASES}[2].id",
                "duplicate phase id 'blend', already used at line 32; give each phase id a different value",
            ),
        ],
    ),
    (
        "wrong_lang",
        ("ebr_recipe: 1", "ebr_recipe: 2"),
        [
            (
                1,
                1,
                "ebr_recipe",
                "unknown recipe language version 2; this ebr reads 'ebr_recipe: 1'",
            ),
        ],
    ),
    (
        "tab",
        ("  author: Ada Author", "\tauthor: Ada Author"),
        [
            (
                8,
                1,
                "",
                "YAML syntax error: found character '\\t' that cannot start any token; indent with spaces, never tabs",
            ),
        ],
    ),
    (
        "two_docs",
        ("  author: Ada Author", "  author: Ada Author\n---\nx: 1"),
        [
            (
                9,
                1,
                "",
                "a recipe file holds exactly one YAML document: remove the '---' line and everything after it, or put the second recipe in its own file",
            ),
        ],
    ),
    (
        "neg_tol",
        ("{percent: 1}", "{percent: -1}"),
        [
            (15, 19, f"{INPUT}.tolerance.percent", "is -1; it must be greater than 0"),
        ],
    ),
    (
        "both_tol",
        ("{percent: 1}", "{percent: 1, absolute: 5, unit: g}"),
        [
            (
                15,
                31,
                f"{INPUT}.tolerance.absolute",
                "'absolute' cannot be combined with 'percent'; keep one of them",
            ),
            (
                15,
                44,
                f"{INPUT}.tolerance.unit",
                "'unit' cannot be combined with 'percent'; keep one of them",
            ),
        ],
    ),
    (
        "abs_no_unit",
        ("{percent: 1}", "{absolute: 5}"),
        [
            (15, 7, f"{INPUT}.tolerance", "'absolute' needs 'unit' next to it; add unit: ..."),
        ],
    ),
    (
        "weigh_with_speed",
        (
            "material: RM-A, equipment: scale}",
            "material: RM-A, equipment: scale, speed: mix_speed}",
        ),
        [
            (31, 76, f"{PHASES}[0].speed", "'speed' does not apply to a weigh phase; remove it"),
        ],
    ),
    (
        "phase_type",
        ("type: check", "type: chek"),
        [
            (
                34,
                15,
                f"{PHASES}[2].type",
                "'chek' is not allowed here; use one of: weigh, mix, check, instruction (did you mean 'check'?)",
            ),
        ],
    ),
    (
        "control_char",
        ("  name: Minimal blend\n", "  name: Minimal\x07blend\n"),
        [
            (
                4,
                16,
                "",
                "the text contains the control character U+0007, which YAML does not allow; delete it (it is often invisible: retype the line)",
            ),
        ],
    ),
]


def test_the_minimal_recipe_is_valid() -> None:
    assert load_recipe(MINIMAL, SOURCE).id == "MINI"


@pytest.mark.parametrize(("replace", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_recipe_reports_exactly(
    replace: tuple[str, str], expected: list[tuple[int, int, str, str]]
) -> None:
    old, new = replace
    assert MINIMAL.count(old) == 1, old
    with pytest.raises(RecipeError) as info:
        load_recipe(MINIMAL.replace(old, new), SOURCE)
    found = [(p.line, p.column, p.path, p.message) for p in info.value.problems]
    assert found == expected
    assert all(str(p).startswith(f"{SOURCE}:{p.line}:{p.column}: ") for p in info.value.problems)


def _refused_quickly(text: str) -> RecipeError:
    started = time.perf_counter()
    with pytest.raises(RecipeError) as info:
        load_recipe(text, SOURCE)
    assert time.perf_counter() - started < 1.0
    return info.value


class TestHostileInput:
    def test_billion_laughs_is_refused_at_the_first_anchor_within_a_second(self) -> None:
        lol = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        levels = "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
            for i in range(8)
        )
        error = _refused_quickly("ebr_recipe: 1\n" + lol + levels)
        [problem] = error.problems
        assert (problem.line, problem.column, problem.path) == (2, 4, "a")
        assert problem.message.startswith("YAML anchors (&a) are not allowed in recipes")

    def test_merge_keys_are_refused_as_aliases(self) -> None:
        text = MINIMAL.replace("  author: Ada Author\n", "  author: Ada Author\n  <<: *base\n")
        [problem] = _refused_quickly(text).problems
        assert (problem.line, problem.column) == (9, 7)
        assert problem.message.startswith("YAML aliases (*base) are not allowed")

    def test_deep_nesting_is_refused_within_a_second(self) -> None:
        text = "ebr_recipe: 1\nheader: " + "[" * 100_000 + "]" * 100_000 + "\n"
        [problem] = _refused_quickly(text).problems
        assert problem.line == 2
        assert problem.message.startswith(f"nested deeper than {MAX_DEPTH} levels")

    def test_a_megabyte_of_list_items_is_refused_at_the_node_limit_within_a_second(self) -> None:
        text = "ebr_recipe: 1\nheader: [" + "1," * 500_000 + "1]\n"
        assert len(text) < 1024 * 1024
        [problem] = _refused_quickly(text).problems
        assert problem.line == 2 and problem.path.startswith("header[")
        assert problem.message.startswith(f"the file has more than {MAX_NODES} YAML values")

    def test_thousands_of_unknown_keys_are_all_reported_within_a_second(self) -> None:
        keys = "".join(f"k{i}: {i}\n" for i in range(2_000))
        error = _refused_quickly(MINIMAL + keys)
        assert sum("unknown key 'k" in p.message for p in error.problems) == 2_000

    def test_a_file_over_one_mebibyte_is_refused_without_parsing(self) -> None:
        [problem] = _refused_quickly("ebr_recipe: 1\n#" + "x" * (1024 * 1024)).problems
        assert problem.line is None and "limited to 1048576 bytes" in problem.message

    def test_python_object_tags_are_refused(self) -> None:
        [problem] = _refused_quickly("!!python/object/apply:os.system [echo hi]\n").problems
        assert (problem.line, problem.column) == (1, 1)
        assert problem.message.startswith("the YAML tag !!python/object/apply:os.system")


def test_the_fast_and_the_pure_python_yaml_paths_build_the_same_tree(example_text: str) -> None:
    # libyaml only makes parsing faster; positions and values must not depend on it.
    from recipes import yaml_safe

    fast = yaml_safe.load_yaml(example_text)
    original = yaml_safe._FastRecipeYamlLoader
    try:
        yaml_safe._FastRecipeYamlLoader = None
        pure = yaml_safe.load_yaml(example_text)
    finally:
        yaml_safe._FastRecipeYamlLoader = original
    assert original is not None
    assert fast == pure
    paths = [("procedure", "unit_procedures", 1, "operations", 0, "phases", 2, "limits")]
    paths += [("formula", "parameters", 1, "unit"), ("header", "expiry")]
    for path in paths:
        assert yaml_safe.position_of(fast, path) == yaml_safe.position_of(pure, path)
