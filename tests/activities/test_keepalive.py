"""The worker heartbeats for short activities, so waiting is not mistaken for dying."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.keepalive import KeepAlive, keeps_alive

# Longer than the heartbeat timeout below: an attempt nobody heartbeats for is lost.
WAIT_S = 2.5


@activity.defn(name="slow_kept_alive")
@keeps_alive
def slow_kept_alive() -> int:
    time.sleep(WAIT_S)  # like a write waiting out a busy database
    return activity.info().attempt


@activity.defn(name="slow_unmarked")
def slow_unmarked() -> int:
    time.sleep(WAIT_S)
    return activity.info().attempt


@workflow.defn(sandboxed=False)
class CallsOnce:
    @workflow.run
    async def run(self, name: str) -> int:
        return await workflow.execute_activity(
            name, result_type=int,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def run(env: WorkflowEnvironment, name: str) -> int:
    queue = f"keepalive-{uuid.uuid4()}"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        async with Worker(env.client, task_queue=queue, workflows=[CallsOnce],
                          activities=[slow_kept_alive, slow_unmarked],
                          activity_executor=pool, interceptors=[KeepAlive()]):
            return await env.client.execute_workflow(
                CallsOnce.run, name, id=queue, task_queue=queue)


async def test_a_kept_alive_activity_outlives_its_heartbeat_timeout_on_its_first_attempt(
    temporal_env: WorkflowEnvironment,
):
    assert await run(temporal_env, "slow_kept_alive") == 1


async def test_without_the_mark_the_same_wait_times_out_on_heartbeat(
    temporal_env: WorkflowEnvironment,
):
    # The control: what the keep-alive prevents (and what tells a dead worker apart).
    with pytest.raises(WorkflowFailureError) as failed:
        await run(temporal_env, "slow_unmarked")
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, TimeoutError)
    assert cause.cause.type == TimeoutType.HEARTBEAT
