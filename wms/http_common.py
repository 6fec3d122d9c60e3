"""One request/response exchange with an external WMS or QMS over HTTP (httpx).

Every call is `POST {base_url}/{operation}` with the message dataclass as JSON and the
headers `Idempotency-Key` (a write's own key; for a query, one derived from its content)
and `X-Ebr-Message-Version`. The answer is classified:

- 2xx: the body must decode into the expected message (all fields, right types, nothing
  extra) and carry the same message version, else `ContractViolation` (not retried).
- 400/404/409/422 with `{"error": {"type", "message"}}`: the business refusal named by
  `type` is raised (e.g. `LotOnHold`), with the remote system's message.
- 429, 5xx, timeouts and connection failures: the transient error, which activities
  leave retryable; the idempotency key makes the retry safe.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from signatures.canonical import content_hash
from wms.codec import DecodeError, decode, encode
from wms.port import ContractViolation

T = TypeVar("T")
VERSION_HEADER = "X-Ebr-Message-Version"
KEY_HEADER = "Idempotency-Key"
REFUSAL_STATUSES = (400, 404, 409, 422)


class HttpExchange:
    def __init__(
        self,
        base_url: str,
        *,
        system: str,
        version: str,
        errors: dict[str, type[Exception]],
        business_error: type[Exception],
        unavailable: type[Exception],
        timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.system, self.version = system, version
        self.errors, self.business_error, self.unavailable = errors, business_error, unavailable
        # One timeout for connect, read, write and pool: a WMS that hangs must not hold
        # an activity slot longer than the activity's own timeout expects.
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/",
                                 timeout=httpx.Timeout(timeout_s), headers=headers or {},
                                 transport=transport)

    def close(self) -> None:
        self.http.close()

    def call(self, operation: str, request: Any, result_type: type[T]) -> T:
        body = encode(request)
        # Writes carry the caller's key; a query's key is its content, so the same question
        # always carries the same key (repeating it is harmless, and the other side can
        # still recognise and log it).
        key = getattr(request, "key", "") or f"query:{operation}:{content_hash(body)[:32]}"
        headers = {VERSION_HEADER: self.version, KEY_HEADER: key}
        try:
            response = self.http.post(operation, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise self.unavailable(f"The {self.system} did not answer {operation} in time "
                                   f"({exc.__class__.__name__}); it will be retried.") from exc
        except httpx.TransportError as exc:
            raise self.unavailable(
                f"The {self.system} could not be reached for {operation} "
                f"({exc.__class__.__name__}: {exc}); it will be retried.") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise self.unavailable(f"The {self.system} answered {status} to {operation}; it "
                                   "will be retried.")
        if response.headers.get(VERSION_HEADER) != self.version:
            raise ContractViolation(
                f"The {self.system} answered {operation} with message version "
                f"{response.headers.get(VERSION_HEADER)!r}; ebr speaks version {self.version}.")
        try:
            body = response.json()
        except ValueError as exc:
            raise ContractViolation(f"The {self.system} answered {operation} ({status}) "
                                    "with a body that is not JSON.") from exc
        if 200 <= status < 300:
            try:
                return decode(result_type, body)
            except DecodeError as exc:
                raise ContractViolation(f"The {self.system}'s answer to {operation} does not "
                                        f"match message version {self.version}: {exc}") from exc
        if status in REFUSAL_STATUSES:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                cls = self.errors.get(str(error.get("type")), self.business_error)
                raise cls(error["message"])
        raise ContractViolation(f"The {self.system} answered {operation} with status {status}, "
                                "which this interface does not define.")
