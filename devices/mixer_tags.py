"""The mixer PLC's tag map: the register layout the PLC program and `MixerPlc` agree on.

Tags themselves (tables, types, word and byte order) are in `devices/plc_tags.py`;
names are re-exported here for the code and tests that know them from this module.
"""

from __future__ import annotations

from devices.plc_tags import (
    TAG_TABLES,
    TAG_TYPES,
    ByteOrder,
    Tag,
    TagTable,
    TagType,
    WordOrder,
    span,
    tags_in,
)

__all__ = [
    "MIXER_TAGS", "MIXER_TAG_NAMES", "TAG_TABLES", "TAG_TYPES", "ByteOrder", "Tag",
    "TagTable", "TagType", "WordOrder", "span", "tags_in",
]  # fmt: skip


def _tags(*tags: Tag) -> dict[str, Tag]:
    return {tag.name: tag for tag in tags}


MIXER_TAGS: dict[str, Tag] = _tags(
    # Commands and status bits.
    Tag("run_command", "coil", 0),  # set by the MES to start, cleared by the PLC at the end
    Tag("complete", "coil", 1),  # set by the PLC when the run reached its duration
    # Setpoints, written by the MES as absolute values and verified by read-back.
    Tag("speed_setpoint_rpm", "holding", 0, "uint16", unit="rpm"),
    Tag("duration_setpoint_s", "holding", 1, "int32", unit="s"),
    # Opaque 16-bit id of the batch step that wrote the setpoints: lets a retried start
    # recognise a run it already began (0 = none).
    Tag("step_token", "holding", 3, "uint16"),
    # Actual values, counted by the PLC.
    Tag("speed_actual_rpm", "input", 0, "uint16", unit="rpm"),
    Tag("elapsed_s", "input", 1, "int32", unit="s"),
)

# The tags `MixerPlc` needs; a register's map for a mixer must define all of them.
MIXER_TAG_NAMES = frozenset(MIXER_TAGS)
