"""Consistent copies of the databases while the stack runs.

SQLite files (the record store and the embedded Temporal server's state) are copied with
SQLite's online backup API: one read transaction, so the copy is a single point in time
even while the server writes (WAL). PostgreSQL goes through pg_dump/pg_restore, which
take a consistent snapshot too.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from backup.errors import BackupError

DUMP_TIMEOUT_S = 3600


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("An in-memory SQLite record store cannot be backed up.")
    return Path(parsed.database)


def copy_sqlite(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"{source} does not exist: is EBR_VAR_DIR right?")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # every page in one step: a single consistent snapshot
    finally:
        dst.close()
        src.close()


def _libpq_args(url: str) -> tuple[list[str], dict[str, str]]:
    parsed = make_url(url)
    args = []
    if parsed.host:
        args += ["--host", parsed.host]
    if parsed.port:
        args += ["--port", str(parsed.port)]
    if parsed.username:
        args += ["--username", parsed.username]
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    if not parsed.database:
        raise BackupError(f"The database URL {parsed!r} names no database.")
    return [*args, "--dbname", parsed.database], env


def _run(tool: str, args: list[str], env: dict[str, str]) -> None:
    import os

    executable = shutil.which(tool)
    if executable is None:
        raise BackupError(
            f"`{tool}` is not installed: install the PostgreSQL client tools of your "
            "server's major version (Debian: postgresql-client)."
        )
    try:
        done = subprocess.run(
            [executable, *args], env={**os.environ, **env}, capture_output=True, text=True,
            timeout=DUMP_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"`{tool}` did not finish within {DUMP_TIMEOUT_S} s.") from exc
    if done.returncode != 0:
        raise BackupError(f"`{tool}` failed: {done.stderr.strip()[:500]}")


def dump_postgres(url: str, target: Path) -> None:
    args, env = _libpq_args(url)
    _run("pg_dump", [*args, "--format=custom", "--no-owner", "--file", str(target)], env)


def restore_postgres(url: str, source: Path) -> None:
    args, env = _libpq_args(url)
    _run("pg_restore", [*args, "--no-owner", "--exit-on-error", str(source)], env)
