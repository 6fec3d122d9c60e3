"""The generic Modbus driver: tags of every table and type, Decimal values, setpoints
verified by read-back, and refusals before anything is written."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Iterator
from decimal import Decimal

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes

from devices.errors import PlcError, PlcTimeout
from devices.plc import ModbusPlc, PlcSettings, SetpointRejected, UnknownTag
from devices.plc_sim import SimulatedPlc
from devices.plc_tags import Tag

TAGS = {
    tag.name: tag
    for tag in (
        Tag("run", "coil", 3),
        Tag("alarm", "discrete", 5),
        Tag("enabled", "holding", 0, "bool"),
        Tag("setpoint", "holding", 1, "int16", scale=Decimal("0.1"), unit="degC",
            minimum=Decimal("-20"), maximum=Decimal("150")),
        Tag("batch_count", "holding", 2, "uint32", word_order="little"),
        Tag("pressure", "holding", 4, "float32", "little", "little", unit="bar"),
        Tag("far_away", "holding", 300, "uint16"),
        Tag("speed", "input", 0, "int32"),
        Tag("temperature", "input", 2, "float32", decimals=2),
        Tag("level", "input", 4, "uint16", scale=Decimal("0.5"), unit="%"),
    )
}  # fmt: skip


class PassivePlc(SimulatedPlc):
    """Stores what clients write; the test sets the PLC-owned inputs."""

    def __init__(self) -> None:
        super().__init__(TAGS, time_scale=1.0, device_id=1, name="passive-plc")

    async def _apply(self, *_args: object) -> ExcCodes | None:
        return None

    def set_input(self, name: str, value: object) -> None:
        self._run(self._set(name, value))

    def set_input_registers(self, address: int, registers: list[int]) -> None:
        self._run(self._store().async_setValues(1, 4, address, registers))

    def _run(self, work: Awaitable[object]) -> None:
        future = asyncio.run_coroutine_threadsafe(self._guarded(work), self._server.loop())
        future.result(timeout=2.0)


@pytest.fixture
def passive() -> Iterator[tuple[PassivePlc, int]]:
    sim = PassivePlc()
    port = sim.start()
    yield sim, port
    sim.close()


@pytest.fixture
def plc(passive: tuple[PassivePlc, int]) -> Iterator[ModbusPlc]:
    settings = PlcSettings("127.0.0.1", passive[1], timeout_s=1.0)
    with ModbusPlc(settings, tags=TAGS, name="OVEN-3") as client:
        yield client


def raw_registers(port: int, address: int, count: int) -> list[int]:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1.0)
    try:
        client.connect()
        return list(client.read_holding_registers(address, count=count, device_id=1).registers)
    finally:
        client.close()


class TestReading:
    def test_every_table_and_type_reads_as_decimal_or_bool(
        self, passive: tuple[PassivePlc, int], plc: ModbusPlc
    ) -> None:
        sim, _ = passive
        sim.set_input("alarm", True)
        sim.set_input("speed", -70000)
        sim.set_input("temperature", Decimal("72.345678"))
        sim.set_input("level", Decimal("87.5"))

        assert plc.read_tags(TAGS) == {
            "run": False,
            "alarm": True,
            "enabled": False,
            "setpoint": Decimal("0.0"),
            "batch_count": Decimal(0),
            "pressure": Decimal(0),
            "far_away": Decimal(0),
            "speed": Decimal(-70000),
            "temperature": Decimal("72.35"),  # float32 72.345678, at the tag's 2 decimals
            "level": Decimal("87.5"),
        }

    def test_a_float32_reads_as_the_decimal_the_plc_shows(
        self, passive: tuple[PassivePlc, int], plc: ModbusPlc
    ) -> None:
        passive[0].set_input("temperature", Decimal("0.1"))
        untruncated = Tag("t", "input", 2, "float32")
        with ModbusPlc(PlcSettings("127.0.0.1", passive[1]), tags={"t": untruncated}) as raw:
            assert raw.read_tag("t") == Decimal("0.1")  # not 0.100000001490116...

    def test_a_float32_that_is_not_a_number_is_an_error_not_a_value(
        self, passive: tuple[PassivePlc, int], plc: ModbusPlc
    ) -> None:
        passive[0].set_input_registers(2, [0x7FC0, 0x0000])  # float32 quiet NaN

        with pytest.raises(PlcError, match=r"temperature holds nan .* no value was taken"):
            plc.read_tag("temperature")

    def test_an_unknown_tag_names_the_tags_that_exist(self, plc: ModbusPlc) -> None:
        with pytest.raises(UnknownTag, match=r"No tag 'core_temp' .* OVEN-3 .*tags: alarm, "):
            plc.read_tag("core_temp")


class TestSetpoints:
    def test_a_setpoint_is_written_in_the_tags_layout_and_read_back(
        self, passive: tuple[PassivePlc, int], plc: ModbusPlc
    ) -> None:
        assert plc.write_setpoint("pressure", "2.5") == Decimal("2.5")
        assert plc.write_setpoint("batch_count", 70000) == Decimal(70000)

        # float32 2.5 = 0x4020_0000, low word first, bytes swapped in each word.
        assert raw_registers(passive[1], 2, 4) == [0x1170, 0x0001, 0x0000, 0x2040]

    def test_a_scaled_setpoint_is_stored_as_whole_steps(
        self, passive: tuple[PassivePlc, int], plc: ModbusPlc
    ) -> None:
        assert plc.write_setpoint("setpoint", Decimal("-12.5")) == Decimal("-12.5")
        assert raw_registers(passive[1], 1, 1) == [0x10000 - 125]

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("setpoint", "72.55", r"setpoint=72.55 degC must be a multiple of 0.1"),
            ("setpoint", 151, r"setpoint=151 degC is above its maximum 150 degC"),
            ("setpoint", "-20.1", r"is below its minimum -20 degC"),
            ("setpoint", "hot", r"setpoint takes a finite number, got 'hot'"),
            ("setpoint", True, r"setpoint takes a number, got True"),
            ("batch_count", -1, r"does not fit uint32"),
            ("run", "maybe", r"run is on/off: give true or false"),
            ("speed", 5, r"speed is an input register of PLC OVEN-3"),
            ("alarm", True, r"alarm is a discrete input of PLC OVEN-3"),
        ],
    )
    def test_an_unsuitable_value_is_refused_before_anything_is_written(
        self, passive: tuple[PassivePlc, int], plc: ModbusPlc, name: str, value: object,
        message: str,
    ) -> None:
        before = raw_registers(passive[1], 0, 6)

        with pytest.raises(SetpointRejected, match=message):
            plc.write_setpoint(name, value)

        assert raw_registers(passive[1], 0, 6) == before

    def test_on_off_tags_take_bools_and_words(self, plc: ModbusPlc) -> None:
        assert plc.write_setpoint("run", True) is True
        assert plc.write_setpoint("enabled", "on") is True
        assert plc.write_setpoint("run", 0) is False
        assert plc.read_tags(["run", "enabled"]) == {"run": False, "enabled": True}

    def test_tags_far_apart_are_read_in_separate_requests(self, plc: ModbusPlc) -> None:
        plc.write_setpoint("far_away", 7)

        assert plc.read_tags(["enabled", "far_away"]) == {
            "enabled": False,
            "far_away": Decimal(7),
        }


class TestSilentPlc:
    def test_a_silent_plc_is_a_timeout_within_the_configured_time(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = int(listener.getsockname()[1])
            plc = ModbusPlc(PlcSettings("127.0.0.1", port, timeout_s=0.3), tags=TAGS,
                            name="OVEN-3")
            started = time.monotonic()

            with pytest.raises(PlcTimeout, match=r"PLC OVEN-3 \(127.0.0.1:\d+\) did not answer"):
                plc.read_tag("speed")

            assert time.monotonic() - started < 2.0
            plc.close()
