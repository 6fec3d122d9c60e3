"""How the Modbus driver reports PLCs that refuse, fall silent or are not there."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.errors import DeviceConnectionError, PlcError, PlcTimeout
from devices.modbus_plc import MixerPlc, PlcSettings
from devices.plc_sim import MixerSimulator, ModbusServerThread


@pytest.fixture
def clamping_plc_port() -> Iterator[int]:
    """A PLC that silently limits the speed setpoint to 1000 rpm instead of refusing it."""

    async def clamp_speed(
        function_code: int,
        _start: int,
        address: int,
        _count: int,
        _registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        if function_code in (6, 16) and address == 0 and set_values:
            set_values[0] = min(int(set_values[0]), 1000)

    def device() -> SimDevice:
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return SimDevice(
            1,
            simdata=(
                bits,
                [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                [SimData(0, count=4, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=3, values=0, datatype=DataType.REGISTERS)],
            ),
            action=clamp_speed,
        )

    server = ModbusServerThread(device, name="clamping-plc")
    yield server.start()
    server.close()


@pytest.fixture
def silent_plc_port() -> Iterator[int]:
    """A listener that completes TCP handshakes (via its backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield int(listener.getsockname()[1])


class TestRefusedRequests:
    def test_an_exception_response_raises_with_its_code_and_nothing_starts(
        self, plc: MixerPlc
    ) -> None:
        with pytest.raises(PlcError, match=r"exception 3, illegal data value") as raised:
            plc.start(5000, 60)  # above the simulated mixer's 3000 rpm limit

        assert raised.value.exception_code == 3
        assert plc.status().running is False

    def test_a_setpoint_read_back_other_than_written_raises_and_nothing_starts(
        self, clamping_plc_port: int
    ) -> None:
        with MixerPlc(PlcSettings("127.0.0.1", clamping_plc_port, timeout_s=1.0)) as plc:
            with pytest.raises(PlcError, match="holds speed_setpoint_rpm=1000 after 1500"):
                plc.start(1500, 60)

            assert plc.status().running is False

    @pytest.mark.parametrize(("speed", "duration"), [(0, 60), (1200, 0), (70000, 60)])
    def test_setpoints_out_of_range_are_rejected_before_anything_is_written(
        self, plc: MixerPlc, speed: int, duration: int
    ) -> None:
        with pytest.raises(
            ValueError, match=r"(speed|duration)_setpoint_\w+ must be an integer >= 1"
        ):
            plc.start(speed, duration)

        assert plc.status().setpoint_rpm == 0


class TestUnreachablePlc:
    def test_connection_refused_is_a_plc_connection_error(self, free_port: int) -> None:
        plc = MixerPlc(PlcSettings("127.0.0.1", free_port, timeout_s=0.5))

        with pytest.raises(PlcError, match=f"PLC 127.0.0.1:{free_port} is not reachable") as e:
            plc.status()

        assert isinstance(e.value, DeviceConnectionError)

    def test_a_silent_plc_times_out_with_an_actionable_message(self, silent_plc_port: int) -> None:
        plc = MixerPlc(PlcSettings("127.0.0.1", silent_plc_port, timeout_s=0.3))
        started = time.monotonic()

        with pytest.raises(
            PlcTimeout,
            match=f"PLC 127.0.0.1:{silent_plc_port} did not answer within 0.3 s .*PLC is in RUN",
        ):
            plc.status()

        assert time.monotonic() - started < 1.5
        plc.close()

    def test_the_driver_reconnects_once_the_plc_is_back(self, free_port: int) -> None:
        plc = MixerPlc(PlcSettings("127.0.0.1", free_port, timeout_s=0.5))
        with pytest.raises(PlcError):
            plc.status()
        sim = MixerSimulator()
        try:
            sim.start(port=free_port)

            assert plc.status().running is False
        finally:
            plc.close()
            sim.close()
