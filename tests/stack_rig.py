"""The real stack as `ebr up` runs it (Temporal dev server with its database file,
simulated devices, worker and API each in its own process), on free loopback ports in
the test's own data directory."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.processes import ProcessGroup
from runtime.stack import start_stack
from settings.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, ProcessGroup]]:
    # The run's record store and backend stay (tests/conftest.py: a PostgreSQL database per
    # test in the PostgreSQL pass; never set in the SQLite pass).
    kept = ("EBR_DATABASE_URL", "EBR_TEST_DATABASE")
    for key in [k for k in os.environ if k.startswith("EBR_") and k not in kept]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("EBR_API_PORT", str(free_port()))
    monkeypatch.setenv("EBR_TEMPORAL_PORT", str(free_port()))
    monkeypatch.setenv("EBR_TEMPORAL_UI_PORT", str(free_port()))
    settings = Settings(_env_file=None)
    group = start_stack(settings)
    yield settings, group
    group.stop()
