"""Heartbeats on behalf of short activities, so a dead worker is noticed in seconds.

Record, WMS and QMS activities take milliseconds, but may wait out a busy database
(SQLite's 30 s busy timeout, a PostgreSQL lock) or a slow WMS. Without a heartbeat the
server learns that the worker running one died only when its start-to-close timeout
expires; a start-to-close short enough to recover quickly would abandon (and run again,
alongside) an attempt that is merely waiting. So the worker heartbeats for them from its
event loop while they run: an attempt that is alive is never timed out, however long it
waits, and one whose worker was killed is retried once its heartbeat timeout passes.

The heartbeat says only "this worker is alive", not "the call is making progress": a
call that hangs is still bounded by its start-to-close timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__ebr_keep_alive__"
# How often the worker heartbeats, as a fraction of the call's heartbeat timeout. The SDK
# sends at most one heartbeat per 0.8 x the timeout; beating more often than that keeps
# one always pending, so a late tick of a busy event loop does not leave a gap.
_BEATS_PER_TIMEOUT = 5


def keeps_alive(fn: F) -> F:
    """Mark an activity the worker heartbeats for while it runs (when the call set a
    heartbeat timeout). Only for activities that record no heartbeat details of their own:
    these beats carry none."""
    setattr(fn, _MARK, True)
    return fn


class KeepAlive(Interceptor):
    """Worker interceptor: heartbeats for `keeps_alive` activities until they return."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _KeepAliveInbound(next)


class _KeepAliveInbound(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._outbound = outbound
        super().init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout or not getattr(input.fn, _MARK, False):
            return await super().execute_activity(input)
        beating = asyncio.create_task(self._beat(timeout))
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()

    async def _beat(self, timeout: timedelta) -> None:
        interval = timeout.total_seconds() / _BEATS_PER_TIMEOUT
        while True:
            # The outbound heartbeat is the worker's own, called on its event loop (the
            # activity context's heartbeat is the thread-side one of sync activities).
            self._outbound.heartbeat()
            await asyncio.sleep(interval)
