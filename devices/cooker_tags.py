"""The cooker PLC's tag map (a cook-chill kettle or smokehouse), as the simulator serves it.

Temperatures are float32 in degrees Celsius with the low word first (CDAB), as many
PLCs store them; the core probe reads at 0.1 degC. Setting `setpoint_temp` is enough to
cook: the PLC heats while the core is below it. `chill` switches to cooling toward
`chill_temp`. `heating` and `at_setpoint` are the PLC's own status bits.
"""

from __future__ import annotations

from decimal import Decimal

from devices.plc_tags import Tag

COOKER_TAGS: dict[str, Tag] = {
    tag.name: tag
    for tag in (
        # Commands.
        Tag("chill", "coil", 0),  # set: cool toward chill_temp; cleared: cook
        # Setpoints, written by the MES and verified by read-back.
        Tag("setpoint_temp", "holding", 0, "float32", "little", unit="degC",
            minimum=Decimal(0), maximum=Decimal(120)),
        Tag("chill_temp", "holding", 2, "float32", "little", unit="degC",
            minimum=Decimal(-5), maximum=Decimal(20)),
        # Process values and status, the PLC's own.
        Tag("core_temp", "input", 0, "float32", "little", unit="degC", decimals=1),
        Tag("heating", "discrete", 0),  # the heater is on
        Tag("at_setpoint", "discrete", 1),  # core within 0.5 degC of the active target
    )
}  # fmt: skip

# What a recipe for a `cooker` may rely on.
COOKER_TAG_NAMES = frozenset(COOKER_TAGS)
