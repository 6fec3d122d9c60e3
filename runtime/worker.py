"""Build a batch worker from activity instances (real ones or test fakes alike)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.keepalive import KeepAlive
from observability.temporal import sdk_runtime, tracing_interceptors
from runtime.temporal_client import connect
from settings.config import Settings
from workflows.batch import BatchWorkflow

WORKFLOWS = [BatchWorkflow]
# Sync activities each hold a thread while they wait on a device or the database.
ACTIVITY_THREADS = 32


async def connect_client(settings: Settings, timeout_s: float = 60.0) -> Client:
    """A Temporal client as the settings say (address, namespace, TLS/mTLS, API key or
    profile: runtime/temporal_client.py), retrying while the server starts (`timeout_s`)."""
    runtime = sdk_runtime(settings.worker_metrics_address)
    return await connect(
        settings, wait_s=timeout_s,
        interceptors=tracing_interceptors(settings.otel_enabled),
        **({"runtime": runtime} if runtime else {}),
    )


def activity_methods(instances: Sequence[object]) -> list[object]:
    """Every @activity.defn method of the given activity class instances."""
    methods = []
    for instance in instances:
        for name in dir(type(instance)):
            attr = getattr(instance, name)
            if callable(attr) and hasattr(attr, "__temporal_activity_definition"):
                methods.append(attr)
    return methods


def build_device_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    executor: concurrent.futures.ThreadPoolExecutor,
) -> Worker:
    """A worker with activities only: a weighing station's PC hosting its devices'
    activities on the station's task queue (no workflow code runs there)."""
    return Worker(
        client,
        task_queue=task_queue,
        activities=activity_methods(activities),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        interceptors=[KeepAlive()],
    )


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    executor: concurrent.futures.ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activity_methods(activities),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        interceptors=[KeepAlive()],
        # A crashed worker's sticky queue would hold the batch ~10 s by default.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
    )
