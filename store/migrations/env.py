"""Alembic environment of the record store.

`store.migrate` runs it with a connection it already holds (inside the transaction that
serialises concurrent starts); the `alembic` command line runs it from `alembic.ini`
with the URL of `-x url=...` or, failing that, the settings' database URL.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from store.db import make_engine, metadata
from store.migrate import compare_type, render_item

config = context.config


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_item=render_item,
        compare_type=compare_type,
        # SQLite alters most things by copying the table; autogenerate writes batch ops.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url is None:
        from settings.config import Settings

        url = Settings().resolved_database_url
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("ebr migrations run online only: give a database (-x url=...).")
run_migrations()
