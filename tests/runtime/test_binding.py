"""Binding a recipe role to registered equipment that covers its range and readability
and meets its preconditions; every refusal names the equipment and the reason."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from devices.register import parse_register
from recipes.plan import BatchPlan, EquipmentRequirement
from runtime.equipment import EquipmentError, EquipmentRegister
from tests.sample_plan import PLAN

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

SITE = """\
ebr_equipment: 1
equipment:
  BENCH:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB0}
    serial_number: A1
    capacity: 6000
    resolution: 0.01
    unit: g
    calibration_due: 2027-01-31
    cleaning: {status: clean, cleaned_at: 2026-11-22T06:00:00Z}
  FLOOR:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB1}
    serial_number: A2
    capacity: 150
    resolution: 0.005
    unit: kg
    calibration_due: 2027-01-31
    cleaning: {status: clean, cleaned_at: 2026-11-20T06:00:00Z}
  KETTLE:
    class: cooker
    driver: modbus-tcp
    connection: {host: 10.0.0.5}
    tag_map: cooker
    capacity: 300
    unit: L
    range: {min: -5, max: 120, unit: degC}
    calibration_due: 2026-11-01
    cleaning: {status: clean, cleaned_at: 2026-11-21T06:00:00Z}
"""


def register() -> EquipmentRegister:
    return EquipmentRegister(register=parse_register(SITE, source="site.yaml"))


def plan(*requirements: EquipmentRequirement) -> BatchPlan:
    return dataclasses.replace(PLAN, equipment=list(requirements))


def role(equipment_class: str = "scale", **fields: object) -> EquipmentRequirement:
    return EquipmentRequirement("r", equipment_class, **fields)  # type: ignore[arg-type]


class TestRangeAndReadability:
    def test_a_role_in_kg_skips_the_scale_too_small_and_binds_the_one_that_covers_it(self):
        binding = register().bind(
            plan(role(unit="kg", min_capacity="0.5", max_capacity="150", max_resolution="0.01")),
            now=NOW,
        )
        assert binding == {"r": "FLOOR"}

    def test_a_role_in_g_binds_the_bench_scale_first(self):
        binding = register().bind(
            plan(role(unit="g", min_capacity="0", max_capacity="6000", max_resolution="0.1")),
            now=NOW,
        )
        assert binding == {"r": "BENCH"}

    def test_readability_coarser_than_required_is_refused(self):
        with pytest.raises(EquipmentError) as info:
            register().bind(plan(role(unit="g", max_capacity="100", max_resolution="0.001")),
                            now=NOW)
        message = str(info.value)
        assert "BENCH must not be used: it reads to 0.01 g, coarser than the 0.001 g" in message
        assert "FLOOR must not be used: it reads to 5 g" in message

    def test_a_range_beyond_every_scale_names_each_one(self):
        with pytest.raises(EquipmentError, match=r"BENCH .*ends at 6000 g, below the 200000 g"
                           r".*FLOOR .*ends at 150000 g, below the 200000 g"):
            register().bind(plan(role(unit="g", max_capacity="200000")), now=NOW)

    def test_a_cookers_temperature_range_comes_from_range_not_from_its_litres(self):
        cooker = role("cooker", unit="degC", min_capacity="-5", max_capacity="120",
                      require_calibrated=False)
        assert register().bind(plan(cooker), now=NOW) == {"r": "KETTLE"}

        hotter = dataclasses.replace(cooker, max_capacity="150")
        with pytest.raises(EquipmentError, match="its range ends at 120 degC, below the 150"):
            register().bind(plan(hotter), now=NOW)

    def test_a_unit_the_register_cannot_compare_is_a_refusal(self):
        with pytest.raises(EquipmentError, match="no range or capacity in a unit comparable "
                           "with rpm"):
            register().bind(plan(role("cooker", unit="rpm", max_capacity="100",
                                      require_calibrated=False)), now=NOW)


class TestPreconditions:
    def test_calibration_must_be_current_unless_the_recipe_waives_it(self):
        with pytest.raises(EquipmentError, match="KETTLE must not be used: its calibration "
                           "was due on 2026-11-01"):
            register().bind(plan(role("cooker")), now=NOW)

        assert register().bind(plan(role("cooker", require_calibrated=False)), now=NOW) == {
            "r": "KETTLE"
        }

    def test_equipment_cleaned_longer_ago_than_the_recipe_allows_is_refused(self):
        binding = register().bind(plan(role(max_hours_since_cleaning=24)), now=NOW)
        assert binding == {"r": "BENCH"}

        with pytest.raises(EquipmentError) as info:
            register().bind(plan(role(max_hours_since_cleaning=4)), now=NOW)
        assert "BENCH must not be used: it was cleaned at 2026-11-22T06:00:00+00:00, 6 h ago, " \
               "and the recipe allows 4 h" in str(info.value)
        assert "FLOOR must not be used: it was cleaned at 2026-11-20" in str(info.value)

    def test_dirty_equipment_binds_only_when_the_recipe_does_not_require_clean(self):
        dirty = SITE.replace("cleaning: {status: clean, cleaned_at: 2026-11-22T06:00:00Z}",
                             "cleaning: {status: dirty}")
        site = EquipmentRegister(register=parse_register(dirty))
        assert site.bind(plan(role(max_capacity="100", unit="g")), now=NOW) == {"r": "FLOOR"}
        assert site.bind(plan(role(require_clean=False)), now=NOW) == {"r": "BENCH"}
