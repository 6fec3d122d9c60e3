"""`make bench`: ebr against the bare engines, side by side in one run.

    .venv/bin/python -m bench.run            # full sizes (about 10 minutes on 2 cores)
    .venv/bin/python -m bench.run --smoke    # tiny sizes, what CI runs so the harness works
    .venv/bin/python -m bench.run --rows 6a,6b,7 --out /tmp/b   # only some rows

Writes bench/results/latest.json and bench/results/latest.md. Method: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import os
import platform
import resource
import socket
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from temporalio.client import Client
from temporalio.worker import Worker

from bench import load
from bench.bare_workflow import BareBatch, bare_write
from bench.harness import Comparison, Series, Timer, interleave, percentile
from bench.recipes import instruction_recipe
from devices.scale_sim import ScaleControl

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    rounds: int
    steps: int  # operator steps per batch per round
    audit_appends: int
    audit_verify: int
    reads: int
    recipe_phases: int
    load_batches: int  # concurrent batches for rows 1 (under load), 2 and 9
    load_window_s: float  # how long each load round drives them
    render: tuple[tuple[int, int], ...] = ((3, 2),)  # row 5: (steps, rounds) per record size


SMOKE = Sizes(rounds=2, steps=3, audit_appends=50, audit_verify=500, reads=20, recipe_phases=50,
              load_batches=3, load_window_s=3.0)
FULL = Sizes(rounds=5, steps=50, audit_appends=2000, audit_verify=100_000, reads=500,
             recipe_phases=1000, load_batches=50, load_window_s=20.0,
             # A 500-step record takes about a minute of CPU per side: 3 rounds keep row 5
             # inside the 15-minute budget.
             render=((50, 5), (500, 3)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- 1 and 3: an e-signed step over HTTP vs a bare update; history events per step --------


class Stack:
    """The real stack (`ebr up` processes) on free ports in a temporary data directory."""

    def __init__(self, var_dir: Path) -> None:
        os.environ.update(
            EBR_VAR_DIR=str(var_dir),
            EBR_API_PORT=str(free_port()),
            EBR_TEMPORAL_PORT=str(free_port()),
            EBR_TEMPORAL_UI_PORT=str(free_port()),
            # The synthetic recipe's material is not stocked in the demo WMS.
            EBR_USE_WMS="false",
        )
        from runtime.stack import start_stack
        from settings.config import Settings

        self.settings = Settings(_env_file=None)
        self.group = start_stack(self.settings)

    def stop(self) -> None:
        self.group.stop()

    def pids(self) -> dict[str, int]:
        return {c.name: c.process.pid for c in self.group.children}

    def kill_and_restart_worker(self) -> None:
        """kill -9 the worker process and start a new one at once (what a supervisor
        such as systemd or Kubernetes does)."""
        from runtime.processes import ebr_command

        worker = next(c for c in self.group.children if c.name == "worker")
        load.kill9(worker.process)
        self.group.children.remove(worker)
        self.group.spawn("worker", ebr_command("worker"),
                         self.settings.var_dir / "log" / "worker.log")


async def login(http: httpx.AsyncClient, role: str) -> dict[str, str]:
    from runtime.seed import demo_user

    user = demo_user(role)
    r = await http.post("/api/v1/auth/login",
                        json={"username": user.username, "password": user.password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def prepare_recipe(http: httpx.AsyncClient, steps: int) -> str:
    from runtime.seed import demo_user

    text = instruction_recipe(steps, recipe_id="BENCH")
    author = await login(http, "author")
    (await http.post("/api/v1/recipes", json={"yaml": text}, headers=author)).raise_for_status()
    base = "/api/v1/recipes/BENCH/versions/1.0.0"
    await http.post(f"{base}/submit", json={}, headers=author)
    approver = await login(http, "approver")
    r = await http.post(f"{base}/approve", headers=approver, json={
        "username": "approver", "password": demo_user("approver").password})
    r.raise_for_status()
    return "BENCH"


async def bench_signed_steps(sizes: Sizes, var_dir: Path) -> list[Comparison]:
    from runtime.seed import demo_user

    stack = Stack(var_dir)
    try:
        settings = stack.settings
        client = await Client.connect(settings.temporal_target)
        hasher = PasswordHasher()
        password_hash = hasher.hash(demo_user("operator").password)
        queue = f"bare-{uuid.uuid4().hex[:6]}"
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        async with (
            httpx.AsyncClient(base_url=settings.api_url, timeout=120) as http,
            Worker(client, task_queue=queue, workflows=[BareBatch], activities=[bare_write],
                   activity_executor=executor),
        ):
            await prepare_recipe(http, sizes.steps)
            supervisor = await login(http, "supervisor")
            operator = await login(http, "operator")
            password = demo_user("operator").password
            devices = json.loads(settings.devices_state_file.read_text())
            scale = ScaleControl(devices["scale_control"])
            last_batch: list[str] = []

            async def ebr_round() -> dict[str, float]:
                batch_id = f"BENCH-{uuid.uuid4().hex[:8]}"
                r = await http.post("/api/v1/batches", headers=supervisor, json={
                    "batch_id": batch_id, "recipe_id": "BENCH", "version": "1.0.0"})
                r.raise_for_status()
                weigh_id, *step_ids = r.json()["steps"]
                # The one weighing is set up untimed: the scale reading is not what is measured.
                scale.set_weight("100.00")
                await http.post(f"/api/v1/batches/{batch_id}/steps/{weigh_id}/weigh",
                                headers=operator)
                # The session's first signature carries the user id; the timed ones below
                # are later signatures of the same session: the password alone.
                await http.post(f"/api/v1/batches/{batch_id}/steps/{weigh_id}/complete",
                                json={"username": "operator", "password": password},
                                headers=operator)
                latencies = []
                for step_id in step_ids:
                    with Timer() as t:
                        r = await http.post(
                            f"/api/v1/batches/{batch_id}/steps/{step_id}/complete",
                            json={"password": password}, headers=operator)
                    r.raise_for_status()
                    latencies.append(t.elapsed)
                history = await client.get_workflow_handle(batch_id).fetch_history()
                last_batch[:] = [batch_id]
                return {"p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99),
                        "events_per_step": len(history.events) / len(step_ids)}

            async def bare_round() -> dict[str, float]:
                wf_id = f"bare-{uuid.uuid4().hex[:8]}"
                handle = await client.start_workflow(BareBatch.run, sizes.steps, id=wf_id,
                                                     task_queue=queue)
                latencies = []
                for step in range(sizes.steps):
                    with Timer() as t:
                        await asyncio.to_thread(hasher.verify, password_hash, password)
                        await handle.execute_update(BareBatch.step, step)
                    latencies.append(t.elapsed)
                await handle.result()
                history = await handle.fetch_history()
                return {"p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99),
                        "events_per_step": len(history.events) / sizes.steps}

            ebr, bare = await interleave(sizes.rounds, ebr_round, bare_round,
                                         {"p50_s": "s", "p99_s": "s", "events_per_step": "events"})
            record = await (await http.get(f"/api/v1/batches/{last_batch[0]}/record",
                                           headers=operator)).aread()

            async def ebr_load() -> dict[str, float]:
                drivers = await load.ebr_batches(http, supervisor, operator, password, "BENCH",
                                                 sizes.load_batches)
                latencies = await load.drive_for(sizes.load_window_s, drivers)
                return load.load_result(latencies, sizes.load_window_s)

            async def bare_load() -> dict[str, float]:
                drivers = await load.bare_batches(client, queue, sizes.steps,
                                                  sizes.load_batches, password)
                latencies = await load.drive_for(sizes.load_window_s, drivers)
                return load.load_result(latencies, sizes.load_window_s)

            loaded_ebr, loaded_bare = await interleave(
                sizes.rounds, ebr_load, bare_load,
                {"phases_per_s": "phases/s", "p50_s": "s", "p99_s": "s"})
            rss = {name: load.peak_rss_mib(pid) for name, pid in stack.pids().items()
                   if name in ("worker", "api")}
            resume_ebr, resume_bare = await bench_resume(
                sizes, stack, client, http, supervisor, operator, password, var_dir)
        executor.shutdown()
        (var_dir / "bench-record.json").write_bytes(record)
        return [
            Comparison("1", "Operator 'complete step with e-signature' over HTTP, idle",
                       {k: ebr[k] for k in ("p50_s", "p99_s")},
                       {k: bare[k] for k in ("p50_s", "p99_s")},
                       "p50 <= 1.5x, p99 <= 2x",
                       "bare = argon2id verify + execute_update running one activity"),
            Comparison("3", "Temporal history events per step",
                       {"events_per_step": ebr["events_per_step"]},
                       {"events_per_step": bare["events_per_step"]}, "<= 1.5x"),
            Comparison("1", f"Operator 'complete step with e-signature' over HTTP, under "
                       f"{sizes.load_batches} running batches",
                       {k: loaded_ebr[k] for k in ("p50_s", "p99_s")},
                       {k: loaded_bare[k] for k in ("p50_s", "p99_s")},
                       "p50 <= 1.5x, p99 <= 2x",
                       f"{sizes.load_batches} batches driven at once for "
                       f"{sizes.load_window_s:g} s per round"),
            Comparison("2", f"Throughput, {sizes.load_batches} concurrent batches of a "
                       f"{sizes.steps + 1}-phase recipe through the HTTP API",
                       {"phases_per_s": loaded_ebr["phases_per_s"]},
                       {"phases_per_s": loaded_bare["phases_per_s"]}, ">= 0.5x",
                       "bare = the same number of workflows, updates, activities and "
                       "argon2id verifications"),
            Comparison("4", "Resume after kill -9 of the worker: kill until the next signed "
                       "step is applied", resume_ebr, resume_bare, "<= 4 s absolute",
                       "includes starting the new worker process; bare = BareBatch worker "
                       "process with default settings"),
            Comparison("9", f"Peak RSS under the {sizes.load_batches}-batch load",
                       {f"{name}_mib": Series("MiB", [value]) for name, value in rss.items()},
                       {}, "reported"),
        ]
    finally:
        stack.stop()


async def bench_resume(  # type: ignore[no-untyped-def]
    sizes: Sizes, stack: Stack, client: Client, http: httpx.AsyncClient,
    supervisor: dict[str, str], operator: dict[str, str], password: str, var_dir: Path,
):
    queue = f"bare-resume-{uuid.uuid4().hex[:6]}"
    log = var_dir / "bare-worker.log"
    bare_worker = [load.spawn_bare_worker(stack.settings.temporal_target, queue, log)]

    async def ebr_round() -> dict[str, float]:
        batch_id = f"RESUME-{uuid.uuid4().hex[:8]}"
        r = await http.post("/api/v1/batches", headers=supervisor, json={
            "batch_id": batch_id, "recipe_id": "BENCH", "version": "1.0.0"})
        r.raise_for_status()
        base = f"/api/v1/batches/{batch_id}/steps"
        weigh_id, first, second, *_ = r.json()["steps"]
        (await http.post(f"{base}/{weigh_id}/weigh", headers=operator)).raise_for_status()
        for step_id in (weigh_id, first):
            (await http.post(f"{base}/{step_id}/complete", json={"password": password},
                             headers=operator)).raise_for_status()
        key = {"Idempotency-Key": f"{batch_id}-{second}", **operator}
        with Timer() as t:
            stack.kill_and_restart_worker()
            # The tablet retries the same signed request (same key) while it gets 503.
            await load.until_ok(lambda: http.post(f"{base}/{second}/complete", headers=key,
                                                  json={"password": password}), 120)
        return {"resume_s": t.elapsed}

    async def bare_round() -> dict[str, float]:
        handle = await client.start_workflow(BareBatch.run, 3, id=f"bare-r-{uuid.uuid4().hex}",
                                             task_queue=queue)
        await handle.execute_update(BareBatch.step, 0)
        with Timer() as t:
            load.kill9(bare_worker[0])
            bare_worker[0] = load.spawn_bare_worker(stack.settings.temporal_target, queue, log)
            await handle.execute_update(BareBatch.step, 1)
        return {"resume_s": t.elapsed}

    try:
        return await interleave(sizes.rounds, ebr_round, bare_round, {"resume_s": "s"})
    finally:
        load.kill9(bare_worker[0])


# --- 5: eBMR render + sign vs bare WeasyPrint + bare pyHanko ----------------------------------


async def bench_render(sizes: Sizes, var_dir: Path) -> list[Comparison]:
    # Row 5 lives in bench/render.py: each measurement in its own process (peak RSS).
    from bench import render

    recipe = instruction_recipe(sizes.steps, recipe_id="BENCH")
    return await render.bench_render(list(sizes.render), var_dir, recipe)


# --- 6: audit trail appends and chain verification vs raw sqlite3 ---------------------------


def _raw_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
        db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, key TEXT UNIQUE, "
               "body TEXT, prev TEXT, hash TEXT)")
    return db


async def bench_audit(sizes: Sizes, var_dir: Path) -> list[Comparison]:
    from sqlmodel import Session

    from store import audit
    from store.db import create_schema, make_engine

    # Both sides: WAL, synchronous=NORMAL (ebr's engine pragmas), BEGIN IMMEDIATE, one
    # transaction per entry, and the hash to link to read inside that transaction (as any
    # appender sharing the chain with other processes must; the baseline used to keep it
    # in a variable). A commit survives a crash of the process, not a power cut.
    def ebr_appends(n: int, db_path: Path) -> float:
        engine = make_engine(f"sqlite:///{db_path}")
        create_schema(engine)
        with Timer() as t:
            for i in range(n):
                audit.record(engine, key=f"k{uuid.uuid4().hex}", actor="bench",
                             action="bench.append", subject=f"B/{i}", detail={"i": str(i)})
        engine.dispose()
        return t.elapsed

    def raw_appends(n: int, db_path: Path) -> float:
        db = _raw_db(db_path)
        with Timer() as t:
            for i in range(n):
                db.execute("BEGIN IMMEDIATE")
                last = db.execute("SELECT hash FROM t ORDER BY id DESC LIMIT 1").fetchone()
                prev = last[0] if last else "0" * 64
                body = json.dumps({"i": i, "actor": "bench", "subject": f"B/{i}"})
                digest = hashlib.sha256((prev + body).encode()).hexdigest()
                db.execute("INSERT INTO t (key, body, prev, hash) VALUES (?, ?, ?, ?)",
                           (uuid.uuid4().hex, body, prev, digest))
                db.execute("COMMIT")
        db.close()
        return t.elapsed

    async def ebr_append_round() -> dict[str, float]:
        path = var_dir / f"a-{uuid.uuid4().hex}.db"
        return {"appends_per_s": sizes.audit_appends / ebr_appends(sizes.audit_appends, path)}

    async def raw_append_round() -> dict[str, float]:
        path = var_dir / f"r-{uuid.uuid4().hex}.db"
        return {"appends_per_s": sizes.audit_appends / raw_appends(sizes.audit_appends, path)}

    appends = await interleave(sizes.rounds, ebr_append_round, raw_append_round,
                               {"appends_per_s": "appends/s"})

    # One long chain each, written in big transactions (the append rate is measured above).
    ebr_db, raw_db = var_dir / "chain-ebr.db", var_dir / "chain-raw.db"
    engine = make_engine(f"sqlite:///{ebr_db}")
    create_schema(engine)
    for start in range(0, sizes.audit_verify, 5000):
        with engine.begin() as conn:
            for i in range(start, min(start + 5000, sizes.audit_verify)):
                audit.append_on(conn, key=f"c{i}", actor="bench", action="bench.append",
                                subject=f"B/{i}", detail={"i": str(i)})
    db = _raw_db(raw_db)
    prev = "0" * 64
    db.execute("BEGIN")
    for i in range(sizes.audit_verify):
        body = json.dumps({"i": i, "actor": "bench", "subject": f"B/{i}"})
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        db.execute("INSERT INTO t (key, body, prev, hash) VALUES (?, ?, ?, ?)",
                   (f"c{i}", body, prev, digest))
        prev = digest
    db.execute("COMMIT")
    db.close()

    async def ebr_verify_round() -> dict[str, float]:
        with Timer() as t, Session(engine) as session:
            assert audit.verify_chain(session).ok
        return {"verify_s": t.elapsed}

    async def raw_verify_round() -> dict[str, float]:
        conn = _raw_db(raw_db)
        with Timer() as t:
            prev = "0" * 64
            for body, stored_prev, digest in conn.execute("SELECT body, prev, hash FROM t "
                                                          "ORDER BY id"):
                assert stored_prev == prev
                assert hashlib.sha256((prev + body).encode()).hexdigest() == digest
                prev = digest
        conn.close()
        return {"verify_s": t.elapsed}

    verify = await interleave(sizes.rounds, ebr_verify_round, raw_verify_round,
                              {"verify_s": "s"})
    engine.dispose()
    return [
        Comparison("6a", "Audit trail: appends/s (one transaction each, WAL, "
                   "synchronous=NORMAL both sides)", *appends, ">= 0.8x",
                   "both sides read the last hash inside the append's transaction"),
        Comparison("6b", f"Audit trail: verify a {sizes.audit_verify:,}-entry chain", *verify,
                   "<= 1.5x", "full target is 1,000,000 entries; time grows linearly"),
    ]


# --- 7: an authenticated read vs a bare JWT-only FastAPI endpoint ---------------------------


async def bench_reads(sizes: Sizes, var_dir: Path) -> Comparison:
    from fastapi import FastAPI, Header, HTTPException
    from jose import jwt

    from api.app import create_app
    from runtime.seed import seed_demo
    from settings.config import Settings
    from signatures.tokens import ALGORITHM, AUDIENCE, ISSUER

    settings = Settings(var_dir=var_dir / "reads", env="test", _env_file=None)
    app = create_app(settings)
    seed_demo(app.state.services.engine)
    secret = settings.secrets.jwt_secret
    bare = FastAPI()

    @bare.get("/me")
    def me(authorization: str = Header()) -> dict[str, str]:
        try:
            claims = jwt.decode(authorization.removeprefix("Bearer "), secret,
                                algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER)
        except Exception as exc:
            raise HTTPException(401) from exc
        return {"username": claims["sub"]}

    ebr_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    bare_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://t")
    headers = await login(ebr_http, "auditor")

    async def run(http: httpx.AsyncClient, path: str) -> dict[str, float]:
        latencies = []
        with Timer() as t:
            for _ in range(sizes.reads):
                with Timer() as one:
                    (await http.get(path, headers=headers)).raise_for_status()
                latencies.append(one.elapsed)
        return {"requests_per_s": sizes.reads / t.elapsed, "p99_s": percentile(latencies, 99)}

    ebr, bare_series = await interleave(
        sizes.rounds, lambda: run(ebr_http, "/api/v1/auth/me"), lambda: run(bare_http, "/me"),
        {"requests_per_s": "requests/s", "p99_s": "s"})
    await ebr_http.aclose()
    await bare_http.aclose()
    return Comparison("7", "Authenticated read (token + session + user lookup), in-process ASGI",
                      ebr, bare_series, ">= 0.5x requests/s",
                      "bare = FastAPI endpoint that only verifies the JWT")


# --- 8: recipe validate + compile ------------------------------------------------------------


async def bench_recipe(sizes: Sizes) -> Comparison:
    from recipes.compile import compile_plan
    from recipes.validate import load_recipe

    text = instruction_recipe(sizes.recipe_phases)
    series = Series("s")
    for _ in range(max(sizes.rounds, 5)):
        with Timer() as t:
            compile_plan(load_recipe(text, "bench.yaml"))
        series.samples.append(t.elapsed)
    return Comparison("8", f"Recipe validate + compile, {sizes.recipe_phases} phases",
                      {"seconds": series}, {}, "< 1 s")


# --- report ------------------------------------------------------------------------------------


def markdown(results: list[Comparison], meta: dict[str, Any]) -> str:
    lines = [f"Run {meta['started']} on {meta['machine']} ({meta['mode']}); medians of "
             f"{meta['rounds']} interleaved rounds, [min-max].", "",
             "| # | What | Metric | ebr | bare | ratio | target |", "|---|---|---|---|---|---|---|"]

    def fmt(s: dict[str, float] | None, unit: str) -> str:
        if not s:
            return "-"
        scale = 1000 if unit == "s" else 1
        u = "ms" if unit == "s" else unit
        return f"{s['median'] * scale:.3g} {u} [{s['min'] * scale:.3g}-{s['max'] * scale:.3g}]"

    for c in results:
        for metric, m in c.as_dict()["metrics"].items():
            ratio = f"{m['ratio']:.2f}x" if m["ratio"] is not None else "-"
            lines.append(f"| {c.id} | {c.what} | {metric} | {fmt(m['ebr'], m['unit'])} | "
                         f"{fmt(m['bare'], m['unit'])} | {ratio} | {c.target} |")
    return "\n".join(lines) + "\n"


# Which rows each group of measurements produces (a group runs whole or not at all).
GROUPS = {"stack": {"1", "2", "3", "4", "9"}, "render": {"5"}, "audit": {"6a", "6b"},
          "reads": {"7"}, "recipe": {"8"}}
ALL_ROWS = set().union(*GROUPS.values())


async def main(smoke: bool, out: Path, rows: set[str] | None = None) -> int:
    sizes = SMOKE if smoke else FULL
    started = datetime.now(UTC).isoformat(timespec="seconds")
    wanted = {g for g, ids in GROUPS.items() if rows is None or ids & rows}
    results: list[Comparison] = []
    with tempfile.TemporaryDirectory(prefix="ebr-bench-") as tmp:
        var_dir = Path(tmp)
        if "stack" in wanted:
            results += await bench_signed_steps(sizes, var_dir / "stack")
        if "render" in wanted:
            results += await bench_render(sizes, var_dir / "stack")
        if "audit" in wanted:
            results += await bench_audit(sizes, var_dir)
        if "reads" in wanted:
            results.append(await bench_reads(sizes, var_dir))
        if "recipe" in wanted:
            results.append(await bench_recipe(sizes))
    if rows is not None:
        results = [c for c in results if c.id in rows]
    meta = {
        "started": started,
        "mode": "smoke" if smoke else "full",
        "rounds": sizes.rounds,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "peak_rss_mib_bench_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(
        {"meta": meta, "results": [c.as_dict() for c in results]}, indent=2))
    (out / "latest.md").write_text(markdown(results, meta))
    print(markdown(results, meta))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rows", help="comma-separated row ids to run (e.g. 6a,6b,7); "
                        "default all. Pass --out too, or latest.* holds only these rows")
    args = parser.parse_args()
    rows = set(args.rows.split(",")) if args.rows else None
    if rows is not None and rows - ALL_ROWS:
        parser.error(f"unknown rows {sorted(rows - ALL_ROWS)}; known: {sorted(ALL_ROWS)}")
    raise SystemExit(asyncio.run(main(args.smoke, args.out, rows)))
