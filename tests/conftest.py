"""Shared fixtures: a real local Temporal server (the pip-installed binary, no download)
and a fresh SQLite record store per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from runtime.temporal_server import temporal_binary
from store.db import create_schema, make_engine


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'ebr.db'}")
    create_schema(engine)
    return engine
