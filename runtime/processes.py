"""Start, watch and stop the child processes of `ebr up`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path | None = None


@dataclass
class ProcessGroup:
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], log: Path | None = None) -> Child:
        out = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = log.open("ab")
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if out else None)
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def adopt(self, name: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
        self.children.append(Child(name, process, log))

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop in reverse start order: API and worker before the server they need."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
        self.children.clear()


def ebr_command(*args: str) -> list[str]:
    """Run a CLI sub-command with the same interpreter, whatever PATH says."""
    return [sys.executable, "-m", "cli.main", *args]


def wait_until(check, timeout_s: float, what: str, group: ProcessGroup | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if group is not None and (dead := group.first_exited()) is not None:
            where = f"; see {dead.log}" if dead.log else ""
            raise RuntimeError(f"{dead.name} exited with code {dead.process.returncode}{where}")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout_s:.0f} s")


def child_env(**overrides: str) -> dict[str, str]:
    return {**os.environ, **overrides}
