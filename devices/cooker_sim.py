"""A cooker PLC simulator (cook-chill kettle or smokehouse) on pymodbus' TCP server.

It serves `devices.cooker_tags.COOKER_TAGS` and runs a first-order thermal model of the
product's core, in simulated seconds (`time_scale` of them per real second, like the
mixer):

- cooking (`chill` off): the controller heats while the core is below `setpoint_temp`;
  the core approaches the setpoint as  T(t) = SP + (T0 - SP) * exp(-t / tau). A core
  above the setpoint (or a setpoint below ambient) cools passively toward
  max(setpoint, ambient), five times slower;
- chilling (`chill` on): the heater is off and the core approaches `chill_temp` with
  the same time constant;
- `heating` is on while the controller heats; `at_setpoint` while the core is within
  0.5 degC of the active target (the setpoint when cooking with a setpoint, the chill
  temperature when chilling).

With the default `tau_s` of 120 s, a core at 20 degC reaches 72 degC under a 75 degC
setpoint after about 350 simulated seconds: under 18 real seconds at the demo's
time scale of 20. Setpoints outside the tag's limits are refused with Modbus exception
3 (illegal data value), as a PLC's input validation would; `core_temp`, `heating` and
`at_setpoint` belong to the PLC and no client request can write them.

The state only advances when a request arrives (see `SimulatedPlc`), with the exact
solution over the elapsed time, so the answers do not depend on how often anyone asks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from pymodbus.constants import ExcCodes

from devices.cooker_tags import COOKER_TAGS
from devices.plc_sim import SimulatedPlc
from devices.plc_tags import Tag

AT_SETPOINT_BAND_C = 0.5
PASSIVE_SLOWDOWN = 5.0


class CookerSimulator(SimulatedPlc):
    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        tau_s: float = 120.0,
        ambient_c: float = 20.0,
        chill_temp_c: float = 4.0,
        device_id: int = 1,
        tags: Mapping[str, Tag] = COOKER_TAGS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(tags, time_scale=time_scale, device_id=device_id, name="cooker-sim")
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.tau_s = tau_s
        self.ambient_c = ambient_c
        self._clock = clock  # real seconds; tests pass their own to step time exactly
        # Process state; only touched on the server's loop thread.
        self._core_c = ambient_c
        self._chill_temp_c = chill_temp_c
        self._last = clock()

    async def _initialise(self) -> None:
        self._last = self._clock()
        await self._set("chill_temp", Decimal(repr(self._chill_temp_c)))
        await self._advance()

    async def _apply(
        self, function_code: int, address: int, written: list[int] | list[bool]
    ) -> ExcCodes | None:
        await self._advance()
        return self._out_of_limits(("setpoint_temp", "chill_temp"), function_code, address, written)

    async def _advance(self) -> None:
        """Bring the core temperature and the status bits up to the simulated clock."""
        now = self._clock()
        elapsed = (now - self._last) * self.time_scale
        self._last = now
        coils = await self._read("coil")
        holding = await self._read("holding")
        chilling = bool(coils["chill"])
        setpoint = float(holding["setpoint_temp"])
        if chilling:
            target, tau, heating = float(holding["chill_temp"]), self.tau_s, False
        else:
            target = max(setpoint, self.ambient_c)
            heating = self._core_c < setpoint
            tau = self.tau_s if heating else self.tau_s * PASSIVE_SLOWDOWN
        self._core_c = target + (self._core_c - target) * math.exp(-elapsed / tau)
        heating = heating and self._core_c < setpoint
        active = chilling or setpoint > 0
        at_target = active and abs(self._core_c - target) <= AT_SETPOINT_BAND_C
        await self._set("core_temp", Decimal(repr(self._core_c)))
        await self._set("heating", heating)
        await self._set("at_setpoint", at_target)
