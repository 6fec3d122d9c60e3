"""A small fake external WMS/QMS on 127.0.0.1: real HTTP, the built-ins behind it, and
scripted faults (status, body, delay, version) served before the real answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.loopback import QuietHandler, serving
from wms.codec import decode, encode


@dataclass
class Fault:
    status: int = 200
    body: Any = None
    delay_s: float = 0.0
    version: str = "1"


@dataclass
class FakeServer:
    routes: dict[str, tuple[Callable[[Any], Any], type]]
    business_errors: tuple[type[Exception], ...]
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]
               ) -> tuple[int, Any, str, float]:
        self.seen.append((path, headers, body))
        scripted = self.faults.get(path)
        if scripted:
            fault = scripted.pop(0)
            return fault.status, fault.body, fault.version, fault.delay_s
        handler, request_type = self.routes[path]
        try:
            return 200, encode(handler(decode(request_type, body))), "1", 0.0
        except self.business_errors as exc:
            return 409, {"error": {"type": type(exc).__name__, "message": str(exc)}}, "1", 0.0


@contextmanager
def serve(fake: FakeServer) -> Iterator[FakeServer]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.removeprefix("/v1/")
            status, payload, version, delay = fake.answer(path, dict(self.headers), body)
            time.sleep(delay)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Ebr-Message-Version", version)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    with serving(Handler) as base_url:
        fake.url = f"{base_url}/v1"
        yield fake
