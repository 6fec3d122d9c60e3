"""Activities that talk to instruments. Connections are opened per call through
injected openers, so the same activity runs against a real scale, a simulator or
a unit-test fake."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import pint
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from devices.errors import DeviceError, ScaleOverload, ScaleUnderload, ScaleUnstable
from devices.modbus_plc import MixerStatus
from devices.mtsics import ScaleIdentity, ScaleReading
from devices.plc import SetpointRejected, UnknownTag
from devices.register import EquipmentNotFitForUse, UnknownEquipment
from recipes import units
from workflows.messages import (
    MixInput,
    MixRun,
    PlcReadInput,
    PlcSetInput,
    PlcValue,
    ReadWeightInput,
    WeightReading,
)

# An operator can act on these; retrying the same reading would not change them.
# Equipment that is not fit for use (overdue calibration, wrong instrument, dirty) needs a
# person too: retrying cannot make it fit.
# A refused setpoint or a tag missing from the map is a recipe or register mistake.
_OPERATOR_FIXABLE = (
    ScaleUnstable, ScaleOverload, ScaleUnderload, EquipmentNotFitForUse, UnknownEquipment,
    SetpointRejected, UnknownTag,
)
POLL_S = 0.5


class Scale(Protocol):
    def identity(self) -> ScaleIdentity: ...
    def stable_weight(self, settle_timeout_s: float = ...) -> ScaleReading: ...


class Mixer(Protocol):
    def start(self, speed_rpm: int, duration_s: int, *, step_token: int = 0) -> MixerStatus: ...
    def status(self) -> MixerStatus: ...


class Plc(Protocol):
    """Any Modbus equipment by its register tag map (devices.plc.ModbusPlc)."""

    def read_tags(self, names: list[str]) -> Mapping[str, object]: ...
    def write_setpoint(self, name: str, value: object) -> object: ...


class EquipmentChecks(Protocol):
    """What the activities ask the equipment register before and while using a device;
    both raise EquipmentNotFitForUse (a DeviceError) with the reason."""

    def check_fit_for_use(self, equipment_id: str) -> object: ...
    def check_scale_identity(self, equipment_id: str, serial_number: str) -> None: ...


ScaleOpener = Callable[[str], AbstractContextManager[Scale]]
MixerOpener = Callable[[str], AbstractContextManager[Mixer]]
PlcOpener = Callable[[str], AbstractContextManager[Plc]]


class DeviceActivities:
    """`register` checks calibration and identity before each use; None skips the checks
    (only for callers that have no register, such as workflow tests with fake devices)."""

    def __init__(
        self,
        open_scale: ScaleOpener,
        open_mixer: MixerOpener,
        settle_timeout_s: float = 10.0,
        *,
        register: EquipmentChecks | None = None,
        open_plc: PlcOpener | None = None,
    ) -> None:
        self.open_scale = open_scale
        self.open_mixer = open_mixer
        # PLC phases talk to the equipment through its register tag map; a mixer is a PLC.
        self.open_plc: PlcOpener = open_plc or open_mixer  # type: ignore[assignment]
        self.settle_timeout_s = settle_timeout_s
        self.register = register

    @activity.defn(name="read_weight")
    @keeps_alive
    def read_weight(self, inp: ReadWeightInput) -> WeightReading:
        with _device_errors():
            # Calibration and cleaning first: no point talking to a scale we may not use.
            if self.register is not None:
                self.register.check_fit_for_use(inp.equipment_id)
            with self.open_scale(inp.equipment_id) as scale:
                identity = scale.identity()
                # Before weighing: a reading from another instrument must never be recorded.
                if self.register is not None:
                    self.register.check_scale_identity(inp.equipment_id, identity.serial_number)
                reading = scale.stable_weight(settle_timeout_s=self.settle_timeout_s)
        value = _convert(reading.value, reading.unit, inp.unit)
        return WeightReading(
            equipment_id=inp.equipment_id,
            value=str(value),
            unit=inp.unit,
            device_value=str(reading.value),
            device_unit=reading.unit,
            raw_frames=list(reading.raw_frames),
            device_serial=identity.serial_number,
            read_at=_now(),
            in_tolerance=Decimal(inp.low) <= value <= Decimal(inp.high),
        )

    @activity.defn(name="run_mix")
    def run_mix(self, inp: MixInput) -> MixRun:
        """Start the mix once, then watch the PLC until it reports the run complete.

        A retry (after a worker crash) finds the start time in the heartbeat
        details and resumes watching instead of starting a second mix.
        """
        details = activity.info().heartbeat_details
        started_at = str(details[0]) if details else None
        top_speed = 0
        with _device_errors(), self.open_mixer(inp.equipment_id) as mixer:
            if started_at is None:
                # The token lets the PLC tell a repeated start of this step from a new mix.
                token = zlib.crc32(f"{inp.batch_id}/{inp.step_id}".encode()) & 0xFFFF
                mixer.start(inp.speed_rpm, inp.duration_s, step_token=token)
                started_at = _now()
                activity.heartbeat(started_at)
            while True:
                status = mixer.status()
                top_speed = max(top_speed, status.speed_rpm)
                activity.heartbeat(started_at)
                if status.complete:
                    break
                if not status.running:
                    raise ApplicationError(
                        f"Mixer {inp.equipment_id} stopped before the mix was complete "
                        f"({status.elapsed_s} of {inp.duration_s} s): check the mixer.",
                        type="MixInterrupted",
                        non_retryable=True,
                    )
                time.sleep(POLL_S)
        return MixRun(
            equipment_id=inp.equipment_id,
            speed_rpm=top_speed or status.setpoint_rpm,
            run_time_s=status.elapsed_s,
            started_at=started_at,
            finished_at=_now(),
        )


    @activity.defn(name="plc_set")
    def plc_set(self, inp: PlcSetInput) -> PlcValue:
        """Write a setpoint and return what the PLC holds after it (the driver reads it
        back and refuses a clamped value). An absolute write: a retry writes it again."""
        value = _plc_number(inp.value, inp.tag)
        with _device_errors():
            if self.register is not None:
                self.register.check_fit_for_use(inp.equipment_id)
            activity.heartbeat(inp.tag)
            with self.open_plc(inp.equipment_id) as plc:
                held = plc.write_setpoint(inp.tag, value)
        return PlcValue(inp.equipment_id, inp.tag, _plc_text(held), _now())

    @activity.defn(name="plc_read")
    def plc_read(self, inp: PlcReadInput) -> PlcValue:
        with _device_errors():
            if self.register is not None:
                self.register.check_fit_for_use(inp.equipment_id)
            activity.heartbeat(inp.tag)
            with self.open_plc(inp.equipment_id) as plc:
                value = plc.read_tags([inp.tag])[inp.tag]
        return PlcValue(inp.equipment_id, inp.tag, _plc_text(value), _now())


def _plc_number(text: str, tag: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ApplicationError(f"The setpoint {text!r} for {tag} is not a number: correct the "
                               "recipe.", type="BadSetpoint", non_retryable=True)
    return value


def _plc_text(value: object) -> str:
    """A tag value as decimal text; a float shows its 7 significant digits (a float32
    written as 72.1 reads back as 72.1, not 72.09999847)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return format(Decimal(f"{value:.7g}").normalize(), "f")
    return str(value)


@contextmanager
def _device_errors() -> Iterator[None]:
    """Turn device faults into activity failures the workflow and operator can read."""
    try:
        yield
    except DeviceError as exc:
        raise ApplicationError(
            str(exc), type=type(exc).__name__, non_retryable=isinstance(exc, _OPERATOR_FIXABLE)
        ) from exc


def _convert(value: Decimal, from_unit: str, to_unit: str) -> Decimal:
    try:
        return units.convert(value, from_unit, to_unit)
    except (pint.errors.DimensionalityError, pint.errors.UndefinedUnitError) as exc:
        raise ApplicationError(
            f"The scale reports in {from_unit}, which cannot be converted to {to_unit}: "
            "check the scale's unit setting.",
            type="WrongUnit",
            non_retryable=True,
        ) from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
