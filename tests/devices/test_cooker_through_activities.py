"""The batch's PLC phases (plc_set / plc_read activities) against the simulated cooker
over Modbus TCP, through the equipment register's opener: what a sausage recipe's
cooking steps do, with the recipe's tag names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.devices import DeviceActivities
from devices.cooker_sim import CookerSimulator
from devices.register import DEFAULT_REGISTER, load_register
from runtime.equipment import EquipmentRegister
from workflows.messages import PlcReadInput, PlcSetInput


@pytest.fixture
def activities() -> Iterator[DeviceActivities]:
    sim = CookerSimulator(time_scale=1.0)
    port = sim.start()
    state = {"cooker_host": "127.0.0.1", "cooker_port": port}
    register = EquipmentRegister(
        register=load_register(DEFAULT_REGISTER, simulator_state=lambda: state)
    )
    yield DeviceActivities(
        open_scale=register.open_scale, open_mixer=register.open_mixer,
        open_plc=register.open_plc, register=register,
    )  # fmt: skip
    sim.close()


def plc_set(activities: DeviceActivities, tag: str, value: str):  # type: ignore[no-untyped-def]
    return ActivityEnvironment().run(
        activities.plc_set, PlcSetInput("B-1", "cooking/cook/set", "COOKER-01", tag, value)
    )


def plc_read(activities: DeviceActivities, tag: str):  # type: ignore[no-untyped-def]
    return ActivityEnvironment().run(
        activities.plc_read, PlcReadInput("B-1", "cooking/cook/read", "COOKER-01", tag)
    )


def test_the_setpoint_is_written_read_back_and_the_core_is_read(activities) -> None:
    assert plc_set(activities, "setpoint_temp", "78").value == "78"
    assert plc_read(activities, "heating").value == "1"
    assert plc_read(activities, "core_temp").value == "20.0"


def test_chilling_is_switched_on_by_setting_its_coil_to_1(activities) -> None:
    assert plc_set(activities, "chill_temp", "2").value == "2"
    assert plc_set(activities, "chill", "1").value == "1"


def test_a_setpoint_outside_the_cookers_limits_fails_with_the_reason(activities) -> None:
    with pytest.raises(ApplicationError) as info:
        plc_set(activities, "setpoint_temp", "130")

    assert info.value.type == "SetpointRejected"
    assert "COOKER-01" in str(info.value) and "above its maximum 120 degC" in str(info.value)
    assert plc_read(activities, "setpoint_temp").value == "0"


def test_a_tag_the_cooker_does_not_have_fails_naming_its_tags(activities) -> None:
    with pytest.raises(ApplicationError) as info:
        plc_read(activities, "core_temperature")

    assert info.value.type == "UnknownTag" and "core_temp" in str(info.value)
