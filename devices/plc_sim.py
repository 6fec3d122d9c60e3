"""A Modbus TCP mixer PLC simulator on pymodbus' server, for tests and demos.

It serves the mixer tag map (`devices.mixer_tags.MIXER_TAGS`) and runs the mixer logic:

- run command rising edge: latch the speed and duration setpoints, clear `complete` and
  `elapsed_s`, actual speed = setpoint speed;
- while running: `elapsed_s` counts simulated seconds;
- elapsed >= duration: actual speed 0, run command cleared, `complete` set;
- run command cleared by a client: the mixer stops, counters are kept.

Like a real PLC it refuses a speed setpoint above `max_speed_rpm`, and a start with a
zero speed or duration, with Modbus exception 3 (illegal data value). `complete` and the
input registers belong to the PLC: client writes to `complete` are refused (exception 2).

The logic runs inside pymodbus' request hook, before each request touches the
registers, so every answer is consistent with the simulated clock; no client can tell
that nothing happens between requests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.errors import DeviceConnectionError
from devices.mixer_tags import MIXER_TAGS, Tag, TagTable, span, tags_in

# Modbus function codes the logic reacts to.
_READ_COILS, _READ_HOLDING, _READ_INPUT = 1, 3, 4
_WRITE_COIL, _WRITE_REGISTER, _WRITE_COILS, _WRITE_REGISTERS = 5, 6, 15, 16
_TABLE_READ_CODE: dict[TagTable, int] = {
    "coil": _READ_COILS,
    "holding": _READ_HOLDING,
    "input": _READ_INPUT,
}


class ModbusServerThread:
    """Runs a pymodbus ModbusTcpServer for one SimDevice on its own asyncio loop thread."""

    def __init__(self, device_factory: Callable[[], SimDevice], *, name: str) -> None:
        self._device_factory = device_factory
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.server: ModbusTcpServer | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = a free port); returns the bound port."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(host, port), self._loop)
        try:
            return future.result(timeout=5.0)
        except (OSError, RuntimeError) as exc:
            self.close()
            raise DeviceConnectionError(
                f"{self._name} could not listen on {host}:{port} ({exc}): choose a free port"
            ) from exc

    def close(self) -> None:
        if self._loop is None:
            return
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.shutdown(), self._loop).result(5.0)
            self.server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._loop.close()
        self._loop = None

    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    async def _listen(self, host: str, port: int) -> int:
        self.server = ModbusTcpServer(self._device_factory(), address=(host, port))
        await self.server.serve_forever(background=True)
        return int(self.server.transport.sockets[0].getsockname()[1])


class MixerSimulator:
    """A mixer PLC on Modbus TCP.

    `time_scale` is how many simulated seconds pass per real second: 1.0 is real time;
    a demo uses 20.0 so that a 3-minute mix (duration setpoint 180 s) completes in 9 real
    seconds. `elapsed_s` and the completion are in simulated seconds, as the PLC would
    count them, so the batch record shows the recipe's duration either way.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        device_id: int = 1,
        max_speed_rpm: int = 3000,
        tags: Mapping[str, Tag] = MIXER_TAGS,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self.max_speed_rpm = max_speed_rpm
        self._device_id = device_id
        self._tags = dict(tags)
        self._server = ModbusServerThread(self._device, name="mixer-sim")
        # Mixer state; only touched on the server's loop thread.
        self._in_hook = False
        self._running = False
        self._started_at = 0.0
        self._latched_rpm = 0
        self._latched_s = 0

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on host:port (0 = a free port); returns the bound port."""
        return self._server.start(host, port)

    def close(self) -> None:
        self._server.close()

    # -- datastore -------------------------------------------------------------------

    def _device(self) -> SimDevice:
        def extent(table: TagTable) -> int:
            return max(tag.address + tag.size for tag in tags_in(table, self._tags))

        def registers(table: TagTable) -> list[SimData]:
            return [SimData(0, count=extent(table), values=0, datatype=DataType.REGISTERS)]

        bits = [False] * (16 * ((extent("coil") + 15) // 16))
        return SimDevice(
            self._device_id,
            # Separate tables, as on most PLCs: coil 0 and holding register 0 differ.
            simdata=(
                [SimData(0, values=bits, datatype=DataType.BITS)],
                [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                registers("holding"),
                registers("input"),
            ),
            action=self._on_request,
        )

    async def _on_request(
        self,
        function_code: int,
        _start_address: int,
        address: int,
        _count: int,
        _registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # Our own datastore reads and writes below come back through this hook.
        if self._in_hook:
            return None
        self._in_hook = True
        try:
            return await self._apply(function_code, address, list(set_values or []))
        finally:
            self._in_hook = False

    async def _apply(
        self, function_code: int, address: int, written: list[int] | list[bool]
    ) -> ExcCodes | None:
        def written_to(name: str) -> int | bool | None:
            offset = self._tags[name].address - address
            return written[offset] if 0 <= offset < len(written) else None

        await self._advance()
        if function_code in (_WRITE_REGISTER, _WRITE_REGISTERS):
            speed = written_to("speed_setpoint_rpm")
            if speed is not None and speed > self.max_speed_rpm:
                return ExcCodes.ILLEGAL_VALUE
            return None
        if function_code not in (_WRITE_COIL, _WRITE_COILS):
            return None
        if written_to("complete") is not None:
            return ExcCodes.ILLEGAL_ADDRESS
        run = written_to("run_command")
        if run and not self._running:
            return await self._start_run()
        if run is not None and not run and self._running:
            self._running = False
            await self._publish(elapsed_s=None)
        return None

    async def _start_run(self) -> ExcCodes | None:
        holding = await self._read("holding")
        speed = int(holding["speed_setpoint_rpm"])
        duration = int(holding["duration_setpoint_s"])
        if speed <= 0 or duration <= 0:
            return ExcCodes.ILLEGAL_VALUE
        self._running = True
        self._started_at = time.monotonic()
        self._latched_rpm, self._latched_s = speed, duration
        await self._write_coil("complete", False)
        await self._publish(elapsed_s=0)
        return None

    async def _advance(self) -> None:
        """Bring the registers up to the simulated clock."""
        if not self._running:
            return
        elapsed = int((time.monotonic() - self._started_at) * self.time_scale)
        if elapsed >= self._latched_s:
            self._running = False
            await self._write_coil("run_command", False)
            await self._write_coil("complete", True)
            elapsed = self._latched_s
        await self._publish(elapsed_s=elapsed)

    async def _publish(self, *, elapsed_s: int | None) -> None:
        """Write actual speed (and elapsed time, unless None) to the input registers."""
        await self._write_input("speed_actual_rpm", self._latched_rpm if self._running else 0)
        if elapsed_s is not None:
            await self._write_input("elapsed_s", elapsed_s)

    async def _read(self, table: TagTable) -> dict[str, int | float]:
        tags = tags_in(table, self._tags)
        first, count = span(tags)
        server = self._server.server
        assert server is not None
        regs = await server.async_getValues(self._device_id, _TABLE_READ_CODE[table], first, count)
        return {
            tag.name: tag.decode([int(r) for r in regs[tag.address - first :][: tag.size]])
            for tag in tags
        }

    async def _write_input(self, name: str, value: int) -> None:
        tag = self._tags[name]
        server = self._server.server
        assert server is not None
        # Function code 4 addresses the input-register table; no client request can write
        # it, which is what makes these registers the PLC's own.
        await server.async_setValues(self._device_id, _READ_INPUT, tag.address, tag.encode(value))

    async def _write_coil(self, name: str, value: bool) -> None:
        server = self._server.server
        assert server is not None
        await server.async_setValues(
            self._device_id, _WRITE_COIL, self._tags[name].address, [value]
        )
