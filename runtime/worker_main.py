"""`ebr worker`: connect to Temporal and run the batch worker until told to stop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal

from temporalio.client import Client

from runtime.worker import build_worker, production_activities
from settings.config import Settings

log = logging.getLogger("ebr.worker")


async def _connect(settings: Settings, timeout_s: float = 60.0) -> Client:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await Client.connect(
                settings.temporal_target, namespace=settings.temporal_namespace
            )
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _run(settings: Settings) -> None:
    activities = production_activities(settings)
    client = await _connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings.task_queue, activities, executor)
        async with worker:
            log.warning("worker polling %s on %s", settings.task_queue, settings.temporal_target)
            await stop.wait()


def run_worker(settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_run(settings))
    return 0
