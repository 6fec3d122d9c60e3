"""A Modbus TCP driver for the mixer PLC (pymodbus 3.16, synchronous client).

Writes are absolute setpoints verified by read-back, so any write can be repeated safely
(a retried activity, a re-sent request). The driver never computes run time itself: the
PLC counts, the driver reports what the PLC says.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from devices.errors import PlcConnectionError, PlcError, PlcTimeout
from devices.mixer_tags import MIXER_TAGS, Tag, TagTable, span, tags_in

__all__ = ["MIXER_TAGS", "MixerPlc", "MixerStatus", "PlcSettings", "Tag"]

_EXCEPTION_HINTS = {
    1: ("illegal function", "the PLC does not support this request: check the PLC model"),
    2: (
        "illegal data address",
        "the address is not mapped: check the tag map against the PLC program",
    ),
    3: (
        "illegal data value",
        "the PLC rejected the value: check the setpoint against the mixer's limits in the recipe",
    ),
    4: ("device failure", "the PLC reported an internal fault: check its diagnostics"),
    6: ("device busy", "the PLC is busy: retry in a moment"),
    10: ("gateway path unavailable", "check the gateway and the device id in settings"),
    11: ("gateway target did not respond", "check the gateway and the device id in settings"),
}


@dataclass(frozen=True)
class PlcSettings:
    host: str
    port: int = 502
    device_id: int = 1
    timeout_s: float = 3.0


@dataclass(frozen=True)
class MixerStatus:
    """The PLC's view: `running` is its run command, counters are its own."""

    running: bool
    complete: bool
    speed_rpm: int
    elapsed_s: int
    setpoint_rpm: int
    setpoint_s: int
    step_token: int = 0


class MixerPlc:
    """The mixer PLC. Use as a context manager or call `close()`; connects on first use."""

    def __init__(self, settings: PlcSettings, *, tags: Mapping[str, Tag] = MIXER_TAGS) -> None:
        self._settings = settings
        self._tags = dict(tags)
        self._where = f"{settings.host}:{settings.port}"
        # retries=0: TCP already retransmits, and an unanswered request more likely means
        # a PLC in STOP or a dead link than a lost frame; the caller's retry policy
        # repeats the whole (idempotent) operation instead.
        self._client = ModbusTcpClient(
            settings.host, port=settings.port, timeout=settings.timeout_s, retries=0
        )

    def __enter__(self) -> MixerPlc:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        if not self._client.connect():
            raise self._unreachable(None)

    def close(self) -> None:
        self._client.close()

    # -- operations ------------------------------------------------------------------

    def status(self) -> MixerStatus:
        values: dict[str, int | float | bool] = {}
        for table in ("coil", "holding", "input"):
            values.update(self._read_table(table))
        return MixerStatus(
            running=bool(values["run_command"]),
            complete=bool(values["complete"]),
            speed_rpm=int(values["speed_actual_rpm"]),
            elapsed_s=int(values["elapsed_s"]),
            setpoint_rpm=int(values["speed_setpoint_rpm"]),
            setpoint_s=int(values["duration_setpoint_s"]),
            step_token=int(values["step_token"]),
        )

    def start(self, speed_rpm: int, duration_s: int, *, step_token: int = 0) -> MixerStatus:
        """Start a run at `speed_rpm` for `duration_s`; safe to call again.

        Already running with the same setpoints: nothing is written. Running with other
        setpoints: PlcError (stop it first). With a non-zero `step_token`, a run that
        already completed with the same token and setpoints is not started again, so a
        retried start after the mix finished does not mix twice.
        """
        setpoints = {
            "speed_setpoint_rpm": speed_rpm,
            "duration_setpoint_s": duration_s,
            "step_token": step_token,
        }
        for name, value in setpoints.items():
            self._check_setpoint(name, value, minimum=0 if name == "step_token" else 1)

        current = self.status()
        same = (current.setpoint_rpm, current.setpoint_s, current.step_token) == (
            speed_rpm,
            duration_s,
            step_token,
        )
        if current.running and same:
            return current
        if current.running:
            raise PlcError(
                f"PLC {self._where} is already running a mix at {current.setpoint_rpm} rpm "
                f"for {current.setpoint_s} s: wait for it to complete or stop it before "
                f"starting {speed_rpm} rpm for {duration_s} s"
            )
        if same and step_token and current.complete:
            return current

        for name, value in setpoints.items():
            tag = self._tags[name]
            self._call(
                f"write {name}", self._client.write_registers, tag.address, tag.encode(value)
            )
        held = self._read_table("holding")
        for name, value in setpoints.items():
            if held[name] != value:
                raise PlcError(
                    f"PLC {self._where} holds {name}={held[name]} after {value} was written: "
                    "the PLC limited the value or another client wrote it; the mixer was not "
                    "started. Check the PLC's limits and who else writes to it"
                )
        self._write_coil("run_command", True)
        return self.status()

    def stop(self) -> MixerStatus:
        """Clear the run command; the PLC stops the mixer and keeps its counters."""
        self._write_coil("run_command", False)
        return self.status()

    def read_tags(self, names: list[str]) -> dict[str, int | float | bool]:
        """Current values of the named tags (KeyError-free: unknown names are a PlcError)."""
        tags = [self._tag(name) for name in names]
        values: dict[str, int | float | bool] = {}
        for table in {tag.table for tag in tags}:
            values.update(self._read_table(table, [t for t in tags if t.table == table]))
        return {name: values[name] for name in names}

    def write_tag(self, name: str, value: int | float | bool) -> int | float | bool:
        """Write one coil or holding register tag and return the value read back;
        PlcError when the PLC holds something else (it clamped or refused the value)."""
        tag = self._tag(name)
        if tag.table == "input":
            raise PlcError(f"{name} is an input register: the PLC owns it, it cannot be written")
        if tag.table == "coil":
            self._write_coil(name, bool(value))
        else:
            try:
                registers = tag.encode(value)
            except (ValueError, struct.error) as exc:
                raise PlcError(f"{name}={value!r} does not fit {tag.datatype}: {exc}") from exc
            self._call(f"write {name}", self._client.write_registers, tag.address, registers)
        held = self.read_tags([name])[name]
        expected = bool(value) if tag.table == "coil" else tag.decode(tag.encode(value))
        if held != expected:
            raise PlcError(
                f"PLC {self._where} holds {name}={held} after {value} was written: the PLC "
                "limited the value or another client wrote it"
            )
        return held

    def _tag(self, name: str) -> Tag:
        if name not in self._tags:
            known = ", ".join(sorted(self._tags))
            raise PlcError(f"No tag {name!r} in this PLC's tag map (tags: {known})")
        return self._tags[name]

    def _check_setpoint(self, name: str, value: object, *, minimum: int) -> None:
        """ValueError for a value the tag cannot hold, before anything is written."""
        tag = self._tags[name]
        try:
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError
            tag.encode(value)
        except ValueError:
            raise ValueError(
                f"{name} must be an integer >= {minimum} that fits the PLC's {tag.datatype} "
                f"register, got {value!r}"
            ) from None

    # -- Modbus ----------------------------------------------------------------------

    def _write_coil(self, name: str, value: bool) -> None:
        self._call(f"write {name}", self._client.write_coil, self._tags[name].address, value)

    def _read_table(
        self, table: TagTable, tags: list[Tag] | None = None
    ) -> dict[str, int | float | bool]:
        tags = tags if tags is not None else tags_in(table, self._tags)
        first, count = span(tags)
        if table == "coil":
            bits = self._call("read coils", self._client.read_coils, first, count=count).bits
            return {tag.name: bool(bits[tag.address - first]) for tag in tags}
        reader = (
            self._client.read_holding_registers
            if table == "holding"
            else self._client.read_input_registers
        )
        regs = self._call(f"read {table} registers", reader, first, count=count).registers
        return {
            tag.name: tag.decode(regs[tag.address - first : tag.address - first + tag.size])
            for tag in tags
        }

    def _call(
        self, action: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> ModbusPDU:
        try:
            response = method(*args, device_id=self._settings.device_id, **kwargs)
        except ConnectionException as exc:
            raise self._unreachable(exc) from exc
        except ModbusIOException as exc:
            # A late answer would be taken as the answer to the next request: start over.
            self._client.close()
            raise PlcTimeout(
                f"PLC {self._where} did not answer within {self._settings.timeout_s:g} s "
                f"(while trying to {action}): check the network and that the PLC is in RUN"
            ) from exc
        except ModbusException as exc:
            raise PlcError(f"PLC {self._where}: could not {action}: {exc}") from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name, hint = _EXCEPTION_HINTS.get(code, ("unknown exception", "check the PLC"))
            raise PlcError(
                f"PLC {self._where} refused to {action} (Modbus exception {code}, {name}): {hint}",
                exception_code=code,
            )
        return response

    def _unreachable(self, exc: Exception | None) -> PlcConnectionError:
        detail = f" ({exc})" if exc else ""
        return PlcConnectionError(
            f"PLC {self._where} is not reachable{detail}: check the network, the PLC "
            "address in settings, and that the PLC is powered and in RUN"
        )
