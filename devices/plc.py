"""A generic Modbus TCP PLC driver on tags (pymodbus 3.16, synchronous client).

`ModbusPlc(settings, tags=...)` reads and writes the named tags of one PLC:

    with ModbusPlc(PlcSettings("10.0.0.5", 502), tags=COOKER_TAGS, name="COOKER-01") as plc:
        plc.write_setpoint("setpoint_temp", Decimal("75"))   # -> Decimal("75"), read back
        plc.read_tag("core_temp")                            # -> Decimal("21.4")

Values are `Decimal` (or `bool` for coils, discrete inputs and bool registers) in the
tag's engineering unit. Writes are absolute setpoints verified by read-back, so any write
can be repeated safely (a retried activity, a re-sent request). Failures are
`DeviceError`s whose message names the PLC and what to check:

- `UnknownTag`: the name is not in the tag map;
- `SetpointRejected`: the value was refused before anything was written (wrong kind,
  outside the tag's limits, not a multiple of its scale, a read-only tag), the PLC
  answered exception 3 (illegal data value), or the read-back differs from what was
  written (the PLC clamped it, or another client wrote);
- `PlcError` with `exception_code` for the other Modbus exception responses;
- `PlcTimeout` when the PLC does not answer within `timeout_s`;
- `PlcConnectionError` when it cannot be reached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from devices.errors import PlcConnectionError, PlcError, PlcTimeout
from devices.plc_tags import Tag, TagTable, TagValue

__all__ = ["ModbusPlc", "PlcSettings", "SetpointRejected", "TagValue", "UnknownTag"]

_EXCEPTION_HINTS = {
    1: ("illegal function", "the PLC does not support this request: check the PLC model"),
    2: (
        "illegal data address",
        "the address is not mapped: check the tag map against the PLC program",
    ),
    3: (
        "illegal data value",
        "the PLC rejected the value: check the setpoint against the equipment's limits",
    ),
    4: ("device failure", "the PLC reported an internal fault: check its diagnostics"),
    5: ("acknowledge", "the PLC accepted a long-running request: read again later"),
    6: ("device busy", "the PLC is busy: retry in a moment"),
    8: ("memory parity error", "the PLC reported a memory fault: check its diagnostics"),
    10: ("gateway path unavailable", "check the gateway and the device id in settings"),
    11: ("gateway target did not respond", "check the gateway and the device id in settings"),
}
# Modbus limits per read request (registers, bits).
_MAX_REGISTERS = 125
_MAX_BITS = 2000
_READERS = {
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
    "holding": "read_holding_registers",
    "input": "read_input_registers",
}


class UnknownTag(PlcError):
    """The tag name is not in the PLC's tag map (a recipe or register mistake)."""


class SetpointRejected(PlcError):
    """A setpoint was refused: by the tag's definition before writing, by the PLC
    (exception 3), or it reads back other than written. Retrying does not help."""


@dataclass(frozen=True)
class PlcSettings:
    host: str
    port: int = 502
    device_id: int = 1
    timeout_s: float = 3.0


class ModbusPlc:
    """One PLC and its tag map. Use as a context manager or call `close()`; connects on
    first use and reconnects after a failure. One instance serialises its requests, so
    it may be shared between threads."""

    def __init__(self, settings: PlcSettings, *, tags: Mapping[str, Tag], name: str = "") -> None:
        self._settings = settings
        self._tags = dict(tags)
        where = f"{settings.host}:{settings.port}"
        self._where = f"{name} ({where})" if name else where
        self._lock = threading.RLock()
        # retries=0: TCP already retransmits, and an unanswered request more likely means
        # a PLC in STOP or a dead link than a lost frame; the caller's retry policy
        # repeats the whole (idempotent) operation instead.
        self._client = ModbusTcpClient(
            settings.host, port=settings.port, timeout=settings.timeout_s, retries=0
        )

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def tags(self) -> Mapping[str, Tag]:
        return self._tags

    def connect(self) -> None:
        with self._lock:
            if not self._client.connect():
                raise self._unreachable(None)

    def close(self) -> None:
        with self._lock:
            self._client.close()

    # -- the API activities use -------------------------------------------------------

    def read_tag(self, name: str) -> TagValue:
        """The tag's current value: Decimal in its unit, or bool."""
        return self.read_tags([name])[name]

    def read_tags(self, names: Iterable[str]) -> dict[str, TagValue]:
        """Current values of the named tags, read with as few requests as the tables and
        addresses allow."""
        tags = [self.tag(name) for name in names]
        values: dict[str, TagValue] = {}
        for name, registers in self._read_registers(tags).items():
            try:
                values[name] = self._tags[name].value_of(registers)
            except ValueError as exc:
                raise PlcError(f"PLC {self._where}: {exc}; no value was taken") from exc
        return {tag.name: values[tag.name] for tag in tags}

    def write_setpoint(self, name: str, value: object) -> TagValue:
        """Write `value` (Decimal, int, decimal text, or bool for on/off tags) to a holding
        register or coil tag and return the value read back from the PLC.

        SetpointRejected when the value does not suit the tag, the PLC refuses it, or
        it reads back other than written (nothing is retried: the caller decides).
        """
        tag = self.tag(name)
        if not tag.writable:
            kind = "a discrete input" if tag.table == "discrete" else "an input register"
            raise SetpointRejected(
                f"{name} is {kind} of PLC {self._where}: the PLC owns it, it cannot be written"
            )
        try:
            registers = tag.registers_for(value)
        except ValueError as exc:
            raise SetpointRejected(f"PLC {self._where}: {exc}; nothing was written") from exc
        with self._lock:
            if tag.is_bit:
                on = bool(registers[0])
                self._call(f"write {name}", self._client.write_coil, tag.address, on)
            else:
                self._call(f"write {name}", self._client.write_registers, tag.address, registers)
            held = self._read_registers([tag])[name]
        if held != registers:
            shown = _shown(tag, held)
            raise SetpointRejected(
                f"PLC {self._where} holds {name}={shown} after {value} was written: the PLC "
                "limited the value or another client wrote it. Check the PLC's limits and "
                "who else writes to it"
            )
        return tag.value_of(held)

    def write_tag(self, name: str, value: object) -> TagValue:
        """Alias of `write_setpoint` (the name the mixer driver used first)."""
        return self.write_setpoint(name, value)

    def tag(self, name: str) -> Tag:
        if name not in self._tags:
            known = ", ".join(sorted(self._tags))
            raise UnknownTag(f"No tag {name!r} in the tag map of PLC {self._where} (tags: {known})")
        return self._tags[name]

    # -- Modbus ----------------------------------------------------------------------

    def _read_registers(self, tags: list[Tag]) -> dict[str, list[int]]:
        """Raw registers (bits as 0/1) of each tag."""
        out: dict[str, list[int]] = {}
        with self._lock:
            for table, first, count, group in _requests(tags):
                method = getattr(self._client, _READERS[table])
                response = self._call(f"read {table} {first}..{first + count - 1}", method,
                                      first, count=count)
                words = response.bits if table in ("coil", "discrete") else response.registers
                if len(words) < count:
                    raise PlcError(
                        f"PLC {self._where} answered {len(words)} values where {count} were "
                        f"asked for ({table} {first}): check the tag map against the PLC"
                    )
                for tag in group:
                    offset = tag.address - first
                    out[tag.name] = [int(w) for w in words[offset : offset + tag.size]]
        return out

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
            self._client.close()
            raise PlcError(f"PLC {self._where}: could not {action}: {exc}") from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name, hint = _EXCEPTION_HINTS.get(code, ("unknown exception", "check the PLC"))
            kind = SetpointRejected if code == 3 and action.startswith("write") else PlcError
            raise kind(
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


def _requests(tags: list[Tag]) -> list[tuple[TagTable, int, int, list[Tag]]]:
    """(table, first address, count, tags) per read request: tags of a table sorted by
    address and grouped while one request can cover them."""
    requests: list[tuple[TagTable, int, int, list[Tag]]] = []
    unique = {tag.name: tag for tag in tags}.values()
    for table in ("coil", "discrete", "holding", "input"):
        limit = _MAX_BITS if table in ("coil", "discrete") else _MAX_REGISTERS
        group: list[Tag] = []
        for tag in sorted((t for t in unique if t.table == table), key=lambda t: t.address):
            if group and tag.address + tag.size - group[0].address > limit:
                requests.append(_request(table, group))
                group = []
            group.append(tag)
        if group:
            requests.append(_request(table, group))
    return requests


def _request(table: TagTable, group: list[Tag]) -> tuple[TagTable, int, int, list[Tag]]:
    first = group[0].address
    return table, first, max(t.address + t.size for t in group) - first, group


def _shown(tag: Tag, registers: list[int]) -> str:
    try:
        return str(tag.value_of(registers))
    except ValueError:
        return f"registers {registers}"

