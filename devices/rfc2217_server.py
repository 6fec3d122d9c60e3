"""An RFC 2217 (Telnet COM Port Control) server in front of a local serial port.

This is what a serial device server (a serial-to-Ethernet converter in RFC 2217 mode)
does: clients open `rfc2217://host:port` with pyserial and get the remote port with its
line settings (baud rate, parity, ...) applied at the far end. The simulators use it to
serve the simulated scale's pseudo-terminal over RFC 2217, so the driver is tested on
that transport too; a site can use it to share a PC's serial port.

The protocol work (Telnet option negotiation, COM-port subnegotiation, escaping of
0xFF) is pyserial's `serial.rfc2217.PortManager`; this module owns the sockets and the
two copy loops. One client at a time, as with a COM port: a second connection waits
until the first closes.
"""

from __future__ import annotations

import contextlib
import socket
import termios
import threading

import serial
from serial.rfc2217 import PortManager

from devices.errors import DeviceConnectionError

_CHUNK = 4096
_PORT_ERRORS = (serial.SerialException, OSError, termios.error, ValueError)
_POLL_S = 0.05


class PtyPort(serial.Serial):  # type: ignore[misc]
    """A pseudo-terminal as the far end of the bridge (the simulators). A pty has no
    modem lines: reading them gives the idle state of a device that is present (CTS,
    DSR, CD on; RI off), setting RTS/DTR/break is ignored. Its line settings are not
    physical and the kernel refuses some (parity): they are kept as attributes, so the
    client's RFC 2217 negotiation succeeds as it would with a real port."""

    def _reconfigure_port(self, force_update: bool = False) -> None:
        with contextlib.suppress(OSError, termios.error):
            super()._reconfigure_port(force_update)

    def _update_rts_state(self) -> None:
        with contextlib.suppress(OSError):
            super()._update_rts_state()

    def _update_dtr_state(self) -> None:
        with contextlib.suppress(OSError):
            super()._update_dtr_state()

    def _update_break_state(self) -> None:
        with contextlib.suppress(OSError):
            super()._update_break_state()

    def _line(self, name: str, idle: bool) -> bool:
        try:
            return bool(getattr(serial.Serial, name).fget(self))
        except OSError:
            return idle

    @property
    def cts(self) -> bool:
        return self._line("cts", True)

    @property
    def dsr(self) -> bool:
        return self._line("dsr", True)

    @property
    def ri(self) -> bool:
        return self._line("ri", False)

    @property
    def cd(self) -> bool:
        return self._line("cd", True)


class Rfc2217Server:
    """Serves the serial port at `device` (a path) on TCP with RFC 2217; `port_class`
    opens it (`PtyPort` for a pseudo-terminal)."""

    def __init__(
        self, device: str, *, name: str = "rfc2217", port_class: type[serial.Serial] = serial.Serial
    ) -> None:
        self._device = device
        self._port_class = port_class
        self._name = name
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = a free port); returns the bound port."""
        try:
            self._listener = socket.create_server((host, port))
        except OSError as exc:
            raise DeviceConnectionError(
                f"{self._name} could not listen on {host}:{port} ({exc}): choose a free port"
            ) from exc
        self._listener.settimeout(_POLL_S)
        self._spawn(self._accept_loop, f"{self._name}-accept")
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target: object, name: str, *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        """Bridge one client until it disconnects or the server stops."""
        conn.settimeout(_POLL_S)
        try:
            port = self._port_class(self._device, timeout=_POLL_S)
        except (serial.SerialException, OSError):
            return  # the client sees the connection close, as with a dead device server
        send_lock = threading.Lock()

        class _Connection:
            # PortManager answers negotiations from the network thread and we forward
            # serial data from another: sends are serialised.
            @staticmethod
            def write(data: bytes) -> None:
                with send_lock:
                    conn.sendall(data)

        done = threading.Event()
        with port:
            manager = PortManager(port, _Connection())
            reader = self._spawn(self._serial_to_network, f"{self._name}-out", port, manager,
                                 _Connection, done)
            try:
                self._network_to_serial(conn, port, manager)
            finally:
                done.set()
                reader.join(timeout=2.0)

    def _network_to_serial(
        self, conn: socket.socket, port: serial.Serial, manager: PortManager
    ) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(_CHUNK)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                port.write(b"".join(manager.filter(data)))
            except _PORT_ERRORS:
                return  # the port refused a setting or went away: drop the client

    def _serial_to_network(
        self, port: serial.Serial, manager: PortManager, connection: type, done: threading.Event
    ) -> None:
        while not (done.is_set() or self._stop.is_set()):
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError):
                return
            if not data:
                continue
            try:
                connection.write(b"".join(manager.escape(data)))
            except OSError:
                return
