"""Pure ASGI middleware: a request id for every request, its latency, one access log line.

Pure ASGI rather than BaseHTTPMiddleware so streamed responses (PDF downloads) and
background tasks are not buffered, and the route template (not the raw path, which would
explode label cardinality with batch ids) is known after routing.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from observability.logs import request_id
from observability.metrics import ApiMetrics

log = logging.getLogger("ebr.access")

HEADER = b"x-request-id"
# A caller's id is kept only if it is short and harmless in logs and headers.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def route_of(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: Any, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        rid = incoming if _ACCEPTABLE.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                route,
                status,
                extra={
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "request_id": rid,
                },
            )
            request_id.reset(token)
