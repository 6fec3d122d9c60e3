"""Modbus TCP PLC simulators on pymodbus' server, for tests and demos.

`SimulatedPlc` serves a tag map (`devices/plc_tags.py`) and calls the subclass's process
logic inside pymodbus' request hook, before each request touches the registers, so every
answer is consistent with the simulated clock; no client can tell that nothing happens
between requests. `MixerSimulator` is the mixer below; the cooker is in `cooker_sim.py`.

The mixer (`devices.mixer_tags.MIXER_TAGS`):

- run command rising edge: latch the speed and duration setpoints, clear `complete` and
  `elapsed_s`, actual speed = setpoint speed;
- while running: `elapsed_s` counts simulated seconds;
- elapsed >= duration: actual speed 0, run command cleared, `complete` set;
- run command cleared by a client: the mixer stops, counters are kept.

Like a real PLC it refuses a speed setpoint above `max_speed_rpm`, and a start with a
zero speed or duration, with Modbus exception 3 (illegal data value). `complete` and the
input registers belong to the PLC: client writes to `complete` are refused (exception 2).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.errors import DeviceConnectionError
from devices.mixer_tags import MIXER_TAGS
from devices.plc_tags import Tag, TagTable, TagValue, span, tags_in

# Modbus function codes the logic reacts to.
_READ_COILS, _READ_DISCRETE, _READ_HOLDING, _READ_INPUT = 1, 2, 3, 4
_WRITE_COIL, _WRITE_REGISTER, _WRITE_COILS, _WRITE_REGISTERS = 5, 6, 15, 16
WRITE_REGISTER_CODES = (_WRITE_REGISTER, _WRITE_REGISTERS)
WRITE_COIL_CODES = (_WRITE_COIL, _WRITE_COILS)
# The datastore is addressed by function code: these pick each table.
_TABLE_CODE: dict[TagTable, int] = {
    "coil": _READ_COILS,
    "discrete": _READ_DISCRETE,
    "holding": _READ_HOLDING,
    "input": _READ_INPUT,
}


def within_limits(tag: Tag, registers: list[int]) -> bool:
    """Whether registers written to a setpoint tag hold a finite value inside the tag's
    min/max, as a PLC's input validation checks before accepting it."""
    try:
        value = tag.value_of(registers)
    except ValueError:
        return False  # NaN or infinity
    if not isinstance(value, Decimal):
        return True
    return not (
        (tag.minimum is not None and value < tag.minimum)
        or (tag.maximum is not None and value > tag.maximum)
    )


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


class SimulatedPlc:
    """A PLC serving `tags` on Modbus TCP; subclasses implement `_apply`.

    `time_scale` is how many simulated seconds pass per real second (1.0: real time).
    """

    def __init__(
        self, tags: Mapping[str, Tag], *, time_scale: float, device_id: int, name: str
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self._device_id = device_id
        self._tags = dict(tags)
        self._server = ModbusServerThread(self._device, name=name)
        self._in_hook = False  # only touched on the server's loop thread

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on host:port (0 = a free port); returns the bound port."""
        port = self._server.start(host, port)
        asyncio.run_coroutine_threadsafe(self._guarded(self._initialise()), self._server.loop()
                                         ).result(timeout=5.0)
        return port

    def close(self) -> None:
        self._server.close()

    async def _initialise(self) -> None:
        """Initial values of the PLC's registers, before the first request is served."""

    async def _guarded(self, work: Awaitable[object]) -> None:
        self._in_hook = True
        try:
            await work
        finally:
            self._in_hook = False

    async def _apply(
        self, function_code: int, address: int, written: list[int] | list[bool]
    ) -> ExcCodes | None:
        """The process logic for one request; an exception code refuses the request."""
        raise NotImplementedError

    def _written(self, name: str, address: int, written: list[int] | list[bool]) -> list[int]:
        """The registers (or bits) of tag `name` in a write starting at `address`; empty
        when the write does not cover the whole tag."""
        tag = self._tags[name]
        offset = tag.address - address
        if offset < 0 or offset + tag.size > len(written):
            return []
        return [int(v) for v in written[offset : offset + tag.size]]

    def _out_of_limits(
        self, names: tuple[str, ...], function_code: int, address: int,
        written: list[int] | list[bool],
    ) -> ExcCodes | None:
        """ILLEGAL_VALUE when a register write sets one of the tags `names` outside its
        limits, as a real PLC refuses a setpoint it cannot run."""
        if function_code not in WRITE_REGISTER_CODES:
            return None
        for name in names:
            registers = self._written(name, address, written)
            if registers and not within_limits(self._tags[name], registers):
                return ExcCodes.ILLEGAL_VALUE
        return None

    # -- datastore -------------------------------------------------------------------

    def _device(self) -> SimDevice:
        def extent(table: TagTable) -> int:
            tags = tags_in(table, self._tags)
            return max((tag.address + tag.size for tag in tags), default=1)

        def registers(table: TagTable) -> list[SimData]:
            return [SimData(0, count=extent(table), values=0, datatype=DataType.REGISTERS)]

        def bits(table: TagTable) -> list[SimData]:
            return [SimData(0, values=[False] * (16 * ((extent(table) + 15) // 16)),
                            datatype=DataType.BITS)]

        return SimDevice(
            self._device_id,
            # Separate tables, as on most PLCs: coil 0 and holding register 0 differ.
            simdata=(bits("coil"), bits("discrete"), registers("holding"), registers("input")),
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

    async def _read(self, table: TagTable) -> dict[str, TagValue]:
        """Engineering values of every tag in `table`."""
        tags = tags_in(table, self._tags)
        first, count = span(tags)
        regs = await self._store().async_getValues(
            self._device_id, _TABLE_CODE[table], first, count
        )
        return {
            tag.name: tag.value_of([int(r) for r in regs[tag.address - first :][: tag.size]])
            for tag in tags
        }

    async def _set(self, name: str, value: object) -> None:
        """Write a tag's engineering value into the datastore, whatever its table: the
        PLC writes its own inputs, which no client request can."""
        tag = self._tags[name]
        values: list[int] | list[bool] = tag.registers_for(value)
        if tag.is_bit:
            values = [bool(v) for v in values]
        await self._store().async_setValues(
            self._device_id, _TABLE_CODE[tag.table], tag.address, values
        )

    def _store(self) -> ModbusTcpServer:
        server = self._server.server
        assert server is not None, "server not started"
        return server


class MixerSimulator(SimulatedPlc):
    """A mixer PLC on Modbus TCP.

    A demo uses `time_scale` 20.0 so that a 3-minute mix (duration setpoint 180 s)
    completes in 9 real seconds. `elapsed_s` and the completion are in simulated
    seconds, as the PLC would count them, so the batch record shows the recipe's
    duration either way.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        device_id: int = 1,
        max_speed_rpm: int = 3000,
        tags: Mapping[str, Tag] = MIXER_TAGS,
    ) -> None:
        super().__init__(tags, time_scale=time_scale, device_id=device_id, name="mixer-sim")
        self.max_speed_rpm = max_speed_rpm
        # Mixer state; only touched on the server's loop thread.
        self._running = False
        self._started_at = 0.0
        self._latched_rpm = 0
        self._latched_s = 0

    async def _apply(
        self, function_code: int, address: int, written: list[int] | list[bool]
    ) -> ExcCodes | None:
        await self._advance()
        if function_code in WRITE_REGISTER_CODES:
            speed = self._written("speed_setpoint_rpm", address, written)
            if speed and self._tags["speed_setpoint_rpm"].decode(speed) > self.max_speed_rpm:
                return ExcCodes.ILLEGAL_VALUE
            return None
        if function_code not in WRITE_COIL_CODES:
            return None
        if self._written("complete", address, written):
            return ExcCodes.ILLEGAL_ADDRESS
        run = self._written("run_command", address, written)
        if run and run[0] and not self._running:
            return await self._start_run()
        if run and not run[0] and self._running:
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
        await self._set("complete", False)
        await self._publish(elapsed_s=0)
        return None

    async def _advance(self) -> None:
        """Bring the registers up to the simulated clock."""
        if not self._running:
            return
        elapsed = int((time.monotonic() - self._started_at) * self.time_scale)
        if elapsed >= self._latched_s:
            self._running = False
            await self._set("run_command", False)
            await self._set("complete", True)
            elapsed = self._latched_s
        await self._publish(elapsed_s=elapsed)

    async def _publish(self, *, elapsed_s: int | None) -> None:
        """Write actual speed (and elapsed time, unless None) to the input registers."""
        await self._set("speed_actual_rpm", self._latched_rpm if self._running else 0)
        if elapsed_s is not None:
            await self._set("elapsed_s", elapsed_s)
