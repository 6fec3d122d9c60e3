"""Modbus tags: where a named value lives in a PLC and how its registers encode it.

Shared by the generic driver (`devices/plc.py`), the simulators and the equipment
register. Addresses are the zero-based protocol addresses (what goes on the wire), not
the 4xxxx / 3xxxx / 0xxxx / 1xxxx reference numbers of PLC manuals.

Tables: `holding` registers and `coil`s can be written; `input` registers and
`discrete` inputs belong to the PLC. Register types: `int16`, `uint16`, `int32`,
`uint32`, `float32`, and `bool` (one register, non-zero = true); coils and discrete
inputs are always `bool`. 32-bit values take two registers and their word order is per
tag because PLC vendors disagree; the Modbus standard puts the bytes of a register
big-endian, but some devices and gateways swap them, so byte order is per tag too.

Engineering values are `Decimal` (or `bool`): an integer register times the tag's
optional `scale` (a register holding 725 with scale 0.1 reads 72.5), a float32 as the
shortest decimal that the PLC's float32 round-trips to (72.3, not 72.30000305175781),
rounded to `decimals` when the tag gives it. `minimum`/`maximum` bound setpoint writes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal

from pymodbus.client import ModbusTcpClient

TagTable = Literal["holding", "input", "coil", "discrete"]
TagType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
WordOrder = Literal["big", "little"]
ByteOrder = Literal["big", "little"]
TAG_TABLES: tuple[TagTable, ...] = ("holding", "input", "coil", "discrete")
TAG_TYPES: tuple[TagType, ...] = ("int16", "uint16", "int32", "uint32", "float32", "bool")
BIT_TABLES: tuple[TagTable, ...] = ("coil", "discrete")
WRITABLE_TABLES: tuple[TagTable, ...] = ("holding", "coil")

TagValue = Decimal | bool

_DATATYPES = {
    "int16": ModbusTcpClient.DATATYPE.INT16,
    "uint16": ModbusTcpClient.DATATYPE.UINT16,
    "int32": ModbusTcpClient.DATATYPE.INT32,
    "uint32": ModbusTcpClient.DATATYPE.UINT32,
    "float32": ModbusTcpClient.DATATYPE.FLOAT32,
}
_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")


@dataclass(frozen=True)
class Tag:
    """One named value in the PLC.

    `word_order` orders the registers of a 32-bit value (big: high word first);
    `byte_order` orders the bytes within each register (big: as the standard says).
    Coils and discrete inputs ignore `datatype`, the orders and the scaling.
    """

    name: str
    table: TagTable
    address: int
    datatype: TagType = "uint16"
    word_order: WordOrder = "big"
    byte_order: ByteOrder = "big"
    scale: Decimal | None = None
    decimals: int | None = None
    unit: str | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        if self.table in BIT_TABLES and self.datatype != "bool":
            object.__setattr__(self, "datatype", "bool")  # a bit is a bool, whatever was said

    @property
    def is_bit(self) -> bool:
        return self.table in BIT_TABLES

    @property
    def is_bool(self) -> bool:
        return self.is_bit or self.datatype == "bool"

    @property
    def writable(self) -> bool:
        return self.table in WRITABLE_TABLES

    @property
    def size(self) -> int:
        """Registers (or bits) the tag occupies."""
        if self.is_bit:
            return 1
        return 2 if self.datatype in ("int32", "uint32", "float32") else 1

    # -- raw numbers <-> registers ------------------------------------------------------

    def encode(self, value: int | float) -> list[int]:
        """The registers for the raw number `value` (no scaling); ValueError when it does
        not fit the type."""
        if self.datatype == "bool":
            return [1 if value else 0]
        bounds = _RANGES.get(self.datatype)
        if bounds is not None and not (bounds[0] <= value <= bounds[1]):
            raise ValueError(f"{self.name}={value} does not fit {self.datatype} {bounds}")
        if self.datatype == "float32" and not (
            math.isfinite(value) and abs(value) <= _FLOAT32_MAX
        ):
            raise ValueError(f"{self.name}={value} does not fit float32")
        registers = ModbusTcpClient.convert_to_registers(
            value, _DATATYPES[self.datatype], word_order=self.word_order
        )
        return self._swap_bytes(registers)

    def decode(self, registers: Sequence[int]) -> int | float:
        """The raw number the registers hold (no scaling)."""
        if self.datatype == "bool":
            return int(registers[0] != 0)
        value = ModbusTcpClient.convert_from_registers(
            self._swap_bytes(registers), _DATATYPES[self.datatype], word_order=self.word_order
        )
        assert isinstance(value, int | float)
        return value

    # -- engineering values <-> registers -----------------------------------------------

    def value_of(self, registers: Sequence[int]) -> TagValue:
        """The engineering value (Decimal, or bool) of the registers read for this tag;
        ValueError for a float32 that is not a number (a PLC's sensor-fault marker)."""
        if self.is_bool:
            return bool(registers[0])
        raw = self.decode(registers)
        value = _float32_decimal(raw, self.name) if isinstance(raw, float) else Decimal(raw)
        if self.scale is not None:
            value = value * self.scale
        if self.decimals is not None:
            value = value.quantize(Decimal(1).scaleb(-self.decimals), rounding=ROUND_HALF_EVEN)
        return value

    def registers_for(self, value: object) -> list[int]:
        """The registers (or, for coils, [0]/[1]) that hold the engineering `value`.

        ValueError, saying why, when the value is not of the tag's kind, is outside the
        tag's minimum/maximum, is not a whole multiple of its scale, or does not fit.
        """
        if self.is_bool:
            return [1 if as_bool(value, self.name) else 0]
        number = as_decimal(value, self.name)
        unit = f" {self.unit}" if self.unit else ""
        shown = f"{self.name}={number}{unit}"
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"{shown} is below its minimum {self.minimum}{unit}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"{shown} is above its maximum {self.maximum}{unit}")
        raw = number / self.scale if self.scale is not None else number
        if self.datatype == "float32":
            return self.encode(float(raw))
        if raw != raw.to_integral_value():
            step = f"a multiple of {self.scale}" if self.scale is not None else "a whole number"
            raise ValueError(f"{shown} must be {step} ({self.datatype} register)")
        return self.encode(int(raw))

    def _swap_bytes(self, registers: Sequence[int]) -> list[int]:
        # pymodbus only knows big-endian registers; swapping is its own inverse.
        if self.byte_order == "big":
            return list(registers)
        return [((r & 0xFF) << 8) | ((r >> 8) & 0xFF) for r in registers]


def as_decimal(value: object, name: str) -> Decimal:
    """A finite Decimal from a Decimal, int, float or decimal text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} takes a number, got {value!r}")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str | float) else value
    except InvalidOperation:
        number = None
    if isinstance(number, int):
        number = Decimal(number)
    if not isinstance(number, Decimal) or not number.is_finite():
        raise ValueError(f"{name} takes a finite number, got {value!r}")
    return number


def as_bool(value: object, name: str) -> bool:
    """True/False from a bool, 0/1 or the words true/false/on/off/yes/no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} is on/off: give true or false (or 1/0), got {value!r}")


def _float32_decimal(value: float, name: str) -> Decimal:
    """The shortest decimal that rounds to the same float32: what the PLC displays."""
    if not math.isfinite(value):
        raise ValueError(f"{name} holds {value} (not a number): the PLC reports a fault value")
    packed = struct.pack(">f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == packed:
            break
    number = Decimal(text)
    # 1e+02 -> 100, not 1E+2.
    return number.quantize(Decimal(1)) if number.as_tuple().exponent > 0 else number  # type: ignore[operator]


def tags_in(table: TagTable, tags: dict[str, Tag]) -> list[Tag]:
    return [tag for tag in tags.values() if tag.table == table]


def span(tags: Sequence[Tag]) -> tuple[int, int]:
    """(first address, count) covering all `tags`, so one request reads them all."""
    first = min(tag.address for tag in tags)
    return first, max(tag.address + tag.size for tag in tags) - first


def overlaps(tags: dict[str, Tag]) -> list[tuple[Tag, int, str]]:
    """(tag, address, other tag's name) for every address two tags of a table share."""
    used: dict[tuple[str, int], str] = {}
    found = []
    for tag in tags.values():
        for address in range(tag.address, tag.address + tag.size):
            other = used.setdefault((tag.table, address), tag.name)
            if other != tag.name:
                found.append((tag, address, other))
    return found
