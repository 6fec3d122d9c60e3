"""Every example recipe can run on the demo stack `ebr up` seeds.

For each file in recipes/examples/, at its nominal batch size and as the API's batch
start does it: the seeded version compiles, is inside its validity window, binds every
equipment role against the demo register `ebr up` writes (runtime/demo_site.py), every
PLC step's tag is in the bound equipment's tag map, and the seeded WMS reserves (FEFO,
released and unexpired lots only) every material a weigh or pick step takes. An example
added without its demo equipment or stock fails here, naming what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from api.routes_batches import check_validity
from devices.register import DEFAULT_REGISTER, parse_register
from recipes import units
from recipes.compile import compile_plan
from recipes.plan import BatchPlan
from recipes.validate import load_recipe
from runtime.demo_site import demo_register_text, write_demo_register
from runtime.equipment import EquipmentError, EquipmentRegister, register_path
from runtime.seed import EXAMPLES, seed_demo
from store.recipes import RecipeStore
from wms.builtin import BuiltinWms
from wms.messages import ReserveRequest
from wms.port import WmsError

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
SEEDED_AT = datetime.now(UTC).replace(microsecond=0)
# A batch started up to a day after `ebr up` still meets the strictest hold time (24 h).
STARTED_AT = SEEDED_AT + timedelta(hours=23)
# A potency-adjusted weighing (`target: {calc: ...}`) takes more than the formula
# quantity when the lot's assay is low; the supplement's assay may go down to 97 %.
POTENCY_MARGIN = Decimal("1.04")


def seeded_plan(engine, path: Path) -> BatchPlan:  # type: ignore[no-untyped-def]
    """The plan of the seeded version, compiled as `RecipeStore.plan_for` compiles it."""
    recipe = load_recipe(path.read_text(encoding="utf-8"), path.name)
    row = RecipeStore(engine).require(recipe.header.id, recipe.header.version)
    return compile_plan(load_recipe(row.source_text, path.name), None)


def seeded_plan_from_file(path: Path) -> BatchPlan:
    return compile_plan(load_recipe(path.read_text(encoding="utf-8"), path.name), None)


def missing_equipment(plan: BatchPlan) -> tuple[dict[str, str], list[str]]:
    register = EquipmentRegister(register=parse_register(demo_register_text(SEEDED_AT)))
    try:
        binding = register.bind(plan, now=STARTED_AT)
    except EquipmentError as exc:
        return {}, [str(exc)]
    problems = []
    for step in plan.steps:
        if step.tag is None or step.equipment_role is None:
            continue
        entry = register.devices.get(binding[step.equipment_role])
        tag = entry.tags.get(step.tag)
        if tag is None:
            problems.append(f"{step.step_id}: {entry.equipment_id} has no tag {step.tag!r} "
                            f"(it has {', '.join(sorted(entry.tags))})")
        elif step.unit and tag.unit and not units.compatible(step.unit, tag.unit):
            problems.append(f"{step.step_id}: tag {step.tag} of {entry.equipment_id} is in "
                            f"{tag.unit}, the step in {step.unit}")
    return binding, problems


def missing_stock(engine, plan: BatchPlan) -> list[str]:  # type: ignore[no-untyped-def]
    wms, problems = BuiltinWms(engine), []
    for step in plan.steps:
        charge = step.material
        if charge is None:
            continue
        quantity = Decimal(charge.high)
        if step.target_from:
            quantity *= POTENCY_MARGIN
        try:
            wms.reserve(ReserveRequest(
                key=f"demo-site:{step.step_id}", batch_id="DEMO-SITE", phase_instance=step.step_id,
                line=1, material_code=charge.material_code, quantity=str(quantity),
                unit=charge.unit, actor="test"))
        except WmsError as exc:
            problems.append(f"{step.step_id} ({charge.material_code}): {exc}")
    return problems


def test_every_example_recipe_is_seeded():
    assert {p.name for p in EXAMPLE_FILES} >= {
        "vitamin-c-blend.yaml", "supplement-blend.yaml", "cooked-sausage.yaml",
        "wet-granulation.yaml", "cosmetic-emulsion.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_binds_the_demo_register_and_finds_released_stock(engine, path):
    seed_demo(engine)
    plan = seeded_plan(engine, path)
    check_validity(plan, STARTED_AT.date())

    binding, equipment_problems = missing_equipment(plan)
    stock_problems = missing_stock(engine, plan)

    problems = equipment_problems + stock_problems
    assert not problems, (
        f"{path.name} cannot run on the demo stack; add what it needs to "
        "devices/equipment.yaml (equipment) or wms/seed.py (stock):\n" + "\n".join(problems))
    assert set(binding) == {req.role for req in plan.equipment}


def test_the_demo_register_refuses_equipment_once_its_cleaning_is_too_old():
    plan = seeded_plan_from_file(EXAMPLES / "cooked-sausage.yaml")
    register = EquipmentRegister(register=parse_register(demo_register_text(SEEDED_AT)))

    with pytest.raises(EquipmentError, match="allows 24 h"):
        register.bind(plan, now=SEEDED_AT + timedelta(hours=25))


def test_the_examples_take_distinct_demo_scales_by_range_and_readability():
    register = EquipmentRegister(register=parse_register(demo_register_text(SEEDED_AT)))

    sausage = register.bind(seeded_plan_from_file(EXAMPLES / "cooked-sausage.yaml"),
                            now=STARTED_AT)
    supplement = register.bind(seeded_plan_from_file(EXAMPLES / "supplement-blend.yaml"),
                               now=STARTED_AT)
    vitamin_c = register.bind(seeded_plan_from_file(EXAMPLES / "vitamin-c-blend.yaml"),
                              now=STARTED_AT)

    assert (sausage["floor-scale"], sausage["bench-scale"]) == ("SCALE-03", "SCALE-01")
    assert supplement["floor-scale"] == "SCALE-02"
    assert vitamin_c["scale"] == "SCALE-01"



class TestWhichRegisterTheStackReads:
    def settings(self, tmp_path: Path, env: str = "development"):  # type: ignore[no-untyped-def]
        from settings.config import Settings

        return Settings(_env_file=None, var_dir=tmp_path, env=env)

    def test_the_demo_copy_written_at_start_outside_production(self, tmp_path):
        settings = self.settings(tmp_path)
        written = write_demo_register(settings, SEEDED_AT)

        assert register_path(settings) == written
        cleaned = parse_register(written.read_text()).get("COOKER-01").cleaning.cleaned_at
        assert cleaned == SEEDED_AT

    def test_the_site_register_wins_and_production_never_reads_the_demo_copy(self, tmp_path):
        write_demo_register(self.settings(tmp_path), SEEDED_AT)

        assert register_path(self.settings(tmp_path, "production")) == DEFAULT_REGISTER
        (tmp_path / "equipment.yaml").write_text(DEFAULT_REGISTER.read_text())
        assert register_path(self.settings(tmp_path)) == tmp_path / "equipment.yaml"
