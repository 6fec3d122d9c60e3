"""A bare worker process for the resume-after-kill baseline: BareBatch and its activity,
default SDK settings, nothing of ebr.

    python -m bench.bare_worker 127.0.0.1:7233 bare-queue
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare_workflow import BareBatch, bare_write


async def main(target: str, queue: str) -> None:
    client = await Client.connect(target)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(client, task_queue=queue, workflows=[BareBatch],
                          activities=[bare_write], activity_executor=executor):
            print("polling", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
