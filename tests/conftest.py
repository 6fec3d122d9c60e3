"""Shared fixtures: a real local Temporal server (the pip-installed binary, no download)
and a fresh record store per test, on SQLite or, with EBR_TEST_DATABASE=postgresql, on
a fresh PostgreSQL database (tests/databases.py).

The SQLite pass notes which tests opened a SQLite record store (in pytest's cache); the
PostgreSQL pass (`make test` runs both) runs exactly those again, each on its own
PostgreSQL database, which `Settings()` picks up through EBR_DATABASE_URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from temporalio.testing import WorkflowEnvironment

from runtime.temporal_server import temporal_binary
from store.db import create_schema, make_engine
from tests.databases import PostgresDatabases, SqliteTemplate, backend, postgres_unavailable
from tests.stack_rig import stack  # noqa: F401  (the real-stack fixture, for every test)

STORE_TESTS_KEY = "ebr/store_tests"


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _demo_password_hashes_once() -> Iterator[None]:
    """Hundreds of tests seed the demo users into a fresh store; each seed would pay
    seven argon2id hashes (~0.1 s each, much more on a loaded machine) for the same seven
    passwords. Those hashes are made once per run and reused (still real argon2id,
    verified as usual); any other password is hashed afresh."""
    import signatures.identity as identity
    from runtime.seed import DEMO_USERS

    demo = {u.password for u in DEMO_USERS}
    real = identity.hash_password
    made: dict[str, str] = {}

    def hash_password(password: str) -> str:
        if password not in demo:
            return real(password)
        if password not in made:
            made[password] = real(password)
        return made[password]

    identity.hash_password = hash_password
    yield
    identity.hash_password = real


# --- databases -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_test_databases() -> Iterator[PostgresDatabases]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    databases = PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(autouse=True)
def _record_store(request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """On PostgreSQL, this test's own database, also as EBR_DATABASE_URL for `Settings()`;
    on SQLite, never a developer's EBR_DATABASE_URL."""
    if backend() != "postgresql":
        monkeypatch.delenv("EBR_DATABASE_URL", raising=False)
        yield None
        return
    databases: PostgresDatabases = request.getfixturevalue("pg_test_databases")
    with databases.database() as url:
        monkeypatch.setenv("EBR_DATABASE_URL", url)
        yield url


@pytest.fixture
def database_url(tmp_path: Path, _record_store: str | None,
                 _sqlite_template: SqliteTemplate) -> str:
    """URL of this test's record store, at the newest schema revision."""
    return _record_store or _sqlite_template.copy_to(tmp_path / "ebr.db")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def fresh_pg_engine(pg_test_databases: PostgresDatabases) -> Iterator[Engine]:
    """A PostgreSQL record store whatever the run's backend: for PostgreSQL-only tests."""
    with pg_test_databases.database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def empty_pg_url(pg_test_databases: PostgresDatabases) -> Iterator[str]:
    """An empty PostgreSQL database (no tables): for migration tests."""
    with pg_test_databases.database(migrated=False) as url:
        yield url


# --- which tests use a record store ----------------------------------------------------

_running: str | None = None
_store_users: set[str] = set()


@event.listens_for(Engine, "engine_connect")
def _note_store_user(connection: Connection) -> None:
    if _running is not None and connection.dialect.name == "sqlite":
        _store_users.add(_running)


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    global _running
    _running = nodeid


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    global _running
    _running = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if backend() != "postgresql":
        return
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    known = cache.get(STORE_TESTS_KEY, None) if cache is not None else None
    selected, deselected = [], []
    for item in items:
        explicit = item.get_closest_marker("store") is not None
        if known is None or explicit or item.nodeid in known:
            selected.append(item)
        else:
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    reason = postgres_unavailable()
    for item in items:
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL pass: {reason}"))
        elif (mark := item.get_closest_marker("sqlite_only")) is not None:
            why = mark.args[0] if mark.args else "runs on SQLite only"
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL pass: {why}"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    cache = getattr(session.config, "cache", None)
    if backend() == "postgresql" or cache is None or not session.items:
        return
    ran = {item.nodeid for item in session.items}
    before = set(cache.get(STORE_TESTS_KEY, []))
    cache.set(STORE_TESTS_KEY, sorted((before - ran) | (_store_users & ran)))
