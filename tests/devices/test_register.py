"""The YAML equipment register: strict loading, every problem reported, connections
resolved from the simulators' state, fitness for use."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from devices.register import (
    DEFAULT_REGISTER,
    CalibrationOverdue,
    DeviceUnavailable,
    NotClean,
    RegisterError,
    UnknownEquipment,
    WrongInstrument,
    load_register,
    parse_register,
)

SIM_STATE = {"scale_port": "/dev/pts/42", "plc_host": "127.0.0.1", "plc_port": 15020}

SCALE = """\
ebr_equipment: 1
equipment:
  SCALE-07:
    class: scale
    driver: mt-sics
    connection: {url: "socket://10.1.2.3:4001", baudrate: 19200, parity: E, timeout_s: 1.5}
    serial_number: "0123456789"
    capacity: 32000
    resolution: 0.1
    unit: g
    calibration_due: %(due)s
    cleaning: {status: %(status)s, cleaned_at: 2026-02-01T06:30:00Z}
"""


def scale_register(due: str = "2030-01-31", status: str = "clean"):  # type: ignore[no-untyped-def]
    return parse_register(SCALE % {"due": due, "status": status}, source="test.yaml")


def test_default_register_takes_simulator_addresses_from_the_state_file():
    register = load_register(DEFAULT_REGISTER, simulator_state=lambda: SIM_STATE)
    scale = register.scale_settings("SCALE-01")
    plc = register.plc_settings("MIXER-01")
    assert (scale.url, scale.name) == ("/dev/pts/42", "SCALE-01")
    assert (plc.host, plc.port) == ("127.0.0.1", 15020)
    assert register.get("SCALE-01").serial_number == "B123456789"
    assert register.get("MIXER-01").tags["duration_setpoint_s"].datatype == "int32"


def test_simulated_device_without_a_running_simulator_names_the_fix():
    register = load_register(DEFAULT_REGISTER, simulator_state=dict)
    with pytest.raises(DeviceUnavailable, match="start the simulators"):
        register.scale_settings("SCALE-01")


def test_real_connection_settings_and_exact_decimals_are_kept():
    entry = scale_register().get("SCALE-07")
    settings = scale_register().scale_settings("SCALE-07")
    assert settings.url == "socket://10.1.2.3:4001"
    assert (settings.baudrate, settings.parity, settings.timeout_s) == (19200, "E", 1.5)
    assert entry.resolution == Decimal("0.1") and entry.capacity == Decimal(32000)
    assert entry.serial_number == "0123456789"


def test_overdue_calibration_makes_the_scale_unfit():
    register = scale_register(due="2026-03-01")
    register.check_fit_for_use("SCALE-07", today=date(2026, 3, 1))  # due today is still fine
    with pytest.raises(CalibrationOverdue, match="due on 2026-03-01"):
        register.check_fit_for_use("SCALE-07", today=date(2026, 3, 2))


def test_dirty_equipment_is_unfit():
    with pytest.raises(NotClean, match="dirty"):
        scale_register(status="dirty").check_fit_for_use("SCALE-07", today=date(2026, 1, 1))


def test_a_different_serial_number_is_refused():
    register = scale_register()
    register.check_scale_identity("SCALE-07", "0123456789")
    with pytest.raises(WrongInstrument, match=r"'B999'.*'0123456789'"):
        register.check_scale_identity("SCALE-07", "B999")


def test_unknown_ids_and_wrong_kinds_name_what_is_registered():
    register = scale_register()
    with pytest.raises(UnknownEquipment, match="registered: SCALE-07"):
        register.get("SCALE-99")
    with pytest.raises(UnknownEquipment, match="not a Modbus TCP device"):
        register.plc_settings("SCALE-07")


def test_every_problem_in_the_file_is_reported_at_once():
    text = """\
ebr_equipment: 1
equipment:
  SCALE-02:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB0, baudrate: fast, parity: X}
    cleaning: {status: sparkling}
    colour: blue
  MIXER-02:
    class: mixer
    driver: profibus
"""
    with pytest.raises(RegisterError) as info:
        parse_register(text, source="site.yaml")
    problems = "\n".join(info.value.problems)
    for expected in (
        "equipment.SCALE-02.connection.baudrate: must be a whole number",
        "equipment.SCALE-02.connection.parity",
        "equipment.SCALE-02.serial_number: required",
        "equipment.SCALE-02.calibration_due: required",
        "equipment.SCALE-02.cleaning.status: must be clean or dirty",
        "equipment.SCALE-02.colour: unknown key",
        "equipment.MIXER-02.driver: must be one of mt-sics, modbus-tcp",
    ):
        assert expected in problems
    assert "site.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ebr_equipment: 1\nequipment: {}\nequipment: {}\n", "duplicate key 'equipment'"),
        ("ebr_equipment: &v 1\nequipment: {}\n", "anchors and aliases"),
        ("a: [" * 40 + "]" * 40, "nested deeper"),
        ("ebr_equipment: 1\nequipment: {X: {capacity: .inf}}\n", "not a finite number"),
        ("ebr_equipment: 1\nequipment: [\n", "YAML syntax error"),
    ],
)
def test_unsafe_or_broken_yaml_is_refused(text: str, message: str):
    with pytest.raises(RegisterError, match=message):
        parse_register(text)


def test_inline_tag_maps_carry_type_word_and_byte_order():
    text = """\
ebr_equipment: 1
tag_maps:
  cooker-v2:
    setpoint_c: {table: holding, address: 10, type: float32, word_order: little}
    core_c: {table: input, address: 0, type: float32, byte_order: little}
    level: {table: input, address: 2, type: int16}
equipment:
  COOKER-01:
    class: cooker
    driver: modbus-tcp
    connection: {host: 10.0.0.5, device_id: 3}
    tag_map: cooker-v2
    cleaning: {status: clean, cleaned_at: 2026-02-01T06:30:00+01:00}
"""
    entry = parse_register(text).get("COOKER-01")
    assert entry.tags["setpoint_c"].word_order == "little"
    assert entry.tags["core_c"].byte_order == "little"
    assert entry.tags["level"].datatype == "int16"
    assert entry.calibration_due is None  # not subject to calibration


def test_overlapping_tags_and_incomplete_mixer_maps_are_refused():
    text = """\
ebr_equipment: 1
equipment:
  MIXER-09:
    class: mixer
    driver: modbus-tcp
    connection: {host: 10.0.0.6}
    tags:
      speed_setpoint_rpm: {table: holding, address: 0, type: int32}
      duration_setpoint_s: {table: holding, address: 1, type: int32}
    cleaning: {status: dirty}
"""
    with pytest.raises(RegisterError) as info:
        parse_register(text)
    problems = "\n".join(info.value.problems)
    assert "holding address 1 is already used by speed_setpoint_rpm" in problems
    assert "a mixer's tag map must define" in problems and "run_command" in problems


def test_a_simulated_scale_with_its_own_serial_number_takes_its_own_simulator():
    state = {**SIM_STATE, "scales": {"B323456789": {"scale_port": "/dev/pts/43"}},
             "dryer_host": "127.0.0.1", "dryer_port": 15022}
    register = load_register(DEFAULT_REGISTER, simulator_state=lambda: state)

    assert register.scale_settings("SCALE-03").url == "/dev/pts/43"
    assert register.scale_settings("SCALE-02").url == "/dev/pts/42"  # none of its own running
    assert register.plc_settings("DRYER-01").port == 15022
    assert "inlet_temp_setpoint" in register.get("DRYER-01").tags
