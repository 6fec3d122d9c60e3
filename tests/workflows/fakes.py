"""Unit-test stand-ins for instruments and the report step, passed through the same
constructor arguments the composition root uses for the real ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from temporalio import activity

from devices.errors import PlcConnectionError, ScaleConnectionError, ScaleUnstable
from devices.modbus_plc import MixerStatus
from devices.mtsics import ScaleIdentity, ScaleReading
from devices.plc import SetpointRejected, UnknownTag
from workflows.messages import ReportInput, ReportRef


@dataclass
class FakeScale:
    grams: Decimal = Decimal("0.00")
    unstable: bool = False
    unreachable: bool = False  # the serial link is down: every attempt fails the same way

    def identity(self) -> ScaleIdentity:
        if self.unreachable:
            # As the real driver does: its message for the operator, the port's error behind.
            raise ScaleConnectionError(
                "Scale FAKE does not answer on its port: check the cable."
            ) from OSError("read failed: socket disconnected")
        return ScaleIdentity(model="FAKE", serial_number="FAKE-001")

    def stable_weight(self, settle_timeout_s: float = 10.0) -> ScaleReading:
        if self.unstable:
            raise ScaleUnstable("Scale FAKE did not settle: remove drafts and weigh again.")
        frame = f"S S {self.grams:>10} g"
        return ScaleReading(value=self.grams, unit="g", stable=True, raw_frames=(frame,))


@dataclass
class FakeMixer:
    polls_to_finish: int = 2
    stops_midway: bool = False  # the mixer trips: running and complete both go off
    starts: list[tuple[int, int]] = field(default_factory=list)
    _polls: int = 0

    def start(self, speed_rpm: int, duration_s: int, *, step_token: int = 0) -> MixerStatus:
        self.starts.append((speed_rpm, duration_s))
        return self.status()

    def status(self) -> MixerStatus:
        self._polls += 1
        done = self._polls > self.polls_to_finish
        speed, duration = self.starts[-1] if self.starts else (0, 0)
        if self.stops_midway:
            return MixerStatus(running=False, complete=False, speed_rpm=0, elapsed_s=1,
                               setpoint_rpm=speed, setpoint_s=duration)
        return MixerStatus(
            running=not done, complete=done, speed_rpm=speed,
            elapsed_s=duration if done else 0, setpoint_rpm=speed, setpoint_s=duration,
        )


@dataclass
class FakePlc:
    """Tags by name, like a PLC behind its register tag map; `clamp` limits writes the
    way a PLC program limits a setpoint."""

    tags: dict[str, Decimal | bool] = field(default_factory=dict)
    clamp: dict[str, Decimal] = field(default_factory=dict)
    unreachable: bool = False
    writes: list[tuple[str, object]] = field(default_factory=list)

    def read_tags(self, names: list[str]) -> dict[str, Decimal | bool]:
        if self.unreachable:
            raise PlcConnectionError("PLC FAKE is not reachable: check the network.")
        missing = [n for n in names if n not in self.tags]
        if missing:
            raise UnknownTag(f"No tag {missing[0]!r} in this PLC's tag map")
        return {n: self.tags[n] for n in names}

    def write_setpoint(self, name: str, value: object) -> Decimal | bool:
        if self.unreachable:
            raise PlcConnectionError("PLC FAKE is not reachable: check the network.")
        self.writes.append((name, value))
        number = Decimal(str(value))
        self.tags[name] = min(number, self.clamp[name]) if name in self.clamp else number
        if self.tags[name] != value:
            raise SetpointRejected(f"PLC FAKE holds {name}={self.tags[name]} after {value} was "
                                   "written")
        return self.tags[name]


def opener(device):  # type: ignore[no-untyped-def]
    @contextmanager
    def _open(_equipment_id: str) -> Iterator[object]:
        yield device

    return _open


class FakeReports:
    def __init__(self) -> None:
        self.published: list[str] = []

    @activity.defn(name="publish_report")
    def publish_report(self, inp: ReportInput) -> ReportRef:
        self.published.append(inp.batch_id)
        return ReportRef(path=f"/reports/{inp.batch_id}.pdf", sha256="0" * 64, pages=3)
