"""The register's Modbus tags (scaling, limits, every table), the simulated cooker, and
stations: which task queue hosts each bound equipment's device activities."""

from __future__ import annotations

from decimal import Decimal

import pytest

from devices.register import (
    DEFAULT_REGISTER,
    RegisterError,
    load_register,
    parse_register,
    station_task_queue,
)

SIM_STATE = {
    "scale_port": "/dev/pts/42",
    "plc_host": "127.0.0.1",
    "plc_port": 15020,
    "cooker_host": "127.0.0.1",
    "cooker_port": 15021,
}

STATIONS = """\
ebr_equipment: 1
equipment:
  SCALE-A:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB0}
    serial_number: "A1"
    calibration_due: 2099-01-01
    cleaning: {status: clean, cleaned_at: 2026-02-01T06:30:00Z}
    station: booth-1
  SCALE-B:
    class: scale
    driver: mt-sics
    connection: {url: "socket://10.1.2.3:4001"}
    serial_number: "B1"
    calibration_due: 2099-01-01
    cleaning: {status: clean, cleaned_at: 2026-02-01T06:30:00Z}
  OVEN-1:
    class: oven
    driver: modbus-tcp
    connection: {host: 10.0.0.9}
    station: booth-1
    tags:
      setpoint:
        {table: holding, address: 0, type: int16, scale: 0.1, unit: degC, min: -20, max: 250}
      temp: {table: input, address: 0, type: float32, word_order: little, decimals: 1}
      door_open: {table: discrete, address: 0}
      enabled: {table: holding, address: 1, type: bool}
    cleaning: {status: clean, cleaned_at: 2026-02-01T06:30:00Z}
"""


class TestStations:
    def test_bound_equipment_at_a_station_runs_on_that_stations_queue(self) -> None:
        register = parse_register(STATIONS)

        binding = {"scale": "SCALE-A", "bulk scale": "SCALE-B", "oven": "OVEN-1"}

        queues = register.task_queues(binding)

        assert queues == {"SCALE-A": "ebr-station-booth-1", "OVEN-1": "ebr-station-booth-1"}
        assert station_task_queue("booth-1") == "ebr-station-booth-1"

    def test_the_station_lists_its_equipment(self) -> None:
        register = parse_register(STATIONS)

        assert [e.equipment_id for e in register.at_station("booth-1")] == ["SCALE-A", "OVEN-1"]
        assert register.stations() == ["booth-1"]
        assert register.at_station("booth-9") == []

    def test_a_station_name_must_be_usable_in_a_task_queue_name(self) -> None:
        with pytest.raises(RegisterError, match=r"SCALE-A.station: a station name is letters"):
            parse_register(STATIONS.replace("station: booth-1", "station: booth 1", 1))


class TestRegisterTags:
    def test_tags_carry_scaling_limits_units_and_every_table(self) -> None:
        tags = parse_register(STATIONS).get("OVEN-1").tags

        setpoint = tags["setpoint"]
        assert (setpoint.scale, setpoint.unit, setpoint.minimum, setpoint.maximum) == (
            Decimal("0.1"), "degC", Decimal(-20), Decimal(250),
        )  # fmt: skip
        assert setpoint.registers_for(Decimal("72.5")) == [725]
        assert (tags["temp"].decimals, tags["temp"].word_order) == (1, "little")
        assert (tags["door_open"].table, tags["door_open"].datatype) == ("discrete", "bool")
        assert tags["enabled"].is_bool

    @pytest.mark.parametrize(
        ("tag", "message"),
        [
            ("{table: coil, address: 0, type: int16}", "x.type: must be one of bool"),
            ("{table: input, address: 0, type: float32, scale: 0.1}", "drop scale"),
            ("{table: coil, address: 0, unit: degC}", "only numeric register tags take unit"),
            ("{table: holding, address: 0, min: 5, max: 1}", "min 5 is above max 1"),
            ("{table: holding, address: 0, decimals: 9}", "decimals: must be between 0 and 6"),
            ("{table: memory, address: 0}", "table: must be one of holding, input, coil"),
        ],
    )
    def test_a_tag_that_cannot_be_right_is_refused(self, tag: str, message: str) -> None:
        text = STATIONS.replace(
            "      door_open: {table: discrete, address: 0}\n", f"      x: {tag}\n"
        )
        with pytest.raises(RegisterError, match=message):
            parse_register(text)

    def test_modbus_equipment_needs_a_tag_map_or_inline_tags(self) -> None:
        text = STATIONS[: STATIONS.index("    tags:")] + (
            "    cleaning: {status: clean, cleaned_at: 2026-02-01T06:30:00Z}\n"
        )
        with pytest.raises(RegisterError, match=r"OVEN-1\.tag_map: required"):
            parse_register(text)


class TestSimulatedCooker:
    def test_the_default_register_has_a_simulated_cooker_with_the_recipe_tags(self) -> None:
        register = load_register(DEFAULT_REGISTER, simulator_state=lambda: SIM_STATE)

        cooker = register.get("COOKER-01")
        settings = register.plc_settings("COOKER-01")

        assert cooker.equipment_class == "cooker"
        assert {"setpoint_temp", "core_temp", "heating"} <= set(cooker.tags)
        assert (settings.host, settings.port) == ("127.0.0.1", 15021)
        assert register.plc_settings("MIXER-01").port == 15020

    def test_a_class_no_simulator_plays_cannot_be_simulated(self) -> None:
        with pytest.raises(RegisterError, match="no simulator plays a 'oven'"):
            parse_register(STATIONS.replace("{host: 10.0.0.9}", "{host: simulator}"))
