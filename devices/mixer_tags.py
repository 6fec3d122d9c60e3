"""Modbus tag maps as data shared by the drivers and the simulators.

Addresses are the zero-based protocol addresses (what goes on the wire), not the 4xxxx /
3xxxx / 0xxxx reference numbers of PLC manuals. 32-bit values take two registers; their
word order is per tag because PLC vendors disagree. The Modbus standard puts the bytes of
a register big-endian, but some devices (and gateways) swap them, so byte order is per tag
too. `TAG_MAPS` names the built-in maps an equipment register can refer to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import ModbusTcpClient

TagTable = Literal["holding", "input", "coil"]
TagType = Literal["int16", "uint16", "int32", "float32"]
WordOrder = Literal["big", "little"]
ByteOrder = Literal["big", "little"]
TAG_TABLES: tuple[TagTable, ...] = ("holding", "input", "coil")
TAG_TYPES: tuple[TagType, ...] = ("int16", "uint16", "int32", "float32")

_DATATYPES = {
    "int16": ModbusTcpClient.DATATYPE.INT16,
    "uint16": ModbusTcpClient.DATATYPE.UINT16,
    "int32": ModbusTcpClient.DATATYPE.INT32,
    "float32": ModbusTcpClient.DATATYPE.FLOAT32,
}
_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class Tag:
    """One named value in the PLC; coils ignore `datatype` and the orders.

    `word_order` orders the registers of a 32-bit value (big: high word first);
    `byte_order` orders the bytes within each register (big: as the standard says).
    """

    name: str
    table: TagTable
    address: int
    datatype: TagType = "uint16"
    word_order: WordOrder = "big"
    byte_order: ByteOrder = "big"

    @property
    def size(self) -> int:
        """Registers (or coils) the tag occupies."""
        return 2 if self.table != "coil" and self.datatype in ("int32", "float32") else 1

    def encode(self, value: int | float) -> list[int]:
        """The registers to write for `value`; ValueError when it does not fit the type."""
        bounds = _RANGES.get(self.datatype)
        if bounds is not None and not (bounds[0] <= value <= bounds[1]):
            raise ValueError(f"{self.name}={value} does not fit {self.datatype} {bounds}")
        registers = ModbusTcpClient.convert_to_registers(
            value, _DATATYPES[self.datatype], word_order=self.word_order
        )
        return self._swap_bytes(registers)

    def decode(self, registers: Sequence[int]) -> int | float:
        value = ModbusTcpClient.convert_from_registers(
            self._swap_bytes(registers), _DATATYPES[self.datatype], word_order=self.word_order
        )
        assert isinstance(value, int | float)
        return value

    def _swap_bytes(self, registers: Sequence[int]) -> list[int]:
        # pymodbus only knows big-endian registers; swapping is its own inverse.
        if self.byte_order == "big":
            return list(registers)
        return [((r & 0xFF) << 8) | ((r >> 8) & 0xFF) for r in registers]


def _tags(*tags: Tag) -> dict[str, Tag]:
    return {tag.name: tag for tag in tags}


MIXER_TAGS: dict[str, Tag] = _tags(
    # Commands and status bits.
    Tag("run_command", "coil", 0),  # set by the MES to start, cleared by the PLC at the end
    Tag("complete", "coil", 1),  # set by the PLC when the run reached its duration
    # Setpoints, written by the MES as absolute values and verified by read-back.
    Tag("speed_setpoint_rpm", "holding", 0, "uint16"),
    Tag("duration_setpoint_s", "holding", 1, "int32"),
    # Opaque 16-bit id of the batch step that wrote the setpoints: lets a retried start
    # recognise a run it already began (0 = none).
    Tag("step_token", "holding", 3, "uint16"),
    # Actual values, counted by the PLC.
    Tag("speed_actual_rpm", "input", 0, "uint16"),
    Tag("elapsed_s", "input", 1, "int32"),
)


# Built-in maps by the name an equipment register uses in `tag_map:`.
TAG_MAPS: dict[str, dict[str, Tag]] = {"mixer": MIXER_TAGS}

# The tags `MixerPlc` needs; a register's map for a mixer must define all of them.
MIXER_TAG_NAMES = frozenset(MIXER_TAGS)


def tags_in(table: TagTable, tags: dict[str, Tag]) -> list[Tag]:
    return [tag for tag in tags.values() if tag.table == table]


def span(tags: Sequence[Tag]) -> tuple[int, int]:
    """(first address, count) covering all `tags`, so one request reads them all."""
    first = min(tag.address for tag in tags)
    return first, max(tag.address + tag.size for tag in tags) - first
