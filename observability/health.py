"""Readiness: can this API process serve requests that touch the record store and Temporal?

Liveness (`/healthz`) only says the process answers; readiness (`/readyz`) is what a load
balancer or Kubernetes uses to stop sending traffic to an API that cannot reach its
dependencies, with the failing dependency named so the operator knows where to look.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]


def _database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def readiness(engine: Engine, temporal_ping: Callable[[], Awaitable[object]]) -> Readiness:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(_database, engine), CHECK_TIMEOUT_S)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", named below
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
    try:
        await asyncio.wait_for(temporal_ping(), CHECK_TIMEOUT_S)
        checks["temporal"] = "ok"
    except Exception as exc:
        reason = "no answer within 2 s" if isinstance(exc, TimeoutError) else str(exc)
        checks["temporal"] = f"unreachable: {reason}"[:300]
    return Readiness(all(v == "ok" for v in checks.values()), checks)
