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
