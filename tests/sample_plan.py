"""A small compiled plan for tests that should not depend on the recipe compiler."""

from __future__ import annotations

from dataclasses import replace

from recipes.plan import (
    GT,
    IF,
    LOOP,
    PARALLEL,
    PASSED,
    SEQUENCE,
    STEP,
    BatchPlan,
    Condition,
    EquipmentRequirement,
    FlowNode,
    Limits,
    MaterialCharge,
    Parameter,
    PlanStep,
)

PLAN = BatchPlan(
    recipe_id="T-BLEND",
    recipe_version="1.0.0",
    recipe_sha256="a" * 64,
    product_code="T-500",
    product_name="Test blend",
    batch_size="2",
    batch_unit="kg",
    equipment=[EquipmentRequirement("scale", "scale"), EquipmentRequirement("mixer", "mixer")],
    steps=[
        PlanStep("d/w/weigh-a", "weigh", "Weigh A", "Weigh A.", "d", "w", equipment_role="scale",
                 material=MaterialCharge("RM-A", "A", "1200.00", "g", "1188.00", "1212.00")),
        PlanStep("b/b/mix", "mix", "Mix", "Mix it.", "b", "b", equipment_role="mixer",
                 duration_s=180, speed_rpm=25),
        PlanStep("b/b/lod", "check", "LOD", "Measure LOD.", "b", "b",
                 limits=Limits("0.0", "2.0", "percent"), value_label="Loss on drying"),
        PlanStep("b/b/discharge", "instruction", "Discharge", "Discharge.", "b", "b"),
    ],
)


# The same plan with a four-eyes check: a second operator verifies the LOD entry.
PLAN_VERIFIED = replace(
    PLAN,
    steps=[replace(s, verify_role="operator") if s.kind == "check" else s for s in PLAN.steps],
)


def _step(step_id: str) -> FlowNode:
    return FlowNode(STEP, step_id=step_id)


# Weighing and mixing at the same time (parallel divergence, then convergence).
PLAN_PARALLEL = replace(
    PLAN,
    flow=FlowNode(SEQUENCE, children=[
        FlowNode(PARALLEL, children=[_step("d/w/weigh-a"), _step("b/b/mix")]),
        _step("b/b/lod"),
        _step("b/b/discharge"),
    ]),
)

# Re-mix until the LOD check passes, at most three times.
PLAN_LOOP = replace(
    PLAN,
    flow=FlowNode(SEQUENCE, children=[
        _step("d/w/weigh-a"),
        FlowNode(LOOP, children=[_step("b/b/mix"), _step("b/b/lod")],
                 condition=Condition("b/b/lod", PASSED), max_iterations=3),
        _step("b/b/discharge"),
    ]),
)

# Mix only when the LOD is above 1.5 %.
PLAN_IF = replace(
    PLAN,
    flow=FlowNode(SEQUENCE, children=[
        _step("d/w/weigh-a"),
        _step("b/b/lod"),
        FlowNode(IF, children=[_step("b/b/mix")], condition=Condition("b/b/lod", GT, "1.5")),
        _step("b/b/discharge"),
    ]),
)


# A two-hour hold after mixing: at least 2 h, at most 3 h.
PLAN_TIMER = replace(
    PLAN,
    steps=[
        *PLAN.steps[:2],
        PlanStep("b/b/rest", "timer", "Rest", "Let the blend rest covered.", "b", "b",
                 min_duration_s=7200, max_duration_s=10800),
        *PLAN.steps[2:],
    ],
)


# The demo site's real material (stocked by wms.seed) and a check that holds on failure.
PLAN_CONNECTED = replace(
    PLAN,
    steps=[
        replace(PLAN.steps[0], material=MaterialCharge(
            "RM-ASC", "Ascorbic acid", "1200.00", "g", "1188.00", "1212.00")),
        *PLAN.steps[1:2],
        replace(PLAN.steps[2], on_fail="hold"),
        *PLAN.steps[3:],
    ],
)


# Every phase kind of the extended plan contract, on the demo site's stocked material:
# an assay entry with alert limits feeds a calculation, the weighing takes its target from
# it, a pick is verified by its GS1 label, a cooker is set and read through its PLC, typed
# entries, a label, and a supervisor's sign-off.
ASC_LABEL_2601 = "(01)07601234560013(10)ASC-2601(17)280630"  # GS1 label of a stocked lot
ASSAY, QTY, WEIGH_ASC, PICK_ASC = "q/a/assay", "q/a/qty", "d/w/weigh-asc", "d/p/pick-asc"
HEAT, TEMP, APPEARANCE, SIEVED = "c/c/heat", "c/c/temp", "c/c/appearance", "c/c/sieved"
LABEL_STEP, CLEARANCE = "p/l/label", "p/r/clearance"
PLAN_KINDS = BatchPlan(
    recipe_id="T-KINDS",
    recipe_version="1.0.0",
    recipe_sha256="b" * 64,
    product_code="T-700",
    product_name="Every phase kind",
    batch_size="2",
    batch_unit="kg",
    equipment=[EquipmentRequirement("scale", "scale"), EquipmentRequirement("cooker", "cooker")],
    parameters=[Parameter("nominal_g", "Nominal quantity", "1200", "g")],
    steps=[
        PlanStep(ASSAY, "check", "Assay", "Enter the assay of the lot.", "q", "a",
                 limits=Limits("95", "102", "percent"),
                 alert_limits=Limits("98", "101.5", "percent"), value_label="Assay"),
        PlanStep(QTY, "calc", "Quantity", "Potency-adjusted quantity.", "q", "a",
                 expression="nominal_g * 100 / assay", decimals=2, unit="g"),
        PlanStep(WEIGH_ASC, "weigh", "Weigh ascorbic acid", "Weigh it.", "d", "w",
                 equipment_role="scale", target_from=QTY,
                 material=MaterialCharge("RM-ASC", "Ascorbic acid", "1200.00", "g", "1188.00",
                                         "1212.00", tolerance_percent="1")),
        PlanStep(PICK_ASC, "pick", "Pick ascorbic acid", "Pick and scan.", "d", "p",
                 material=MaterialCharge("RM-ASC", "Ascorbic acid", "0.500", "kg", "0.495",
                                         "0.505"), on_fail="hold"),
        PlanStep(HEAT, "plc_set", "Heat to 72.5 C", "Set the cooker.", "c", "c",
                 equipment_role="cooker", tag="temperature_setpoint_c", setpoint="72.5",
                 unit="C"),
        PlanStep(TEMP, "plc_read", "Temperature", "Read the temperature.", "c", "c",
                 equipment_role="cooker", tag="temperature_c", unit="C",
                 limits=Limits("70", "75", "C"), alert_limits=Limits("71", "74", "C"),
                 on_fail="hold"),
        PlanStep(APPEARANCE, "check", "Appearance", "Describe it.", "c", "c",
                 value_type="text"),
        PlanStep(SIEVED, "check", "Sieved", "Was it sieved?", "c", "c", value_type="boolean"),
        PlanStep(LABEL_STEP, "label", "Drum label", "Label the drum.", "p", "l",
                 label_template="{batch_id} {product_code} {step:q/a/qty} g"),
        PlanStep(CLEARANCE, "signoff", "Line clearance", "Approve the line clearance.", "p",
                 "r", perform_role="supervisor", sign_meaning="approved"),
    ],
)
