"""A scale opened through the register reports in its registered unit and resolution,
or its reading is refused: a scale set up differently from what was qualified."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.devices import DeviceActivities
from devices.register import ReadingMismatch, parse_register
from devices.scale_sim import ScaleSimulator
from runtime.equipment import EquipmentRegister
from tests.workflows.fakes import FakeMixer, opener
from workflows.messages import ReadWeightInput

ENTRY = """\
ebr_equipment: 1
equipment:
  SCALE-01:
    class: scale
    driver: mt-sics
    connection: {url: "%(url)s", timeout_s: 0.5}
    serial_number: B123456789
    capacity: 6000
    resolution: %(resolution)s
    unit: %(unit)s
    calibration_due: 2099-12-31
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
"""


@pytest.fixture
def scale_url() -> Iterator[str]:
    sim = ScaleSimulator()  # XS6002S: grams, two decimals
    sim.set_weight("1200.40")
    yield f"socket://127.0.0.1:{sim.serve_tcp()}"
    sim.close()


def register(url: str, unit: str = "g", resolution: str = "0.01") -> EquipmentRegister:
    text = ENTRY % {"url": url, "unit": unit, "resolution": resolution}
    return EquipmentRegister(register=parse_register(text))


def test_a_reading_in_the_registered_unit_and_resolution_is_taken(scale_url: str) -> None:
    with register(scale_url).open_scale("SCALE-01") as scale:
        assert scale.stable_weight().value == Decimal("1200.40")


@pytest.mark.parametrize(
    ("unit", "resolution", "message"),
    [
        ("kg", "0.00001", r"reports in g but the register says kg"),
        ("g", "0.1", r"1200.40 g with 2 decimals but the register gives its resolution as 0.1"),
    ],
)
def test_a_scale_set_up_otherwise_than_registered_is_refused(
    scale_url: str, unit: str, resolution: str, message: str
) -> None:
    scale = register(scale_url, unit, resolution).open_scale("SCALE-01")
    with scale, pytest.raises(ReadingMismatch, match=message):
        scale.stable_weight()


def test_the_weighing_activity_fails_for_the_operator_without_a_retry(scale_url: str) -> None:
    site = register(scale_url, resolution="0.1")
    activities = DeviceActivities(open_scale=site.open_scale, open_mixer=opener(FakeMixer()),
                                  register=site)

    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(activities.read_weight,
                                  ReadWeightInput("B-1", "d/w/a", "SCALE-01", "g", "0", "9000"))

    assert info.value.type == "ReadingMismatch" and info.value.non_retryable
