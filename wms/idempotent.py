"""Apply a write once per idempotency key; a repeated key returns the first result.

Shared by the built-in WMS and QMS. The key row, the business rows and the audit entry
commit in one transaction, so "applied" and "remembered as applied" cannot diverge.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from signatures.canonical import content_hash
from store.db import transaction
from wms.codec import decode, encode

R = TypeVar("R")


class RequestRow(Protocol):
    key: str
    operation: str
    request_hash: str
    result_json: str


def write_once(
    engine: Engine,
    row_type: Any,
    operation: str,
    request: Any,
    result_type: type[R],
    apply: Callable[[Session], R],
    conflict: Callable[[str], Exception],
) -> R:
    fingerprint = content_hash({k: v for k, v in encode(request).items() if k != "key"})
    # Two attempts: a concurrent request with the same key may win the unique insert; the
    # second attempt then finds its row and replays it.
    for attempt in (1, 2):
        try:
            with transaction(engine) as s:
                prior = s.exec(select(row_type).where(row_type.key == request.key)).first()
                if prior is not None:
                    if prior.operation != operation or prior.request_hash != fingerprint:
                        raise conflict(
                            f"Key '{request.key}' was already used for a different "
                            f"{prior.operation} request; send a new key for a new request."
                        )
                    result = decode(result_type, json.loads(prior.result_json))
                    return dataclasses.replace(result, replayed=True)  # type: ignore[type-var]
                result = apply(s)
                s.add(row_type(key=request.key, operation=operation, request_hash=fingerprint,
                               result_json=json.dumps(encode(result))))
                s.flush()
                return result
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
