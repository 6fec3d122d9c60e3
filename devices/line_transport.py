"""Serve a line-oriented request/response protocol on TCP or on a pseudo-terminal.

Used by the simulators: the scale's MT-SICS port (pty and TCP) and its JSON control
channel. A handler maps one request line to one answer line, to None to stay silent
(a device that does not answer), or to a `RawReply` for a faulty device: raw bytes
without the terminator (half frames, garbage), sent late, or followed by hanging up.
Every transport runs in daemon threads and stops on `close()`; a shared wake-up pipe
interrupts blocking selects and delays so close never hangs.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RawReply:
    """A faulty answer: `data` as is (no terminator added), sent after `delay_s`; with
    `hang_up` the TCP connection is closed afterwards (a pty has no line to drop and
    stays open)."""

    data: bytes = b""
    delay_s: float = 0.0
    hang_up: bool = False


LineHandler = Callable[[str], str | RawReply | None]

# A request line longer than this is garbage (wrong baud rate, binary noise); dropping it
# keeps a misbehaving client from growing the buffer without bound.
MAX_LINE_BYTES = 4096


class LineBuffer:
    """Splits a byte stream into lines; accepts CRLF or bare LF as the terminator."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._pending += data
        lines: list[str] = []
        while (end := self._pending.find(b"\n")) >= 0:
            raw = bytes(self._pending[:end]).rstrip(b"\r")
            del self._pending[: end + 1]
            lines.append(raw.decode("ascii", errors="replace"))
        if len(self._pending) > MAX_LINE_BYTES:
            self._pending.clear()
        return lines


class _Wakeup:
    """A pipe that becomes readable once, forever, when the transport is closed."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()

    def fire(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._write_fd, b"x")

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when the transport was closed meanwhile."""
        ready, _, _ = select.select([self.read_fd], [], [], seconds)
        return bool(ready)

    def close(self) -> None:
        for fd in (self.read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class LineTcpServer:
    """A threaded TCP server: one daemon thread accepts, one thread per connection."""

    def __init__(self, handler: LineHandler, *, terminator: bytes, name: str) -> None:
        self._handler = handler
        self._terminator = terminator
        self._name = name
        self._wakeup = _Wakeup()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (port 0 picks a free one) and return the bound port."""
        self._listener = socket.create_server((host, port))
        self._spawn(self._accept_loop, f"{self._name}-accept")
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._wakeup.fire()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=2.0)
        if self._listener is not None:
            self._listener.close()
        self._wakeup.close()

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            # Prune finished connections: a web page polling the control channel opens
            # one connection per request, for days.
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            ready, _, _ = select.select([self._listener, self._wakeup.read_fd], [], [])
            if self._wakeup.read_fd in ready:
                return
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve_connection, f"{self._name}-{peer[1]}", conn)

    def _serve_connection(self, conn: socket.socket) -> None:
        buffer = LineBuffer()
        with conn:
            while True:
                ready, _, _ = select.select([conn, self._wakeup.read_fd], [], [])
                if self._wakeup.read_fd in ready:
                    return
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                for line in buffer.feed(data):
                    reply = _encoded(self._handler(line), self._terminator)
                    if reply is None:
                        continue
                    if reply.delay_s and self._wakeup.wait(reply.delay_s):
                        return
                    try:
                        conn.sendall(reply.data)
                    except OSError:
                        return
                    if reply.hang_up:
                        return


class LinePtyServer:
    """Serves the handler on a pseudo-terminal, so clients get real serial-port semantics.

    The slave end is put in raw mode (no echo, no CR/LF translation), like a serial line.
    This object keeps its own slave descriptor open: on Linux the master reports EIO once
    every slave descriptor is closed, and holding one lets clients close and reopen the
    port as they would a real COM port.
    """

    def __init__(self, handler: LineHandler, *, terminator: bytes, name: str) -> None:
        self._handler = handler
        self._terminator = terminator
        self._name = name
        self._wakeup = _Wakeup()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> str:
        self._thread.start()
        return self.path

    def close(self) -> None:
        self._wakeup.fire()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wakeup.close()

    def _serve(self) -> None:
        buffer = LineBuffer()
        while True:
            ready, _, _ = select.select([self._master, self._wakeup.read_fd], [], [])
            if self._wakeup.read_fd in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            for line in buffer.feed(data):
                reply = _encoded(self._handler(line), self._terminator)
                if reply is None:
                    continue
                if reply.delay_s and self._wakeup.wait(reply.delay_s):
                    return
                os.write(self._master, reply.data)


def _encoded(answer: str | RawReply | None, terminator: bytes) -> RawReply | None:
    if answer is None or isinstance(answer, RawReply):
        return answer
    return RawReply(answer.encode("ascii") + terminator)
