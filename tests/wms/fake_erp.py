"""A small fake ERP on 127.0.0.1: takes confirmations, applies each Idempotency-Key once
(as the interface requires of a real ERP), and plays scripted behaviours per request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.loopback import QuietHandler, serving

OK, DOWN, SLOW_AFTER_APPLYING, REFUSE = "ok", "down", "slow_after_applying", "refuse"


@dataclass
class FakeErp:
    script: list[str] = field(default_factory=list)  # one behaviour per request, then OK
    slow_s: float = 1.5
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> confirmation
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (key, version header)
    received: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def handle(self, key: str, version: str, body: dict[str, Any]) -> tuple[int, float]:
        self.attempts.append((key, version))
        behaviour = self.script.pop(0) if self.script else OK
        if behaviour == DOWN:
            return 503, 0.0
        if behaviour == REFUSE:
            return 422, 0.0
        self.ledger.setdefault(key, body)  # a repeated key changes nothing
        self.received.set()
        return 200, self.slow_s if behaviour == SLOW_AFTER_APPLYING else 0.0


@contextmanager
def serve_erp(erp: FakeErp) -> Iterator[FakeErp]:
    stop = threading.Event()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            status, delay = erp.handle(self.headers.get("Idempotency-Key", ""),
                                       self.headers.get("X-Ebr-Message-Version", ""), body)
            stop.wait(delay)  # the client times out meanwhile: it never sees this 200
            data = json.dumps({"accepted": status == 200}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    with serving(Handler) as base_url:
        erp.url = f"{base_url}/confirmations"
        try:
            yield erp
        finally:
            stop.set()  # a delayed answer still waiting ends now, so the server can stop
