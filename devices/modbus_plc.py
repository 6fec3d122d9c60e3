"""The mixer PLC: a run at a speed for a duration, on the generic Modbus driver.

Writes are absolute setpoints verified by read-back, so any write can be repeated safely
(a retried activity, a re-sent request). The driver never computes run time itself: the
PLC counts, the driver reports what the PLC says. The generic tag API (`read_tag`,
`read_tags`, `write_setpoint`) is inherited from `devices.plc.ModbusPlc`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devices.errors import PlcError
from devices.mixer_tags import MIXER_TAGS, Tag
from devices.plc import ModbusPlc, PlcSettings, SetpointRejected

__all__ = ["MIXER_TAGS", "MixerPlc", "MixerStatus", "PlcSettings", "Tag"]

_SETPOINTS = ("speed_setpoint_rpm", "duration_setpoint_s", "step_token")


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


class MixerPlc(ModbusPlc):
    """The mixer PLC. Use as a context manager or call `close()`; connects on first use."""

    def __init__(
        self, settings: PlcSettings, *, tags: Mapping[str, Tag] = MIXER_TAGS, name: str = ""
    ) -> None:
        super().__init__(settings, tags=tags, name=name)

    def status(self) -> MixerStatus:
        values = self.read_tags(self.tags)
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
        setpoints = dict(zip(_SETPOINTS, (speed_rpm, duration_s, step_token), strict=True))
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

        try:
            for name, value in setpoints.items():
                self.write_setpoint(name, value)
        except SetpointRejected as exc:
            raise SetpointRejected(f"{exc}; the mixer was not started",
                                   exception_code=exc.exception_code) from exc
        self.write_setpoint("run_command", True)
        return self.status()

    def stop(self) -> MixerStatus:
        """Clear the run command; the PLC stops the mixer and keeps its counters."""
        self.write_setpoint("run_command", False)
        return self.status()

    def _check_setpoint(self, name: str, value: object, *, minimum: int) -> None:
        """ValueError for a value the tag cannot hold, before anything is written."""
        tag = self.tags[name]
        try:
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError
            tag.encode(value)
        except ValueError:
            raise ValueError(
                f"{name} must be an integer >= {minimum} that fits the PLC's {tag.datatype} "
                f"register, got {value!r}"
            ) from None
