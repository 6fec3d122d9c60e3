"""A fluid-bed dryer PLC simulator on pymodbus' TCP server.

It serves `devices.dryer_tags.DRYER_TAGS`: the inlet air heats toward its setpoint as a
first-order lag (`tau_s`, in simulated seconds, `time_scale` of them per real second,
like the other simulated PLCs) and the fan delivers the air flow setpoint at once.
Setpoints outside the tags' limits are refused with Modbus exception 3 (illegal data
value), as a PLC's input validation would; the process values belong to the PLC.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal

from pymodbus.constants import ExcCodes

from devices.dryer_tags import DRYER_TAGS
from devices.plc_sim import SimulatedPlc

SETPOINTS = ("inlet_temp_setpoint", "air_flow_setpoint")


class DryerSimulator(SimulatedPlc):
    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        tau_s: float = 60.0,
        ambient_c: float = 20.0,
        device_id: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(DRYER_TAGS, time_scale=time_scale, device_id=device_id,
                         name="dryer-sim")
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.tau_s = tau_s
        self.ambient_c = ambient_c
        self._clock = clock
        self._inlet_c = ambient_c  # only touched on the server's loop thread
        self._last = clock()

    async def _initialise(self) -> None:
        self._last = self._clock()
        await self._advance()

    async def _apply(
        self, function_code: int, address: int, written: list[int] | list[bool]
    ) -> ExcCodes | None:
        await self._advance()
        return self._out_of_limits(SETPOINTS, function_code, address, written)

    async def _advance(self) -> None:
        """Bring the inlet temperature and air flow up to the simulated clock."""
        now = self._clock()
        elapsed = (now - self._last) * self.time_scale
        self._last = now
        holding = await self._read("holding")
        target = max(float(holding["inlet_temp_setpoint"]), self.ambient_c)
        self._inlet_c = target + (self._inlet_c - target) * math.exp(-elapsed / self.tau_s)
        await self._set("inlet_temp", Decimal(repr(self._inlet_c)))
        await self._set("air_flow", holding["air_flow_setpoint"])
