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

from recipes.errors import Problem, RecipeError
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
                "unknown key 'colour'; allowed here: lot_status, material, name, quantity, scaled, tolerance, unit",
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
                "input 'RM-A' is never weighed or picked; add a weigh or pick phase with material: RM-A or remove the input from the formula",
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
                "'chek' is not allowed here; use one of: weigh, mix, check, entry, instruction, timer, plc_set, plc_read, pick, calc, label, signoff (did you mean 'check'?)",
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


# A recipe using every phase type, the sign policy, computed targets, `otherwise` and
# equipment constraints; each case below breaks one rule of those constructs.
FULL = """\
ebr_recipe: 1
header:
  id: FULL
  name: Every phase type
  version: 1.0.0
  product: {code: FULL-1, name: Every phase type}
  batch_size: {nominal: 2, min: 1, max: 4, unit: kg}
  author: Ada Author
formula:
  inputs:
    - {material: RM-A, name: Ingredient A, quantity: 1000, unit: g, tolerance: {percent: 1}}
    - {material: RM-B, name: Ingredient B, quantity: 500, unit: g, tolerance: {percent: 1}}
    - {material: RM-C, name: Ingredient C, quantity: 100, unit: g, tolerance: {percent: 1}}
  parameters:
    - {id: a_claim, name: A at full potency, value: 1000, unit: g, scaled: true}
    - {id: cook_temp, name: Cook temperature, value: 80, unit: degC, min: 70, max: 90}
    - {id: hold_min, name: Hold minimum, value: 2, unit: min}
    - {id: hold_max, name: Hold maximum, value: 10, unit: min}
equipment:
  - role: scale
    class: scale
    range: {min: 10, max: 6000, unit: g}
    resolution: 0.1
  - role: cooker
    class: cooker
    range: {min: 0, max: 120, unit: degC}
    preconditions: {calibrated: true, clean: true, max_hours_since_cleaning: 24}
procedure:
  unit_procedures:
    - id: make
      name: Make
      operations:
        - id: op
          name: Operation
          phases:
            - id: assay
              type: entry
              label: Assay
              unit: percent
              limits: {low: 95, high: 105, unit: percent}
              alert_limits: {low: 97, high: 103, unit: percent}
              on_fail: hold
            - {id: note, type: entry, label: Remark, value_type: text}
            - {id: a_qty, type: calc, expression: a_claim / (assay / 100), unit: g}
            - {id: weigh-a, type: weigh, material: RM-A, equipment: scale, target: {calc: a_qty}}
            - {id: pick-b, type: pick, material: RM-B}
            - {id: weigh-c, type: weigh, material: RM-C, equipment: scale}
            - {id: heat, type: plc_set, equipment: cooker, tag: setpoint_temp, setpoint: cook_temp, unit: degC}
            - {id: core, type: plc_read, equipment: cooker, tag: core_temp, unit: degC}
            - {id: hold, type: timer, min_duration: hold_min, max_duration: hold_max}
            - id: rest
              type: instruction
              instruction: Let it rest.
              when: {step: core, at_least: 72}
              otherwise:
                - {id: reheat, type: instruction, instruction: Heat again.}
            - {id: print, type: label, template: "{batch_id} {product_code} assay {step:assay}"}
            - {id: approve, type: signoff, role: qa, meaning: approved}
            - {id: count, type: entry, label: Pieces, value_type: integer, unit: count, sign: {role: supervisor, meaning: verified}}
"""

FULL_CASES: list[tuple[str, tuple[str, str], list[tuple[int, int, str, str]]]] = [
    (
        'entry_without_label',
        ('{id: note, type: entry, label: Remark, value_type: text}', '{id: note, type: entry, value_type: text}'),
        [
            (43, 15, 'procedure.unit_procedures[0].operations[0].phases[1]', "an entry phase needs 'label': what is measured, as shown next to the value (for example 'Loss on drying')"),
        ],
    ),
    (
        'plc_set_without_tag',
        ('tag: setpoint_temp, ', ''),
        [
            (48, 15, 'procedure.unit_procedures[0].operations[0].phases[6]', "a plc_set phase needs 'tag': the PLC tag of the bound equipment (for example setpoint_temp or core_temp)"),
        ],
    ),
    (
        'empty_plc_tag',
        ('tag: core_temp', "tag: ''"),
        [
            (49, 61, 'procedure.unit_procedures[0].operations[0].phases[7].tag', 'must not be empty'),
        ],
    ),
    (
        'tag_on_a_weigh_phase',
        ('target: {calc: a_qty}}', 'target: {calc: a_qty}, tag: x}'),
        [
            (45, 99, 'procedure.unit_procedures[0].operations[0].phases[3].tag', "'tag' does not apply to a weigh phase; remove it"),
        ],
    ),
    (
        'otherwise_without_when',
        ('              when: {step: core, at_least: 72}\n', ''),
        [
            (51, 15, 'procedure.unit_procedures[0].operations[0].phases[9]', "'otherwise' needs 'when' next to it; add when: ..."),
        ],
    ),
    (
        'resolution_without_range',
        ('    range: {min: 10, max: 6000, unit: g}\n', ''),
        [
            (20, 5, 'equipment[0]', "'resolution' needs 'range' next to it; add range: ..."),
        ],
    ),
    (
        'unknown_signature_meaning',
        ('meaning: verified}', 'meaning: checked}'),
        [
            (59, 114, 'procedure.unit_procedures[0].operations[0].phases[12].sign.meaning', "'checked' is not allowed here; use one of: performed, verified, approved, reviewed"),
        ],
    ),
    (
        'parameter_outside_its_range',
        ('value: 80, unit: degC', 'value: 95, unit: degC'),
        [
            (16, 47, 'formula.parameters[1].value', "95 is above the parameter's max 90; min <= value <= max must hold"),
        ],
    ),
    (
        'equipment_range_reversed',
        ('range: {min: 0, max: 120, unit: degC}', 'range: {min: 120, max: 0, unit: degC}'),
        [
            (26, 13, 'equipment[1].range.min', 'min 120 is greater than max 0; swap them'),
        ],
    ),
    (
        'weigh_target_above_the_scale_range',
        ('range: {min: 10, max: 6000, unit: g}', 'range: {min: 10, max: 150, unit: g}'),
        [
            (47, 58, 'procedure.unit_procedures[0].operations[0].phases[5].equipment', "at the largest batch size the target is 200 g, above the range of role 'scale' (10 to 150 g); require a larger range or lower the maximum batch size"),
        ],
    ),
    (
        'weigh_target_below_the_scale_range',
        ('range: {min: 10, max: 6000, unit: g}', 'range: {min: 60, max: 6000, unit: g}'),
        [
            (47, 58, 'procedure.unit_procedures[0].operations[0].phases[5].equipment', "at the smallest batch size the target is 50 g, below the range of role 'scale' (60 to 6000 g); require a range reaching lower or raise the minimum batch size"),
        ],
    ),
    (
        'tolerance_finer_than_resolution',
        ('    resolution: 0.1\n', '    resolution: 1\n'),
        [
            (47, 58, 'procedure.unit_procedures[0].operations[0].phases[5].equipment', "the tolerance at the smallest batch size is +/-0.5 g, finer than the resolution 1 g of role 'scale'; require a finer resolution or widen the tolerance"),
        ],
    ),
    (
        'plc_phase_on_a_scale',
        ('{id: core, type: plc_read, equipment: cooker,', '{id: core, type: plc_read, equipment: scale,'),
        [
            (49, 42, 'procedure.unit_procedures[0].operations[0].phases[7].equipment', "role 'scale' is of class 'scale', which is read over MT-SICS and has no PLC tags; a plc_read phase needs a PLC-driven role (e.g. class cooker or mixer)"),
        ],
    ),
    (
        'setpoint_unit_not_convertible',
        ('setpoint: cook_temp, unit: degC}', 'setpoint: cook_temp, unit: bar}'),
        [
            (48, 80, 'procedure.unit_procedures[0].operations[0].phases[6].setpoint', "parameter 'cook_temp' is in 'degC', which cannot be converted to the tag's unit 'bar'"),
        ],
    ),
    (
        'setpoint_outside_the_equipment_range',
        ('setpoint: cook_temp, unit: degC}', 'setpoint: 150, unit: degC}'),
        [
            (48, 80, 'procedure.unit_procedures[0].operations[0].phases[6].setpoint', "the setpoint 150 degC is outside the range of role 'cooker' (0 to 120 degC); change the setpoint or require equipment with a wider range"),
        ],
    ),
    (
        'text_entry_with_limits',
        ('value_type: text}', 'value_type: text, unit: percent}'),
        [
            (43, 72, 'procedure.unit_procedures[0].operations[0].phases[1].unit', "a text entry has no unit; remove 'unit' or make the entry a decimal or integer"),
        ],
    ),
    (
        'numeric_entry_without_unit',
        ('value_type: integer, unit: count,', 'value_type: integer,'),
        [
            (59, 40, 'procedure.unit_procedures[0].operations[0].phases[12].label', 'an integer entry needs a unit: add unit: (e.g. percent, kg, degC, or count for a number of pieces) or limits with a unit'),
        ],
    ),
    (
        'integer_entry_with_fractional_limits',
        ('value_type: integer, unit: count,', 'value_type: integer, unit: count, limits: {low: 0.5, high: 3, unit: count},'),
        [
            (59, 98, 'procedure.unit_procedures[0].operations[0].phases[12].limits.low', "0.5 is not a whole number; an integer entry's limits are whole numbers"),
        ],
    ),
    (
        'alert_limits_outside_action_limits',
        ('alert_limits: {low: 97, high: 103, unit: percent}', 'alert_limits: {low: 90, high: 103, unit: percent}'),
        [
            (41, 15, 'procedure.unit_procedures[0].operations[0].phases[0].alert_limits', 'alert limits 90 to 103 percent are not inside the action limits 95 to 105 percent; alert limits warn before the action limits are reached, so make them narrower'),
        ],
    ),
    (
        'limits_in_another_dimension',
        ('limits: {low: 95, high: 105, unit: percent}', 'limits: {low: 95, high: 105, unit: kg}'),
        [
            (40, 44, 'procedure.unit_procedures[0].operations[0].phases[0].limits.unit', "'kg' cannot be converted to the value's unit 'percent'; give the limits in percent or a unit like it"),
        ],
    ),
    (
        'timer_minimum_above_maximum',
        ('min_duration: hold_min, max_duration: hold_max', 'min_duration: hold_max, max_duration: hold_min'),
        [
            (50, 63, 'procedure.unit_procedures[0].operations[0].phases[8].max_duration', 'the maximum hold time (120 s) is shorter than the minimum (600 s); swap the parameters'),
        ],
    ),
    (
        'timer_duration_not_a_time',
        ('min_duration: hold_min,', 'min_duration: cook_temp,'),
        [
            (50, 39, 'procedure.unit_procedures[0].operations[0].phases[8].min_duration', "parameter 'cook_temp' is in 'degC', which is not a time such as min or s"),
        ],
    ),
    (
        'calc_expression_not_allowed',
        ('expression: a_claim / (assay / 100)', 'expression: a_claim ** 2'),
        [
            (44, 39, 'procedure.unit_procedures[0].operations[0].phases[2].expression', 'the operator `**` is not allowed; use + - * / and parentheses'),
        ],
    ),
    (
        'calc_unknown_name',
        ('expression: a_claim / (assay / 100)', 'expression: a_claim / (asay / 100)'),
        [
            (44, 39, 'procedure.unit_procedures[0].operations[0].phases[2].expression', "unknown name 'asay' (did you mean 'assay'?); an expression uses formula parameter ids and the ids of phases that run before it"),
        ],
    ),
    (
        'calc_phase_id_with_hyphen',
        ('expression: a_claim / (assay / 100)', 'expression: a_claim / weigh-a'),
        [
            (44, 39, 'procedure.unit_procedures[0].operations[0].phases[2].expression', "'weigh-a' reads as a subtraction: '-' is minus in an expression; rename the phase to 'weigh_a' to use its value"),
        ],
    ),
    (
        'calc_uses_a_later_phase',
        ('expression: a_claim / (assay / 100)', 'expression: a_claim / core'),
        [
            (44, 39, 'procedure.unit_procedures[0].operations[0].phases[2].expression', 'make/op/core runs later, so it is not recorded when make/op/a_qty runs; the expression can only use phases that run before it'),
        ],
    ),
    (
        'calc_uses_a_text_entry',
        ('expression: a_claim / (assay / 100)', 'expression: a_claim / note'),
        [
            (44, 39, 'procedure.unit_procedures[0].operations[0].phases[2].expression', 'make/op/note is a text entry, which records no number; the expression needs a weigh, pick, check, entry, plc_read or calc phase'),
        ],
    ),
    (
        'calc_name_is_parameter_and_phase',
        ('{id: hold, type: timer,', '{id: a_claim, type: timer,'),
        [
            (44, 39, 'procedure.unit_procedures[0].operations[0].phases[2].expression', "'a_claim' is both a parameter and a phase id; rename one of them so the expression means one thing"),
        ],
    ),
    (
        'target_from_a_non_calc_phase',
        ('target: {calc: a_qty}', 'target: {calc: assay}'),
        [
            (45, 85, 'procedure.unit_procedures[0].operations[0].phases[3].target.calc', 'make/op/assay is an entry phase; a target comes from a calc phase (the computed quantity)'),
        ],
    ),
    (
        'target_in_another_unit',
        ('expression: a_claim / (assay / 100), unit: g}', 'expression: a_claim / (assay / 100), unit: kg}'),
        [
            (45, 85, 'procedure.unit_procedures[0].operations[0].phases[3].target.calc', "make/op/a_qty gives its result in 'kg', but input 'RM-A' is dispensed in 'g'; give the calc unit: g (scale its expression accordingly)"),
        ],
    ),
    (
        'target_from_a_later_calc',
        ('target: {calc: a_qty}', 'target: {calc: late}}\n            - {id: late, type: calc, expression: a_claim, unit: g'),
        [
            (45, 85, 'procedure.unit_procedures[0].operations[0].phases[3].target.calc', 'make/op/late runs later, so it is not recorded when make/op/weigh-a runs; the target can only use phases that run before it'),
        ],
    ),
    (
        'label_unknown_placeholder',
        ('{batch_id} {product_code}', '{batch_id} {lot}'),
        [
            (57, 40, 'procedure.unit_procedures[0].operations[0].phases[10].template', 'unknown placeholder {lot}; a label may use {batch_id}, {product_code}, {product_name} and {step:<phase id>}'),
        ],
    ),
    (
        'label_unclosed_brace',
        ('{batch_id} {product_code}', '{batch_id {product_code}'),
        [
            (57, 40, 'procedure.unit_procedures[0].operations[0].phases[10].template', "a '{' or '}' is not closed; write placeholders as {batch_id}"),
        ],
    ),
    (
        'label_prints_an_instruction',
        ('assay {step:assay}', 'assay {step:rest}'),
        [
            (57, 40, 'procedure.unit_procedures[0].operations[0].phases[10].template', 'make/op/rest is an instruction, which records no value; a {step:...} placeholder prints a recorded value (entry, check, weigh, pick, plc_read, calc)'),
        ],
    ),
    (
        'condition_on_a_text_entry',
        ('when: {step: core, at_least: 72}', 'when: {step: note, at_least: 72}'),
        [
            (54, 22, 'procedure.unit_procedures[0].operations[0].phases[9].when.step', 'step make/op/note records text, not a number or a result; conditions test numeric steps'),
        ],
    ),
    (
        'passed_on_a_phase_without_limits',
        ('when: {step: core, at_least: 72}', 'when: {step: core, passed: true}'),
        [
            (54, 34, 'procedure.unit_procedures[0].operations[0].phases[9].when.passed', 'step make/op/core has no limits, so it always passes; give it limits or test its value with above, below, at_least or at_most'),
        ],
    ),
    (
        'condition_on_a_signoff',
        ('{id: approve, type: signoff, role: qa, meaning: approved}\n', '{id: approve, type: signoff, role: qa, meaning: approved}\n            - {id: after, type: instruction, instruction: x, when: {step: approve, passed: true}}\n'),
        [
            (59, 69, 'procedure.unit_procedures[0].operations[0].phases[12].when.step', 'step make/op/approve is a signoff, which records no value or result; test a check, entry, weigh, pick, plc_read, calc or mix step'),
        ],
    ),
    (
        'pick_of_an_input_already_weighed',
        ('{id: pick-b, type: pick, material: RM-B}', '{id: pick-b, type: pick, material: RM-A}'),
        [
            (12, 8, 'formula.inputs[1].material', "input 'RM-B' is never weighed or picked; add a weigh or pick phase with material: RM-B or remove the input from the formula"),
            (46, 40, 'procedure.unit_procedures[0].operations[0].phases[4].material', "'RM-A' is already weighed by step make/op/weigh-a (line 45); each input is weighed or picked exactly once"),
        ],
    ),
    (
        'pick_under_a_condition',
        ('{id: pick-b, type: pick, material: RM-B}', '{id: pick-b, type: pick, material: RM-B, when: {step: assay, passed: true}}'),
        [
            (46, 28, 'procedure.unit_procedures[0].operations[0].phases[4].type', 'pick phase make/op/pick-b is under a condition (when); each formula input is dispensed exactly once, so pick it before the repeat or condition and record additions during rework as instruction or check phases'),
        ],
    ),
    (
        'scale_range_in_another_dimension',
        ('range: {min: 10, max: 6000, unit: g}', 'range: {min: 10, max: 6000, unit: L}'),
        [
            (47, 58, 'procedure.unit_procedures[0].operations[0].phases[5].equipment', "role 'scale' has its range in 'L', which is not a mass; give the range of a scale in g or kg"),
        ],
    ),
    (
        'max_hours_not_whole',
        ('max_hours_since_cleaning: 24', 'max_hours_since_cleaning: 1.5'),
        [
            (27, 52, 'equipment[1].preconditions.max_hours_since_cleaning', 'expected a whole number, got the number 1.5'),
        ],
    ),
]


def test_the_full_recipe_is_valid() -> None:
    assert len(list(load_recipe(FULL, SOURCE).procedure.steps())) == 14


@pytest.mark.parametrize(
    ("replace", "expected"), [c[1:] for c in FULL_CASES], ids=[c[0] for c in FULL_CASES]
)
def test_invalid_use_of_a_phase_type_reports_exactly(
    replace: tuple[str, str], expected: list[tuple[int, int, str, str]]
) -> None:
    problems = _problems_after(FULL, replace)
    assert [(p.line, p.column, p.path, p.message) for p in problems] == expected


@pytest.mark.parametrize(("replace", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_recipe_reports_exactly(
    replace: tuple[str, str], expected: list[tuple[int, int, str, str]]
) -> None:
    problems = _problems_after(MINIMAL, replace)
    assert [(p.line, p.column, p.path, p.message) for p in problems] == expected
    assert all(str(p).startswith(f"{SOURCE}:{p.line}:{p.column}: ") for p in problems)


def _problems_after(recipe: str, replace: tuple[str, str]) -> list[Problem]:
    """The problems loading reports once `replace` (old, new) is applied to one place."""
    old, new = replace
    assert recipe.count(old) == 1, old
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe.replace(old, new), SOURCE)
    return info.value.problems


def _refused_quickly(text: str, within_s: float = 1.0) -> RecipeError:
    started = time.perf_counter()
    with pytest.raises(RecipeError) as info:
        load_recipe(text, SOURCE)
    assert time.perf_counter() - started < within_s
    return info.value


# Inputs refused by a size limit (not by refusing an expansion) are read up to that limit:
# ~0.5 s on an idle machine. The bound says "never hangs", with room for a loaded machine.
BOUNDED_S = 5.0


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

    def test_a_megabyte_of_list_items_is_refused_at_the_node_limit_without_hanging(self) -> None:
        text = "ebr_recipe: 1\nheader: [" + "1," * 500_000 + "1]\n"
        assert len(text) < 1024 * 1024
        [problem] = _refused_quickly(text, BOUNDED_S).problems
        assert problem.line == 2 and problem.path.startswith("header[")
        assert problem.message.startswith(f"the file has more than {MAX_NODES} YAML values")

    def test_thousands_of_unknown_keys_are_all_reported_without_hanging(self) -> None:
        keys = "".join(f"k{i}: {i}\n" for i in range(2_000))
        error = _refused_quickly(MINIMAL + keys, BOUNDED_S)
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
