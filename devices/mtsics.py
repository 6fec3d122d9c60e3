"""A small MT-SICS client (Mettler-Toledo Standard Interface Command Set) on pyserial.

Blocking and synchronous: it is called from sync Temporal activities on a thread pool.
Every command is one request line and one answer line (multi-line `B` answers are
collected up to the final line); each line ends with CRLF. The exact answer lines are
kept in `ScaleReading.raw_frames` so the batch record holds what the instrument said,
not only what we made of it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import NoReturn

import serial

from devices.errors import (
    ScaleCommandError,
    ScaleConnectionError,
    ScaleError,
    ScaleOverload,
    ScaleTimeout,
    ScaleUnderload,
    ScaleUnstable,
)

CRLF = b"\r\n"

# How often `stable_weight` re-asks a scale that answered `S D` / `S I`. Short enough to
# catch the moment it settles, long enough not to flood a 9600-baud line.
POLL_INTERVAL_S = 0.1

# The weight field of S/SI/T answers: right-aligned value (the sign may be separated
# from the digits by padding), then the unit.
# ASCII digits only, at most 12 before and 6 after the point (no balance shows more);
# the unit is letters only (g, kg, mg, ct, lb, oz, ozt, dwt, ...), so a corrupted line
# never turns into a number or a unit by accident.
_WEIGHT_BODY = re.compile(
    r"^(?P<sign>[-+]?) *(?P<digits>[0-9]{1,12}(?:\.[0-9]{1,6})?) +(?P<unit>[A-Za-z]{1,8})\Z"
)
_QUOTED = re.compile(r'"([^"]*)"')
# Older I2 answers pack "<type> <capacity> <unit>" in one string; newer ones split them.
_CAPACITY_SUFFIX = re.compile(r"\s+[-+]?\d+(?:\.\d+)?\s+\S+$")
_GENERIC_ERRORS = {
    "ES": "did not recognise the command (syntax error)",
    "ET": "received a garbled command (transmission error)",
    "EL": "cannot execute the command now (logical error)",
}

# What to tell the operator when a command hits the top (+) or bottom (-) of a range.
_RANGE_HINTS = {
    "weigh": (
        "the load is above its capacity: remove material or use a larger scale",
        "the load is below its range: check that the weighing pan is in place, then zero",
    ),
    "zero": (
        "the load is above the zero-setting range: empty the pan, then zero",
        "the load is below the zero-setting range: check that the pan is in place",
    ),
    "tare": (
        "the load is above the taring range: use a lighter container",
        "a load below zero cannot be tared: zero the empty scale first",
    ),
}
_OTHER_RANGE_HINTS = ("the scale reports overload", "the scale reports underload")


@dataclass(frozen=True)
class ScaleSettings:
    """How to reach a scale.

    `url` is a device path (`/dev/ttyUSB0`, `/dev/pts/3`) or a pyserial URL such as
    `socket://127.0.0.1:4001` (serial-to-Ethernet converters). `name` is the equipment
    id used in error messages; the url is used when it is empty.
    """

    url: str
    baudrate: int = 9600
    parity: str = "N"
    bytesize: int = 8
    stopbits: int = 1
    timeout_s: float = 2.0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.url


@dataclass(frozen=True)
class ScaleReading:
    """A weight as the scale sent it; `raw_frames` are the answer lines without CRLF."""

    value: Decimal
    unit: str
    stable: bool
    raw_frames: tuple[str, ...]


@dataclass(frozen=True)
class ScaleIdentity:
    model: str
    serial_number: str


@dataclass(frozen=True)
class _Frame:
    """One answer line split into `<id> <status> <body>`."""

    raw: str
    ident: str
    status: str
    body: str


class MtSicsScale:
    """An MT-SICS scale on a serial port or a serial-over-TCP URL.

    Use as a context manager, or call `open()`/`close()`; commands open the port on first
    use. One instance serialises its commands, so it may be shared between threads.
    """

    def __init__(self, settings: ScaleSettings) -> None:
        self._settings = settings
        self._port: serial.SerialBase | None = None
        self._lock = threading.RLock()

    def __enter__(self) -> MtSicsScale:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        with self._lock:
            if self._port is not None:
                return
            s = self._settings
            # pyserial's RFC 2217 client refuses a write timeout; its writes go to a TCP
            # socket, which does not block on a stalled device the way a UART can.
            rfc2217 = s.url.lower().startswith("rfc2217://")
            try:
                self._port = serial.serial_for_url(
                    s.url,
                    baudrate=s.baudrate,
                    parity=s.parity,
                    bytesize=s.bytesize,
                    stopbits=s.stopbits,
                    timeout=s.timeout_s,
                    write_timeout=None if rfc2217 else s.timeout_s,
                    do_not_open=False,
                )
            except (serial.SerialException, ValueError, OSError, NotImplementedError) as exc:
                raise ScaleConnectionError(
                    f"Scale {s.label}: cannot open {s.url} ({exc}): check that the scale is "
                    "connected and switched on, that the port in the settings is right and "
                    "that no other program holds it"
                ) from exc

    def close(self) -> None:
        with self._lock:
            if self._port is not None:
                self._port.close()
                self._port = None

    # -- commands ------------------------------------------------------------------

    def identity(self) -> ScaleIdentity:
        """Model (I2) and serial number (I4)."""
        with self._lock:
            model_frame = self._accepted(self._ask("I2", ("I2",)), "report its model")
            serial_frame = self._accepted(self._ask("I4", ("I4",)), "report its serial number")
        model_fields = _QUOTED.findall(model_frame.body)
        serial_fields = _QUOTED.findall(serial_frame.body)
        if not model_fields or not serial_fields:
            bad = model_frame if not model_fields else serial_frame
            raise self._unparsable(bad.raw, "a quoted identity string")
        model = _CAPACITY_SUFFIX.sub("", model_fields[0].strip()) or model_fields[0].strip()
        return ScaleIdentity(model=model, serial_number=serial_fields[0].strip())

    def stable_weight(self, settle_timeout_s: float = 10.0) -> ScaleReading:
        """The next stable weight; re-asks while the scale reports motion or is busy.

        Raises ScaleUnstable when it has not settled within `settle_timeout_s`.
        """
        deadline = time.monotonic() + settle_timeout_s
        seen: list[str] = []
        with self._lock:
            while True:
                remaining = deadline - time.monotonic()
                frames = self._ask("S", ("S",), wait_s=remaining)
                seen.extend(f.raw for f in frames)
                frame = frames[-1]
                if frame.status == "S":
                    return self._reading(frame, stable=True, raw_frames=seen)
                if frame.status not in ("D", "I"):
                    self._raise_for_status(frame, "weigh")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ScaleUnstable(
                        f"Scale {self._settings.label} did not settle within "
                        f"{settle_timeout_s:g} s (last answer {frame.raw!r}): remove "
                        "drafts/vibration and weigh again"
                    )
                time.sleep(min(POLL_INTERVAL_S, remaining))

    def immediate_weight(self) -> ScaleReading:
        """The current weight whether stable or not (SI); `stable` tells which."""
        with self._lock:
            frames = self._ask("SI", ("S", "SI"))
        frame = frames[-1]
        if frame.status in ("S", "D"):
            raws = [f.raw for f in frames]
            return self._reading(frame, stable=frame.status == "S", raw_frames=raws)
        self._raise_for_status(frame, "weigh")

    def zero(self) -> None:
        """Set the zero point (Z). Zeroing also clears the tare on MT-SICS scales."""
        with self._lock:
            self._accepted(self._ask("Z", ("Z",)), "zero")

    def tare(self) -> ScaleReading:
        """Tare the load on the pan (T); returns the tare weight the scale stored."""
        with self._lock:
            frames = self._ask("T", ("T",))
        frame = frames[-1]
        if frame.status == "S":
            return self._reading(frame, stable=True, raw_frames=[f.raw for f in frames])
        self._raise_for_status(frame, "tare")

    def clear_tare(self) -> None:
        """Clear the tare memory (TAC)."""
        with self._lock:
            self._accepted(self._ask("TAC", ("TAC",)), "clear the tare")

    # -- protocol ------------------------------------------------------------------

    def _ask(
        self, command: str, answers_as: tuple[str, ...], wait_s: float | None = None
    ) -> list[_Frame]:
        """Send one command; return its answer lines, the final one last.

        `wait_s` extends the answer timeout for commands the scale may hold until it
        settles (S); by default the settings' timeout applies.
        """
        wait_s = max(self._settings.timeout_s, wait_s or 0.0)
        port = self._open_port()
        try:
            # A late answer to an earlier, timed-out command would otherwise be taken
            # as the answer to this one.
            port.reset_input_buffer()
            port.write(command.encode("ascii") + CRLF)
            frames: list[_Frame] = []
            while True:
                frame = self._parse(self._read_line(port, command, wait_s))
                frames.append(frame)
                if frame.ident in _GENERIC_ERRORS:
                    raise ScaleCommandError(
                        f"Scale {self._settings.label} {_GENERIC_ERRORS[frame.ident]} "
                        f"for {command!r} (answered {frame.raw!r}): check that the scale's "
                        "interface is set to MT-SICS and that it is not in a menu",
                        code=frame.ident,
                        raw=frame.raw,
                    )
                if frame.ident not in answers_as:
                    raise self._unparsable(frame.raw, f"an answer to {command!r}")
                # MT-SICS sends `B` lines before the final one for multi-line answers.
                if frame.status != "B":
                    return frames
        except serial.SerialTimeoutException as exc:
            raise ScaleTimeout(
                f"Scale {self._settings.label} did not accept {command!r} within "
                f"{self._settings.timeout_s:g} s: check the cable and handshake settings"
            ) from exc
        except serial.SerialException as exc:
            self.close()
            raise ScaleConnectionError(
                f"Scale {self._settings.label}: connection on {self._settings.url} lost "
                f"({exc}): check the cable or the serial converter, then retry"
            ) from exc

    def _open_port(self) -> serial.SerialBase:
        self.open()
        assert self._port is not None
        return self._port

    def _read_line(self, port: serial.SerialBase, command: str, wait_s: float) -> str:
        s = self._settings
        deadline = time.monotonic() + wait_s
        data = b""
        # read_until gives up after the port timeout; keep reading until our own deadline
        # so a scale that holds its answer until it settles is not reported as silent.
        while not data.endswith(CRLF) and time.monotonic() < deadline:
            data += port.read_until(CRLF)
        if not data.endswith(CRLF):
            partial = f" (got only {data!r})" if data else ""
            raise ScaleTimeout(
                f"Scale {s.label} did not answer {command!r} within {wait_s:g} s"
                f"{partial}: check that it is switched on, connected to {s.url} and that "
                f"its interface is set to MT-SICS at {s.baudrate} baud {s.bytesize}"
                f"{s.parity}{s.stopbits}"
            )
        try:
            return data[: -len(CRLF)].decode("ascii")
        except UnicodeDecodeError as exc:
            expected = "an ASCII line (wrong baud rate or parity?)"
            raise self._unparsable(repr(data), expected) from exc

    def _parse(self, line: str) -> _Frame:
        # Printable ASCII only: control characters mean line noise, not an answer.
        if any(not " " <= ch <= "~" for ch in line):
            raise self._unparsable(line, "printable ASCII (line noise, wrong baud rate?)")
        parts = line.split(maxsplit=2)
        if not parts:
            raise self._unparsable(line, "an MT-SICS answer")
        ident = parts[0]
        status = parts[1] if len(parts) > 1 else ""
        body = parts[2] if len(parts) > 2 else ""
        return _Frame(raw=line, ident=ident, status=status, body=body)

    def _accepted(self, frames: list[_Frame], action: str) -> _Frame:
        """The final frame if the scale executed the command (status A), else raise."""
        frame = frames[-1]
        if frame.status != "A":
            self._raise_for_status(frame, action)
        return frame

    def _reading(self, frame: _Frame, *, stable: bool, raw_frames: list[str]) -> ScaleReading:
        match = _WEIGHT_BODY.match(frame.body)
        if match is None:
            raise self._unparsable(frame.raw, "a weight and unit")
        # Decimal from the text keeps the scale's resolution: "1200.00" stays 2 places.
        value = Decimal(match["sign"] + match["digits"])
        return ScaleReading(
            value=value, unit=match["unit"], stable=stable, raw_frames=tuple(raw_frames)
        )


    def _raise_for_status(self, frame: _Frame, action: str) -> NoReturn:
        """Turn a non-success status into the matching exception."""
        label = self._settings.label
        error: ScaleError
        if frame.status in ("+", "-"):
            over, under = _RANGE_HINTS.get(action, _OTHER_RANGE_HINTS)
            exc_type = ScaleOverload if frame.status == "+" else ScaleUnderload
            hint = over if frame.status == "+" else under
            error = exc_type(f"Scale {label} cannot {action} ({frame.raw!r}): {hint}")
        elif frame.status == "I":
            error = ScaleUnstable(
                f"Scale {label} could not {action}: it is busy or not stable "
                f"({frame.raw!r}): remove drafts/vibration and try again"
            )
        elif frame.status == "L":
            error = ScaleCommandError(
                f"Scale {label} cannot {action} in its current state ({frame.raw!r}): "
                "check the scale's display for a menu or message",
                code="L",
                raw=frame.raw,
            )
        else:
            error = self._unparsable(frame.raw, f"an answer to {action}")
        raise error

    def _unparsable(self, raw: str, expected: str) -> ScaleCommandError:
        return ScaleCommandError(
            f"Scale {self._settings.label} sent {raw!r}, expected {expected}: check that the "
            "scale's interface is set to MT-SICS and that nothing else is on the line",
            raw=raw,
        )


def parse_weight_answer(data: bytes, *, label: str = "scale") -> ScaleReading:
    """Interpret one complete answer line to `S`/`SI` (CRLF removed) without any I/O.

    The same code path `stable_weight` uses for each line, so it can be fuzzed: the
    result is a reading (`stable` tells S from D) or a ScaleError, never another
    exception and never a value from a line that is not a well-formed weight answer.
    """
    scale = MtSicsScale(ScaleSettings(url="", name=label))
    try:
        line = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise scale._unparsable(repr(data), "an ASCII line (wrong baud rate or parity?)") from exc
    frame = scale._parse(line)
    if frame.ident in _GENERIC_ERRORS:
        raise ScaleCommandError(
            f"Scale {label} {_GENERIC_ERRORS[frame.ident]} (answered {frame.raw!r})",
            code=frame.ident,
            raw=frame.raw,
        )
    if frame.ident not in ("S", "SI"):
        raise scale._unparsable(frame.raw, "an answer to 'S'")
    if frame.status in ("S", "D"):
        return scale._reading(frame, stable=frame.status == "S", raw_frames=[frame.raw])
    scale._raise_for_status(frame, "weigh")
