"""Rows 1 (under load), 2, 4 and 9: ebr under 50 running batches, resuming after kill -9
of the worker, and the processes' peak memory — each beside the bare engine doing the
same number of updates and activities in the same run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from temporalio.client import Client, WorkflowHandle

from bench.bare_workflow import BareBatch
from bench.harness import Timer, percentile


async def drive_for(window_s: float, drivers: list[Callable[[], Awaitable[bool]]]) -> list[float]:
    """Run every driver in a loop until the window closes; each call is one phase."""
    latencies: list[float] = []
    deadline = time.perf_counter() + window_s

    async def loop(step: Callable[[], Awaitable[bool]]) -> None:
        while time.perf_counter() < deadline:
            with Timer() as t:
                more = await step()
            latencies.append(t.elapsed)
            if not more:
                return

    await asyncio.gather(*(loop(d) for d in drivers))
    return latencies


def load_result(latencies: list[float], window_s: float) -> dict[str, float]:
    return {
        "phases_per_s": len(latencies) / window_s,
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
    }


async def ebr_batches(
    http: httpx.AsyncClient, supervisor: dict[str, str], operator: dict[str, str],
    password: str, recipe_id: str, count: int,
) -> list[Callable[[], Awaitable[bool]]]:
    """Start `count` batches and do their one weighing untimed; return one driver each."""
    drivers = []
    for _ in range(count):
        batch_id = f"LOAD-{uuid.uuid4().hex[:8]}"
        r = await http.post("/api/v1/batches", headers=supervisor, json={
            "batch_id": batch_id, "recipe_id": recipe_id, "version": "1.0.0"})
        r.raise_for_status()
        weigh_id, *steps = r.json()["steps"]
        base = f"/api/v1/batches/{batch_id}/steps"
        (await http.post(f"{base}/{weigh_id}/weigh", headers=operator)).raise_for_status()
        (await http.post(f"{base}/{weigh_id}/complete", json={"password": password},
                         headers=operator)).raise_for_status()
        pending = list(steps)

        async def step(base: str = base, pending: list[str] = pending) -> bool:
            r = await http.post(f"{base}/{pending.pop(0)}/complete",
                                json={"password": password}, headers=operator)
            r.raise_for_status()
            return bool(pending)

        drivers.append(step)
    return drivers


async def bare_batches(
    client: Client, queue: str, steps: int, count: int, password: str,
) -> list[Callable[[], Awaitable[bool]]]:
    hasher = PasswordHasher()
    password_hash = hasher.hash(password)
    drivers = []
    for _ in range(count):
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            BareBatch.run, steps, id=f"bare-load-{uuid.uuid4().hex[:8]}", task_queue=queue)
        done = [0]

        async def step(handle: WorkflowHandle[Any, Any] = handle, done: list[int] = done) -> bool:
            await asyncio.to_thread(hasher.verify, password_hash, password)
            await handle.execute_update(BareBatch.step, done[0])
            done[0] += 1
            return done[0] < steps

        drivers.append(step)
    return drivers


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- 4: resume after kill -9 ------------------------------------------------------------------


def spawn_bare_worker(target: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "bench.bare_worker", target, queue],
                            stdout=out, stderr=subprocess.STDOUT)


def kill9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


async def until_ok(call: Callable[[], Awaitable[httpx.Response]], limit_s: float) -> None:
    """Retry a signed request (same idempotency key) until it is applied."""
    deadline = time.perf_counter() + limit_s
    while True:
        r = await call()
        if r.status_code < 400:
            return
        if r.status_code != 503 or time.perf_counter() > deadline:
            r.raise_for_status()
        await asyncio.sleep(0.1)
