"""Device activities against the simulators over real transports: MT-SICS on a
pseudo-terminal, Modbus TCP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.devices import DeviceActivities
from devices.modbus_plc import MixerPlc, PlcSettings
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.plc_sim import MixerSimulator
from devices.register import parse_register
from devices.scale_sim import ScaleSimulator
from workflows.messages import MixInput, ReadWeightInput


@pytest.fixture
def rig() -> Iterator[tuple[ScaleSimulator, DeviceActivities]]:
    scale = ScaleSimulator()
    port = scale.serve_pty()
    mixer = MixerSimulator(time_scale=60.0)
    plc_port = mixer.start()
    activities = DeviceActivities(
        open_scale=lambda eq: MtSicsScale(ScaleSettings(url=port, name=eq, timeout_s=1.0)),
        open_mixer=lambda eq: MixerPlc(PlcSettings(host="127.0.0.1", port=plc_port)),
        settle_timeout_s=1.0,
    )
    yield scale, activities
    scale.close()
    mixer.close()


def weigh(unit: str = "g", low: str = "1188", high: str = "1212") -> ReadWeightInput:
    return ReadWeightInput("B-1", "d/w/a", "SCALE-01", unit, low, high)


def test_reading_keeps_the_scale_frames_and_resolution(rig):
    scale, activities = rig
    scale.set_weight("1200.40")
    reading = ActivityEnvironment().run(activities.read_weight, weigh())
    assert reading.value == "1200.40" and reading.unit == "g" and reading.in_tolerance
    assert reading.raw_frames[-1] == "S S    1200.40 g"
    assert reading.device_serial == "B123456789"


def test_reading_is_converted_to_the_recipe_unit_with_pint(rig):
    scale, activities = rig
    scale.set_weight("1200.40")
    reading = ActivityEnvironment().run(activities.read_weight, weigh("kg", "1.188", "1.212"))
    assert reading.value == "1.20040" and reading.unit == "kg" and reading.device_value == "1200.40"


def test_unstable_scale_is_a_non_retryable_failure_with_the_scale_message(rig):
    scale, activities = rig
    scale.set_stable(False)
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(activities.read_weight, weigh())
    assert info.value.non_retryable and info.value.type == "ScaleUnstable"
    assert "SCALE-01" in str(info.value)


def test_overloaded_scale_is_refused(rig):
    scale, activities = rig
    scale.set_weight("7000.00")
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(activities.read_weight, weigh())
    assert info.value.type == "ScaleOverload"


def test_mix_runs_on_the_plc_until_it_reports_complete(rig):
    _, activities = rig
    env = ActivityEnvironment()
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    run = env.run(activities.run_mix, MixInput("B-1", "b/b/mix", "MIXER-01", 25, 60))
    assert run.run_time_s >= 60 and run.speed_rpm == 25
    assert heartbeats  # the worker knows the mix is alive


REGISTER = """\
ebr_equipment: 1
equipment:
  SCALE-01:
    class: scale
    driver: mt-sics
    connection: {url: simulator, timeout_s: 1.0}
    serial_number: %(serial)s
    calibration_due: %(due)s
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
"""


def checked(scale: ScaleSimulator, serial: str = "B123456789", due: str = "2099-12-31"):  # type: ignore[no-untyped-def]
    """Activities with a real register whose simulated scale is this simulator's pty."""
    port = scale.serve_pty()
    register = parse_register(
        REGISTER % {"serial": serial, "due": due}, simulator_state=lambda: {"scale_port": port}
    )
    return DeviceActivities(
        open_scale=lambda eq: MtSicsScale(register.scale_settings(eq)),
        open_mixer=lambda eq: pytest.fail("no mixer here"),
        settle_timeout_s=1.0,
        register=register,
    )


def test_registered_scale_with_its_serial_and_calibration_is_read(rig):
    scale, _ = rig
    scale.set_weight("1200.00")
    reading = ActivityEnvironment().run(checked(scale).read_weight, weigh())
    assert reading.value == "1200.00" and reading.device_serial == "B123456789"


def test_a_scale_with_another_serial_number_is_refused_before_weighing(rig):
    scale, _ = rig
    scale.set_weight("1200.00")
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(checked(scale, serial="X-OTHER").read_weight, weigh())
    assert info.value.non_retryable and info.value.type == "WrongInstrument"
    assert "'B123456789'" in str(info.value) and "'X-OTHER'" in str(info.value)


def test_an_overdue_scale_is_refused_without_talking_to_it(rig):
    scale, _ = rig
    scale.set_fault("silent")  # would time out if the activity asked the scale anything
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(checked(scale, due="2020-01-31").read_weight, weigh())
    assert info.value.non_retryable and info.value.type == "CalibrationOverdue"
    assert "calibration was due on 2020-01-31" in str(info.value)
