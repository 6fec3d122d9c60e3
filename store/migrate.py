"""Schema versions of the record store: Alembic revisions under store/migrations.

`upgrade` is what `ebr db upgrade`, `ebr up` and (when configured) the API and worker
run at start; `require_current` is what they run instead when they must not change the
schema themselves.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text, types
from sqlalchemy.engine import Engine
from sqlmodel.sql.sqltypes import UTCDateTime

from store.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("ebr.store")
# Any constant shared by every ebr process: concurrent starts on one PostgreSQL database
# (API and workers) migrate one after the other.
_PG_MIGRATION_LOCK = 7354011


class SchemaNotCurrent(Exception):
    """The database is not at the schema revision this code needs."""


# Alembic hooks (store/migrations/env.py) -------------------------------------------


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Write the project's column types (SQLModel's AutoString and UTCDateTime, the WMS's
    # DecimalText) as the plain SQLAlchemy types they store, so a revision reads on its
    # own and never imports application code that may change after it was written.
    if type_ != "type" or not isinstance(obj, types.TypeDecorator):
        return False
    impl = obj.impl_instance
    if isinstance(impl, types.DateTime):
        return f"sa.DateTime(timezone={impl.timezone})"
    if isinstance(impl, types.String):
        return f"sa.String(length={impl.length})" if impl.length else "sa.String()"
    return False


def compare_type(context_: Any, inspected: Any, metadata_column: Any,
                 inspected_type: types.TypeEngine[Any],
                 metadata_type: types.TypeEngine[Any]) -> bool | None:
    # SQLite keeps no time zone flag: DATETIME reflects as naive whatever was declared.
    if (context_.dialect.name == "sqlite" and isinstance(metadata_type, UTCDateTime)
            and isinstance(inspected_type, types.DateTime)):
        return False
    return None  # Alembic's own comparison


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "store/migrations has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for an empty database (or one made before Alembic)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, target: str = "head") -> None:
    """Apply every revision up to `target` in one transaction, serialised across processes
    (an advisory lock on PostgreSQL, the write lock on SQLite)."""
    cfg = alembic_config()
    with engine.begin() as conn, _quiet_alembic():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
        after = MigrationContext.configure(conn).get_current_revision()
    if before != after:
        log.warning("record store schema upgraded from %s to %s", before or "empty", after)


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    # Alembic announces its dialect at INFO on every start; only a real upgrade is news.
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def require_current(engine: Engine) -> None:
    """Refuse to run against a database whose schema is not this code's."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaNotCurrent(
            f"The database is at schema revision {current}, which this version of ebr does "
            f"not know (newest here: {head}); it was upgraded by a newer ebr. Run that "
            "version, or restore a backup made before the upgrade."
        )
    raise SchemaNotCurrent(
        f"The database is at schema revision {current or 'none (empty)'}, this version of "
        f"ebr needs {head}. Run `ebr db upgrade` (or set EBR_DB_AUTO_UPGRADE=true to "
        "upgrade at start)."
    )


def prepare(engine: Engine, auto_upgrade: bool) -> None:
    """At process start: upgrade, or check that someone did."""
    if auto_upgrade:
        upgrade(engine)
    else:
        require_current(engine)


def autogenerate_revision(message: str) -> Path:
    """Write a new revision with what the models have and the newest revision lacks,
    compared on a scratch SQLite database. Read it before committing."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        try:
            upgrade(engine)
            cfg = alembic_config()
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                script = command.revision(cfg, message=message, autogenerate=True)
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    _tidy(path)
    return path


def _tidy(path: Path) -> None:
    # Alembic writes its own layout; ruff (a test dependency) makes it the project's.
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():
        subprocess.run([str(ruff), "format", "-q", str(path)], check=False, timeout=60)
        subprocess.run([str(ruff), "check", "-q", "--fix", str(path)], check=False, timeout=60)
