"""The record-store backend of a test run: SQLite files, or fresh PostgreSQL databases.

`EBR_TEST_DATABASE=postgresql` selects PostgreSQL on the local server (127.0.0.1:5432,
trust authentication). The run migrates one template database once, then every test gets
its own database copied from it (tamper tests leave broken chains behind, so no two tests
share one), dropped after the test; the template is dropped at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Connection

from store.db import make_engine
from store.migrate import upgrade

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
RUN_ID = uuid.uuid4().hex[:8]


def backend() -> str:
    name = os.environ.get("EBR_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
    if name not in ("sqlite", "postgresql"):
        raise SystemExit(f"EBR_TEST_DATABASE must be sqlite or postgresql, not {name!r}")
    return name


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
        return f"no PostgreSQL server on 127.0.0.1:5432 ({first})"
    return None


class PostgresDatabases:
    """Creates and drops this run's databases through one admin connection."""

    def __init__(self) -> None:
        import psycopg

        self._admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
        self._count = 0
        self._template: str | None = None

    def _name(self, tag: str) -> str:
        self._count += 1
        return f"ebr_test_{RUN_ID}_{tag}{self._count}"

    def template(self) -> str:
        """A database migrated to the newest revision, made once per run."""
        if self._template is None:
            name = self._name("tmpl")
            self._admin.execute(f'CREATE DATABASE "{name}"')
            engine = make_engine(f"{SERVER_URL}/{name}")
            try:
                upgrade(engine)
            finally:
                engine.dispose()  # a template must have no connections when copied
            self._template = name
        return self._template

    @contextmanager
    def database(self, migrated: bool = True) -> Iterator[str]:
        """A fresh database (copied from the template, or empty), dropped on exit."""
        name = self._name("t")
        source = f' TEMPLATE "{self.template()}"' if migrated else ""
        self._admin.execute(f'CREATE DATABASE "{name}"{source}')
        try:
            yield f"{SERVER_URL}/{name}"
        finally:
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._template is not None:
            self._admin.execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self._admin.close()


class SqliteTemplate:
    """One migrated SQLite file per run, copied for each test instead of re-migrating."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "template.db"
        self._made = False

    def copy_to(self, target: Path) -> str:
        if not self._made:
            engine = make_engine(f"sqlite:///{self._path}")
            try:
                upgrade(engine)
            finally:
                engine.dispose()  # closing the last connection checkpoints the WAL
            self._made = True
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path, target)
        return f"sqlite:///{target}"


def record_store_url(var_dir: Path) -> str:
    """The record store `Settings()` finds for EBR_VAR_DIR=var_dir in this run: the test's
    PostgreSQL database in the PostgreSQL pass, else the SQLite file under var_dir."""
    return os.environ.get("EBR_DATABASE_URL") or f"sqlite:///{var_dir / 'ebr.db'}"


def disable_audit_guard(conn: Connection) -> None:
    """What an attacker with owner rights on the database does before editing the trail."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
