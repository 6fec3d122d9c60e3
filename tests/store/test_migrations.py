"""The Alembic migrations produce exactly the schema of the models, guard triggers
included, on SQLite and PostgreSQL; databases made before migrations are adopted; the
API and worker refuse a schema they were not built for; `ebr db` says where it stands."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cli.main import app
from signatures.identity import UserDirectory
from store.db import make_engine, metadata
from store.migrate import (
    SchemaNotCurrent,
    alembic_config,
    compare_type,
    current_revision,
    head_revision,
    prepare,
    upgrade,
)

APPEND_ONLY = ("audit_events", "signatures", "password_history")
SQLITE_GUARDS = {f"{t}_no_{what}" for t in APPEND_ONLY for what in ("update", "delete")} | {
    "users_no_delete"}
POSTGRES_GUARDS = {f"{t}_no_{what}" for t in APPEND_ONLY for what in ("change", "truncate")} | {
    "users_no_delete", "users_no_truncate"}


@pytest.fixture(params=[
    pytest.param("sqlite", marks=pytest.mark.sqlite_only("its postgresql case ran already")),
    "postgresql",
])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (no tables at all) of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("empty_pg_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": compare_type})
        return compare_metadata(context, metadata)


def guard_triggers(engine: Engine) -> set[str]:
    sql = ("SELECT name FROM sqlite_master WHERE type = 'trigger'"
           if engine.dialect.name == "sqlite"
           else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(text(sql))}


def expected_guards(engine: Engine) -> set[str]:
    return SQLITE_GUARDS if engine.dialect.name == "sqlite" else POSTGRES_GUARDS


def test_upgrading_an_empty_database_gives_exactly_the_models_schema(empty_db):
    upgrade(empty_db)
    differences = schema_differences(empty_db)
    assert differences == [], (
        "The models and the migrations disagree; add a revision with "
        f"`ebr db revision -m '...'` and read it: {differences}")
    assert guard_triggers(empty_db) == expected_guards(empty_db)
    assert current_revision(empty_db) == head_revision()


def test_downgrading_to_nothing_and_upgrading_again_round_trips(empty_db):
    upgrade(empty_db)
    upgrade_cfg = alembic_config()
    from alembic import command

    with empty_db.begin() as conn:
        upgrade_cfg.attributes["connection"] = conn
        command.downgrade(upgrade_cfg, "base")
    assert set(inspect(empty_db).get_table_names()) == {"alembic_version"}
    assert guard_triggers(empty_db) == set()
    upgrade(empty_db)
    assert schema_differences(empty_db) == []
    assert guard_triggers(empty_db) == expected_guards(empty_db)


def test_processes_starting_together_migrate_one_after_the_other(empty_db):
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: upgrade(empty_db), range(4)))
    assert current_revision(empty_db) == head_revision()
    assert schema_differences(empty_db) == []


def test_database_made_before_migrations_is_adopted_without_losing_rows(empty_db):
    # What ebr made at start before migrations existed: every table (create_all), without
    # the columns added during 0.1, and no alembic_version.
    metadata.create_all(empty_db)
    with empty_db.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_batches_area")
        conn.exec_driver_sql("ALTER TABLE batches DROP COLUMN area")
        conn.exec_driver_sql("ALTER TABLE sessions DROP COLUMN first_signed_at")
        for column in ("failed_attempts", "locked_until", "password_changed_at",
                       "must_change_password", "tokens_valid_from_ns", "deactivated_at",
                       "areas"):
            conn.exec_driver_sql(f"ALTER TABLE users DROP COLUMN {column}")
        conn.exec_driver_sql(
            "INSERT INTO users (username, full_name, password_hash, roles, active, created_at) "
            "VALUES ('old', 'Old User', 'x', 'operator', true, '2026-01-01 00:00:00+00:00')")
    upgrade(empty_db)
    old = UserDirectory(empty_db).get("old")
    assert old is not None and old.failed_attempts == 0 and not old.must_change_password
    assert old.created_at.tzinfo is not None and old.tokens_valid_from_ns == 0
    assert old.areas == ""
    assert current_revision(empty_db) == head_revision()
    assert guard_triggers(empty_db) == expected_guards(empty_db)
    assert schema_differences(empty_db) == []


def test_a_schema_behind_the_code_is_refused_with_the_command_that_fixes_it(empty_db):
    with pytest.raises(SchemaNotCurrent, match="ebr db upgrade"):
        prepare(empty_db, auto_upgrade=False)
    prepare(empty_db, auto_upgrade=True)
    prepare(empty_db, auto_upgrade=False)  # now current: accepted


def test_a_schema_from_a_newer_ebr_is_refused(empty_db):
    upgrade(empty_db)
    with empty_db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    with pytest.raises(SchemaNotCurrent, match="newer ebr"):
        prepare(empty_db, auto_upgrade=False)


def test_production_defaults_to_checking_and_development_to_upgrading():
    from settings.config import Settings

    assert Settings(_env_file=None, env="production").auto_upgrade_schema is False
    assert Settings(_env_file=None, env="development").auto_upgrade_schema is True
    assert Settings(_env_file=None, env="production", db_auto_upgrade=True).auto_upgrade_schema


runner = CliRunner()


def test_db_commands_report_upgrade_and_current_revision(tmp_path, monkeypatch):
    monkeypatch.setenv("EBR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    behind = runner.invoke(app, ["db", "current"])
    assert behind.exit_code == 1 and "ebr db upgrade" in behind.output
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0 and f"upgraded from empty to {head_revision()}" in first.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "already at" in again.output
    now = runner.invoke(app, ["db", "current"])
    assert now.exit_code == 0 and now.output.strip() == f"{head_revision()} (head)"


def test_db_upgrade_of_an_unreachable_database_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EBR_DATABASE_URL", "postgresql+psycopg://ebr:secret@127.0.0.1:1/ebr")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "cannot use the database at postgresql+psycopg://ebr:***@127.0.0.1:1/ebr" in (
        result.output)
    assert "secret" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["api", "worker"])
def test_production_api_and_worker_refuse_to_start_on_an_old_schema(command, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("EBR_ENV", "production")
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("EBR_DATABASE_URL", f"sqlite:///{tmp_path / 'old.db'}")
    result = runner.invoke(app, [command])
    assert result.exit_code == 1, result.output
    assert f"ebr {command}: The database is at schema revision none (empty)" in result.output
    assert "Run `ebr db upgrade`" in result.output
