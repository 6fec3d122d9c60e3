"""The fluid-bed dryer PLC's tag map, as the simulator serves it.

The MES writes the inlet air temperature and the air flow setpoints (verified by
read-back); the PLC reports the inlet temperature it reached and the fan's air flow.
Temperatures are float32 with the low word first (CDAB), as on the cooker; the air flow
is a whole number of cubic metres per hour.
"""

from __future__ import annotations

from decimal import Decimal

from devices.plc_tags import Tag

DRYER_TAGS: dict[str, Tag] = {
    tag.name: tag
    for tag in (
        # Setpoints, written by the MES and verified by read-back.
        Tag("inlet_temp_setpoint", "holding", 0, "float32", "little", unit="degC",
            minimum=Decimal(20), maximum=Decimal(90)),
        Tag("air_flow_setpoint", "holding", 2, "uint16", unit="m**3/h",
            minimum=Decimal(0), maximum=Decimal(200)),
        # Process values, the PLC's own.
        Tag("inlet_temp", "input", 0, "float32", "little", unit="degC", decimals=1),
        Tag("air_flow", "input", 2, "uint16", unit="m**3/h"),
    )
}  # fmt: skip
