"""Every Modbus exception code a PLC may answer with becomes a PlcError naming the code,
its meaning and what to do; nothing is started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.errors import PlcError
from devices.modbus_plc import MixerPlc, PlcSettings
from devices.plc_sim import ModbusServerThread


def refusing_plc(code: ExcCodes) -> ModbusServerThread:
    async def refuse(*_args: object) -> ExcCodes:
        return code

    def device() -> SimDevice:
        return SimDevice(
            1,
            simdata=(
                [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                [SimData(0, count=4, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=3, values=0, datatype=DataType.REGISTERS)],
            ),
            action=refuse,
        )

    return ModbusServerThread(device, name=f"refusing-plc-{int(code)}")


@pytest.fixture(
    params=[
        (ExcCodes.ILLEGAL_FUNCTION, "illegal function"),
        (ExcCodes.ILLEGAL_ADDRESS, "illegal data address"),
        (ExcCodes.ILLEGAL_VALUE, "illegal data value"),
        (ExcCodes.DEVICE_FAILURE, "device failure"),
        (ExcCodes.DEVICE_BUSY, "device busy"),
    ]
)
def refusal(request: pytest.FixtureRequest) -> Iterator[tuple[int, int, str]]:
    code, meaning = request.param
    server = refusing_plc(code)
    port = server.start()
    yield port, int(code), meaning
    server.close()


def test_exception_codes_are_plc_errors_with_code_and_meaning(refusal):
    port, code, meaning = refusal
    with MixerPlc(PlcSettings("127.0.0.1", port, timeout_s=1.0)) as plc, pytest.raises(
        PlcError
    ) as info:
        plc.start(100, 60)
    assert info.value.exception_code == code
    assert f"Modbus exception {code}, {meaning}" in str(info.value)
