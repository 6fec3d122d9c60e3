"""`ebr up`: the whole one-machine stack as child processes, stopped together.

Temporal dev server (state in var/temporal.db), simulated devices, one worker,
the API and pages. Each is its own process, as in a real deployment, so a crash
of one is visible and the others keep their state.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import httpx

from devices.register import RegisterError
from runtime.demo_site import write_demo_register
from runtime.equipment import needs_simulators
from runtime.processes import ProcessGroup, ebr_command, wait_until
from runtime.seed import DEMO_USERS, seed_demo
from runtime.temporal_server import TemporalServerError, port_open, start_dev_server
from settings.config import Settings
from store.db import make_engine
from store.migrate import upgrade

# Bounds on start-up, not expectations: ~5 s on an idle 2-core machine, but a busy one
# (a CI runner, a PC also running a browser) can take minutes to import and start four
# Python processes at once. A child that dies is reported at once, whatever the bound.
STARTUP_TIMEOUT_S = 180


def api_healthy(settings: Settings) -> bool:
    try:
        return httpx.get(f"{settings.api_url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_stack(settings: Settings) -> ProcessGroup:
    """Start every process the settings ask for; on any failure stop what started."""
    if api_healthy(settings) or port_open(settings.api_host, settings.api_port):
        raise RuntimeError(
            f"{settings.api_url} is already in use: is another `ebr up` running? "
            "Stop it or set EBR_API_PORT."
        )
    if settings.env != "production" and not (settings.var_dir / "equipment.yaml").exists():
        write_demo_register(settings)  # cleaned "now": the examples' hold times are met
    try:
        simulated = needs_simulators(settings)
    except RegisterError as exc:
        raise RuntimeError(str(exc)) from None
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.secrets  # noqa: B018 - generate var/secrets.json once, before the children race
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)  # the schema migrations, before any child process starts
    if settings.env != "production":
        seed_demo(engine, settings.default_area)
    engine.dispose()

    group = ProcessGroup()
    logs = settings.var_dir / "log"
    try:
        if settings.embedded_temporal:
            server = start_dev_server(settings, logs / "temporal.log")
            group.adopt("temporal", server, logs / "temporal.log")
        if simulated:
            state = settings.devices_state_file
            state.unlink(missing_ok=True)
            group.spawn("devices", ebr_command("devices", "simulate"), logs / "devices.log")
            wait_until(state.exists, STARTUP_TIMEOUT_S, "simulated devices", group)
        group.spawn("worker", ebr_command("worker"), logs / "worker.log")
        if settings.erp_url:  # ERP confirmations: the outbox relay (docs/wms-qms.md)
            group.spawn("erp-relay", ebr_command("erp", "relay"), logs / "erp-relay.log")
        group.spawn("api", ebr_command("api"), logs / "api.log")
        wait_until(lambda: api_healthy(settings), STARTUP_TIMEOUT_S, "the API", group)
    except (RuntimeError, TemporalServerError):
        group.stop()
        raise
    return group


def banner(settings: Settings) -> str:
    lines = [
        "",
        "ebr is running. Ctrl-C stops everything it started; data stays in "
        f"{settings.var_dir.resolve()}, logs in {(settings.var_dir / 'log').resolve()}.",
        f"  Web pages and API   {settings.api_url}      (OpenAPI: {settings.api_url}/docs)",
    ]
    if settings.embedded_temporal:
        lines.append(f"  Temporal Web UI     http://127.0.0.1:{settings.temporal_ui_port}")
    lines.append(f"  Temporal frontend   {settings.temporal_target}")
    lines.append("  Demo users (user id / password):")
    lines += [f"    {u.role:<11} {u.username:<11} {u.password}" for u in DEMO_USERS]
    lines.append("  Try it: in another terminal run `.venv/bin/ebr demo`.")
    return "\n".join(lines)


def run_foreground(settings: Settings) -> int:
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        group = start_stack(settings)
    except (RuntimeError, TemporalServerError) as exc:
        print(f"ebr up: {exc}", file=sys.stderr)
        return 1
    print(banner(settings), flush=True)
    code = 0
    while not stop.wait(0.5):
        dead = group.first_exited()
        if dead is not None:
            where = f" (see {dead.log})" if dead.log else ""
            print(f"ebr up: {dead.name} exited with code {dead.process.returncode}{where}; "
                  "stopping the stack.", file=sys.stderr)
            code = 1
            break
    print("Stopping ebr…", flush=True)
    group.stop()
    return code
