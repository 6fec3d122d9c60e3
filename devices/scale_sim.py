"""An MT-SICS scale simulator, served on a pty (real serial semantics) and/or TCP.

The simulated balance holds a load on its pan (`set_weight`), a zero point, a tare, a
stability flag and an optional fault. It answers the MT-SICS subset the client uses:
S, SI, Z, T, TAC, I2, I4 and @ (reset). Everything is guarded by one lock because the
pty, every TCP connection and the control channel each run in their own thread.

The control channel (`serve_control`) lets another process put material on the scale:
one JSON object per line over TCP, answered by one JSON line (see `ScaleControl`).
"""

from __future__ import annotations

import json
import socket
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from devices.errors import DeviceConnectionError, DeviceError
from devices.line_transport import LinePtyServer, LineTcpServer, RawReply
from devices.rfc2217_server import PtyPort, Rfc2217Server

# ES/ET/EL: answer every command with that error; silent: never answer; half: the first
# half of the right answer and no CRLF; garbage: a line of noise; late: the right answer
# after `late_s`; disconnect: hang up on the command (TCP; a pty stays silent).
FAULT_MODES = ("ES", "ET", "EL", "silent", "half", "garbage", "late", "disconnect")
GARBAGE = b"\x00S\xfe S  12\x07.3 g\r\n"
# The serial number the default simulated balance (the stack's SCALE-01) answers to I4.
DEFAULT_SERIAL = "B123456789"


class ScaleSimulator:
    """A thread-safe MT-SICS balance.

    Limits, as on a real balance: above `capacity` the scale reports overload (`S +`);
    more than 2 % of capacity below its zero point it reports underload (`S -`, the pan
    is missing); zeroing is only allowed within +/- 2 % of capacity of the power-on zero.
    """

    def __init__(
        self,
        *,
        model: str = "XS6002S",
        serial_number: str = DEFAULT_SERIAL,
        capacity: Decimal = Decimal("6000"),
        decimals: int = 2,
        unit: str = "g",
        echo_si: bool = False,
        late_s: float = 3.0,
    ) -> None:
        """`echo_si` makes SI answers start with `SI` (`SI S ...`), as some devices do."""
        self.model = model
        self.serial_number = serial_number
        self.unit = unit
        self._capacity = capacity
        self._step = Decimal(1).scaleb(-decimals)
        self._limit = capacity * Decimal("0.02")
        self._echo_si = echo_si
        # The `late` fault's delay: longer than the driver's default 2 s answer timeout.
        self.late_s = late_s
        self._lock = threading.Lock()
        self._load = Decimal(0)
        self._zero = Decimal(0)
        self._tare = Decimal(0)
        self._stable = True
        self._fault: str | None = None
        self._servers: list[LinePtyServer | LineTcpServer | Rfc2217Server] = []

    # -- state ---------------------------------------------------------------------

    def set_weight(self, value: Decimal | str) -> None:
        """Put `value` (gross, in the scale's unit) on the pan."""
        load = _parse_decimal(value)
        with self._lock:
            self._load = load

    def set_stable(self, stable: bool) -> None:
        with self._lock:
            self._stable = bool(stable)

    def set_fault(self, mode: str | None) -> None:
        """One of FAULT_MODES (see there), or None for a healthy scale."""
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; use one of {FAULT_MODES} or None")
        with self._lock:
            self._fault = mode

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "weight": str(self._load),
                "net": self._format(self._net()),
                "tare": self._format(self._tare),
                "unit": self.unit,
                "stable": self._stable,
                "fault": self._fault,
                "capacity": self._format(self._capacity),
                "model": self.model,
                "serial_number": self.serial_number,
            }

    # -- transports ----------------------------------------------------------------

    def serve_pty(self) -> str:
        """Serve MT-SICS on a new pseudo-terminal; returns the path for pyserial."""
        server = LinePtyServer(self.handle_line, terminator=b"\r\n", name="scale-sim-pty")
        self._servers.append(server)
        return server.start()

    def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve MT-SICS on TCP (`socket://host:port` for pyserial); returns the port."""
        server = LineTcpServer(self.handle_line, terminator=b"\r\n", name="scale-sim-tcp")
        self._servers.append(server)
        return server.start(host, port)

    def serve_rfc2217(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve MT-SICS over RFC 2217 (`rfc2217://host:port` for pyserial), as a serial
        device server in front of a new pseudo-terminal would; returns the port."""
        bridge = Rfc2217Server(self.serve_pty(), name="scale-sim-rfc2217", port_class=PtyPort)
        self._servers.append(bridge)
        return bridge.start(host, port)

    def serve_control(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve the JSON-lines control channel; returns the port."""
        server = LineTcpServer(self._handle_control, terminator=b"\n", name="scale-sim-ctl")
        self._servers.append(server)
        return server.start(host, port)

    def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()

    # -- MT-SICS -------------------------------------------------------------------

    def handle_line(self, line: str) -> str | RawReply | None:
        """Answer one MT-SICS command line (without CRLF); None means stay silent, a
        RawReply is a faulty answer (see FAULT_MODES)."""
        command = line.strip()
        with self._lock:
            if self._fault in ("silent", "disconnect"):
                return RawReply(hang_up=True) if self._fault == "disconnect" else None
            if self._fault in ("ES", "ET", "EL"):
                return self._fault
            if self._fault == "garbage":
                return RawReply(GARBAGE)
            answer = self._answer(command)
            if self._fault == "half":
                return RawReply(answer.encode("ascii")[: max(1, len(answer) // 2)])
            if self._fault == "late":
                return RawReply(answer.encode("ascii") + b"\r\n", delay_s=self.late_s)
            return answer

    def _answer(self, command: str) -> str:
        handler = {
            "S": self._stable_weight,
            "SI": self._immediate_weight,
            "Z": self._zero_scale,
            "T": self._tare_scale,
            "TAC": self._clear_tare,
            "I2": lambda: f'I2 A "{self.model} {self._format(self._capacity)} {self.unit}"',
            "I4": lambda: f'I4 A "{self.serial_number}"',
            "@": self._reset,
        }.get(command)
        return handler() if handler is not None else "ES"

    def _stable_weight(self) -> str:
        return self._weight_answer("S", "S" if self._stable else "D")

    def _immediate_weight(self) -> str:
        return self._weight_answer("SI" if self._echo_si else "S", "S" if self._stable else "D")

    def _weight_answer(self, ident: str, status: str) -> str:
        gross = self._load - self._zero
        if gross > self._capacity:
            return f"{ident} +"
        if gross < -self._limit:
            return f"{ident} -"
        return f"{ident} {status} {self._format(self._net()):>10} {self.unit}"

    def _zero_scale(self) -> str:
        if not self._stable:
            return "Z I"
        if self._load > self._limit:
            return "Z +"
        if self._load < -self._limit:
            return "Z -"
        self._zero = self._load
        self._tare = Decimal(0)
        return "Z A"

    def _tare_scale(self) -> str:
        gross = self._load - self._zero
        if not self._stable:
            return "T I"
        if gross > self._capacity:
            return "T +"
        if gross < 0:
            return "T -"
        self._tare = gross.quantize(self._step)
        return f"T S {self._format(self._tare):>10} {self.unit}"

    def _clear_tare(self) -> str:
        self._tare = Decimal(0)
        return "TAC A"

    def _reset(self) -> str:
        self._tare = Decimal(0)
        return f'I4 A "{self.serial_number}"'

    def _net(self) -> Decimal:
        return self._load - self._zero - self._tare

    def _format(self, value: Decimal) -> str:
        return str(value.quantize(self._step))

    # -- control channel -------------------------------------------------------------

    def _handle_control(self, line: str) -> str:
        try:
            self._apply_control(json.loads(line))
        except (ValueError, TypeError) as exc:
            return json.dumps({"ok": False, "error": str(exc)})
        return json.dumps({"ok": True, **self.state()})

    def _apply_control(self, request: object) -> None:
        if not isinstance(request, dict):
            raise ValueError('a request is a JSON object such as {"cmd": "state"}')
        cmd = request.get("cmd")
        if cmd == "set_weight":
            if not isinstance(request.get("value"), str | int | float):
                raise ValueError('set_weight needs "value", e.g. "1200.00"')
            self.set_weight(str(request["value"]))
        elif cmd == "set_stable":
            if not isinstance(request.get("stable"), bool):
                raise ValueError('set_stable needs "stable": true or false')
            self.set_stable(request["stable"])
        elif cmd == "set_fault":
            self.set_fault(request.get("mode"))
        elif cmd != "state":
            raise ValueError(f"unknown cmd {cmd!r}; use set_weight, set_stable, set_fault or state")


class ScaleControl:
    """Client for a ScaleSimulator's control channel at "host:port".

    Each call opens its own short connection, so instances are cheap and thread-safe.
    Every method returns the simulator's state after the change.
    """

    def __init__(self, address: str, *, timeout_s: float = 2.0) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"scale control address {address!r} must look like 'host:port'")
        self._address = (host, int(port))
        self._timeout_s = timeout_s

    def set_weight(self, value: Decimal | str) -> dict[str, Any]:
        return self._request({"cmd": "set_weight", "value": str(value)})

    def set_stable(self, flag: bool) -> dict[str, Any]:
        return self._request({"cmd": "set_stable", "stable": flag})

    def set_fault(self, mode: str | None) -> dict[str, Any]:
        return self._request({"cmd": "set_fault", "mode": mode})

    def state(self) -> dict[str, Any]:
        return self._request({"cmd": "state"})

    def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        where = f"{self._address[0]}:{self._address[1]}"
        try:
            with socket.create_connection(self._address, timeout=self._timeout_s) as sock:
                sock.sendall(json.dumps(payload).encode() + b"\n")
                answer = _read_json_line(sock)
        except OSError as exc:
            raise DeviceConnectionError(
                f"Scale simulator control channel at {where} is not answering ({exc}): "
                "start the simulated devices (ebr up) or check the address in the state file"
            ) from exc
        if not answer.get("ok"):
            raise DeviceError(
                f"Scale simulator at {where} refused {payload['cmd']}: {answer.get('error')}"
            )
        return answer


def _read_json_line(sock: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before a full answer arrived")
        data += chunk
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ConnectionError(f"unexpected answer {data!r}")
    return answer


def _parse_decimal(value: Decimal | str) -> Decimal:
    try:
        parsed = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"weight {value!r} is not a decimal number such as '1200.00'") from None
    if not parsed.is_finite():
        raise ValueError(f"weight {value!r} must be a finite number")
    return parsed
