"""Shared fixtures: a real local Temporal server (the pip-installed binary, no download)
and a fresh SQLite record store per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from runtime.temporal_server import temporal_binary
from store.db import create_schema, make_engine
from tests.stack_rig import stack  # noqa: F401  (the real-stack fixture, for every test)


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


# A fresh PostgreSQL database per test on the local server (127.0.0.1:5432, trust auth),
# dropped after: tamper tests leave broken chains behind, so no two tests share one.
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def fresh_pg_engine() -> Iterator[Engine]:
    psycopg = pytest.importorskip("psycopg")
    name = f"ebr_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({exc})")
    admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
