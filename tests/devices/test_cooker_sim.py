"""The cooker simulator's process model, observed through the generic Modbus driver.

The simulator takes its clock from the test, so simulated time is stepped exactly and
the expected temperatures are the first-order solution, not timing guesses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest

from devices.cooker_sim import CookerSimulator
from devices.cooker_tags import COOKER_TAGS
from devices.plc import ModbusPlc, PlcSettings, SetpointRejected

TIME_SCALE = 20.0
TAU_S = 120.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance_simulated(self, seconds: float) -> None:
        self.now += seconds / TIME_SCALE


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cooker_port(clock: Clock) -> Iterator[int]:
    sim = CookerSimulator(time_scale=TIME_SCALE, tau_s=TAU_S, ambient_c=20.0, clock=clock)
    yield sim.start()
    sim.close()


@pytest.fixture
def cooker(cooker_port: int) -> Iterator[ModbusPlc]:
    settings = PlcSettings("127.0.0.1", cooker_port, timeout_s=1.0)
    with ModbusPlc(settings, tags=COOKER_TAGS) as plc:
        yield plc


def first_order(start: float, target: float, seconds: float, tau: float = TAU_S) -> Decimal:
    value = target + (start - target) * math.exp(-seconds / tau)
    return Decimal(f"{value:.1f}")


class TestCooking:
    def test_at_rest_the_core_is_at_ambient_and_nothing_heats(self, cooker: ModbusPlc) -> None:
        assert cooker.read_tags(["core_temp", "heating", "at_setpoint", "chill_temp"]) == {
            "core_temp": Decimal("20.0"),
            "heating": False,
            "at_setpoint": False,
            "chill_temp": Decimal("4"),
        }

    def test_the_core_rises_toward_the_setpoint_as_a_first_order_lag(
        self, cooker: ModbusPlc, clock: Clock
    ) -> None:
        assert cooker.write_setpoint("setpoint_temp", Decimal("75")) == Decimal("75")
        readings = []
        for _ in range(4):
            clock.advance_simulated(TAU_S)
            readings.append(cooker.read_tag("core_temp"))

        assert readings == [first_order(20, 75, TAU_S * n) for n in (1, 2, 3, 4)]
        assert readings == sorted(readings) and readings[-1] < Decimal("75")
        assert cooker.read_tag("heating") is True

    def test_at_setpoint_once_the_core_is_within_half_a_degree(
        self, cooker: ModbusPlc, clock: Clock
    ) -> None:
        cooker.write_setpoint("setpoint_temp", "72")
        clock.advance_simulated(TAU_S * 4)  # 72 - 52 e^-4 = 71.05
        assert cooker.read_tag("at_setpoint") is False

        clock.advance_simulated(TAU_S * 1)  # 71.65
        assert cooker.read_tags(["core_temp", "at_setpoint"]) == {
            "core_temp": Decimal("71.6"),
            "at_setpoint": True,
        }

    def test_a_lower_setpoint_lets_the_core_cool_passively_and_more_slowly(
        self, cooker: ModbusPlc, clock: Clock
    ) -> None:
        cooker.write_setpoint("setpoint_temp", "90")
        clock.advance_simulated(TAU_S * 10)
        hot = float(cooker.read_tag("core_temp"))
        cooker.write_setpoint("setpoint_temp", "30")

        clock.advance_simulated(TAU_S)

        assert cooker.read_tag("heating") is False
        assert cooker.read_tag("core_temp") == first_order(hot, 30, TAU_S, tau=TAU_S * 5)


class TestChilling:
    def test_chill_mode_cools_toward_the_chill_temperature_with_the_heater_off(
        self, cooker: ModbusPlc, clock: Clock
    ) -> None:
        cooker.write_setpoint("setpoint_temp", "75")
        clock.advance_simulated(TAU_S * 3)
        cooked = float(cooker.read_tag("core_temp"))

        assert cooker.write_setpoint("chill", True) is True
        clock.advance_simulated(TAU_S * 2)

        assert cooker.read_tags(["core_temp", "heating"]) == {
            "core_temp": first_order(cooked, 4, TAU_S * 2),
            "heating": False,
        }

    def test_the_chill_temperature_is_a_setpoint_too(
        self, cooker: ModbusPlc, clock: Clock
    ) -> None:
        cooker.write_setpoint("chill_temp", "2.5")
        cooker.write_setpoint("chill", "true")
        clock.advance_simulated(TAU_S * 20)

        assert cooker.read_tags(["core_temp", "at_setpoint"]) == {
            "core_temp": Decimal("2.5"),
            "at_setpoint": True,
        }


class TestRefusals:
    def test_the_plc_refuses_a_setpoint_above_its_limit_with_exception_3(
        self, cooker_port: int
    ) -> None:
        # A tag map without the driver-side limit, so the request reaches the PLC.
        tags = dict(COOKER_TAGS)
        tags["setpoint_temp"] = replace(tags["setpoint_temp"], maximum=None)
        settings = PlcSettings("127.0.0.1", cooker_port, timeout_s=1.0)
        with ModbusPlc(settings, tags=tags) as plc:
            with pytest.raises(SetpointRejected, match="Modbus exception 3") as raised:
                plc.write_setpoint("setpoint_temp", "250")

            assert raised.value.exception_code == 3
            assert plc.read_tag("setpoint_temp") == Decimal("0")

    def test_the_process_values_cannot_be_written(self, cooker: ModbusPlc) -> None:
        for name in ("core_temp", "heating", "at_setpoint"):
            with pytest.raises(SetpointRejected, match="the PLC owns it"):
                cooker.write_setpoint(name, 1)


def test_a_time_scale_of_zero_or_below_is_refused() -> None:
    with pytest.raises(ValueError, match="time_scale must be > 0"):
        CookerSimulator(time_scale=0)
