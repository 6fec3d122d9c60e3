"""Request bodies are bounded and JSON is strict, before any route sees them.

* A body over its limit is refused with 413 as soon as that is known: from Content-Length
  before a byte is read, or while a chunked body streams in — never buffered whole first.
* JSON bodies may not contain NaN or Infinity (Python's json accepts them; no GxP value is
  ever "NaN") nor nest deeper than any ebr request does, refused with 422 and the reason.

Pure ASGI so the limit applies before FastAPI parses anything.
"""

from __future__ import annotations

import json
from typing import Any

# JSON and forms: a recipe's YAML (at most 1 MiB, recipes/yaml_safe.py) escaped in JSON.
DEFAULT_LIMIT = 2 * 1024 * 1024
# Multipart uploads: a signed eBMR PDF to verify (64 MiB, api/routes_reports.py) plus parts.
UPLOAD_LIMIT = 65 * 1024 * 1024
MAX_JSON_DEPTH = 32


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _reject_constant(name: str) -> None:
    raise _Refused(
        422, "invalid_request",
        f"JSON value {name} is not a number ebr accepts; send a decimal number as text.",
    )


def check_json(body: bytes) -> None:
    if not body:
        return
    # Nesting is bounded by counting brackets first: json.loads itself recurses. Only bodies
    # with enough brackets to be too deep are scanned byte by byte.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        _check_depth(body)
    try:
        json.loads(body, parse_constant=_reject_constant)
    except ValueError:
        return  # malformed JSON: FastAPI answers it with its own 422 and the position


def _check_depth(body: bytes) -> None:
    opened = depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            opened += 1
            depth = max(depth, opened)
            if depth > MAX_JSON_DEPTH:
                raise _Refused(
                    422, "invalid_request",
                    f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels; "
                    "no ebr request does.",
                )
        elif byte in (0x5D, 0x7D):
            opened -= 1


class BodyGuard:
    def __init__(self, app: Any, limit: int = DEFAULT_LIMIT, upload_limit: int = UPLOAD_LIMIT):
        self.app, self.limit, self.upload_limit = app, limit, upload_limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.upload_limit if content_type.startswith("multipart/") else self.limit
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        try:
            if declared > limit:
                raise self._too_large(limit)
            if content_type.startswith("application/json"):
                body = await self._read(receive, limit)
                check_json(body)
                receive = _replay(body)
            else:
                receive = self._counting(receive, limit)
        except _Refused as refused:
            await _answer(send, refused)
            return
        try:
            await self.app(scope, receive, send)
        except _Refused as refused:  # a streamed body crossed the limit mid-way
            await _answer(send, refused)

    def _too_large(self, limit: int) -> _Refused:
        return _Refused(
            413, "too_large",
            f"The request body is larger than {limit // (1024 * 1024)} MiB; send less.",
        )

    async def _read(self, receive: Any, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _counting(self, receive: Any, limit: int) -> Any:
        size = 0

        async def counted() -> dict[str, Any]:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise self._too_large(limit)
            return message

        return counted


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _answer(send: Any, refused: _Refused) -> None:
    payload = json.dumps({"error": {"code": refused.code, "message": refused.message}}).encode()
    await send({
        "type": "http.response.start",
        "status": refused.status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})
