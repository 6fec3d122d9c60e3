"""`ebr backup` / `ebr restore` on real SQLite and PostgreSQL record stores: complete,
all-or-nothing, refusing damaged backups and non-empty targets, verified after restore."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from backup.archive import create_backup, restore_backup
from backup.errors import BackupError
from backup.manifest import Manifest
from cli.main import app
from settings.config import Settings
from store import audit
from store.db import create_schema, make_engine
from store.models import AuditEvent

# Each case pins its own databases (SQLite sites, fresh PostgreSQL ones for the PostgreSQL
# cases), so the PostgreSQL pass of `make test` has nothing to add.
pytestmark = pytest.mark.sqlite_only("pins its own SQLite and PostgreSQL databases")


def _settings(var: Path, **extra: object) -> Settings:
    return Settings(var_dir=var, env="test", _env_file=None, **extra)  # type: ignore[arg-type]


def _populate(settings: Settings, entries: int = 25) -> None:
    """A record store with an audit chain, a Temporal-like SQLite file, keys and a PDF."""
    var = settings.var_dir
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    with Session(engine) as session:
        for i in range(entries):
            audit.append(session, key=f"k-{i}", actor="qa", action="test.event",
                         subject=f"batch/B-{i}", detail={"n": str(i)})
        session.commit()
    engine.dispose()
    temporal = sqlite3.connect(var / "temporal.db")
    temporal.execute("PRAGMA journal_mode=WAL")
    temporal.execute("CREATE TABLE executions (id TEXT PRIMARY KEY, state BLOB)")
    temporal.execute("INSERT INTO executions VALUES ('B-1', x'0102')")
    temporal.commit()
    temporal.close()
    (var / "pki").mkdir()
    (var / "pki" / "signing.p12").write_bytes(b"\x30\x82key material")
    (var / "secrets.json").write_text('{"jwt_secret": "s"}')
    (var / "reports").mkdir()
    (var / "reports" / "B-1.notes.txt").write_text("not a pdf, still kept")
    (var / "log").mkdir()
    (var / "log" / "api.log").write_text("noise")
    (var / "reports" / ".B-2.pdf.abc.tmp").write_text("half written")


def _count(settings: Settings) -> int:
    engine = make_engine(settings.resolved_database_url)
    with Session(engine) as session:
        n = session.exec(select(func.count()).select_from(AuditEvent)).one()
    engine.dispose()
    return n


@pytest.fixture
def site(tmp_path: Path) -> Settings:
    settings = _settings(tmp_path / "site" / "var")
    settings.var_dir.mkdir(parents=True)
    _populate(settings)
    return settings


def test_a_restore_brings_back_every_record_key_and_file_and_verifies_the_chain(site, tmp_path):
    manifest = create_backup(site, tmp_path / "backup")
    assert manifest.database == "sqlite" and manifest.temporal
    target = _settings(tmp_path / "new" / "var")
    report = restore_backup(target, tmp_path / "backup")
    assert report.ok and report.audit_intact and report.audit_entries == 25
    var = target.var_dir
    assert (var / "pki" / "signing.p12").read_bytes() == b"\x30\x82key material"
    assert (var / "secrets.json").exists()
    assert (var / "reports" / "B-1.notes.txt").exists()
    assert sqlite3.connect(var / "temporal.db").execute(
        "SELECT id FROM executions").fetchall() == [("B-1",)]
    assert _count(target) == 25


def test_logs_run_state_and_half_written_files_are_not_backed_up(site, tmp_path):
    manifest = create_backup(site, tmp_path / "backup")
    names = set(manifest.files)
    assert "files/reports/B-1.notes.txt" in names
    assert not any(n.startswith("files/log/") for n in names)
    assert not any(n.endswith(".tmp") for n in names)
    # The live databases travel as snapshots, not as raw (possibly mid-write) files.
    assert "files/ebr.db" not in names and "files/temporal.db" not in names
    assert {"records/ebr.db", "temporal/temporal.db"} <= names


def test_a_backup_never_overwrites_another_or_lands_inside_the_data_directory(site, tmp_path):
    create_backup(site, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        create_backup(site, tmp_path / "backup")
    with pytest.raises(BackupError, match="inside the data directory"):
        create_backup(site, site.var_dir / "backups" / "b1")


def test_a_damaged_backup_is_refused_naming_the_file_and_nothing_is_restored(site, tmp_path):
    create_backup(site, tmp_path / "backup")
    key = tmp_path / "backup" / "files" / "pki" / "signing.p12"
    key.write_bytes(b"\x30\x82key materiaL")
    target = _settings(tmp_path / "new" / "var")
    with pytest.raises(BackupError, match=r"changed since the backup: files/pki/signing\.p12"):
        restore_backup(target, tmp_path / "backup")
    assert not target.var_dir.exists()


def test_a_missing_file_is_refused(site, tmp_path):
    create_backup(site, tmp_path / "backup")
    (tmp_path / "backup" / "records" / "ebr.db").unlink()
    with pytest.raises(BackupError, match=r"missing: records/ebr\.db"):
        restore_backup(_settings(tmp_path / "new" / "var"), tmp_path / "backup")


def test_a_restore_never_mixes_into_an_existing_site(site, tmp_path):
    create_backup(site, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(site, tmp_path / "backup")


def test_a_chain_broken_before_the_backup_is_reported_after_the_restore(site, tmp_path):
    db = sqlite3.connect(site.var_dir / "ebr.db")
    db.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_events'"
    ).fetchall():
        db.execute(f'DROP TRIGGER "{name}"')
    db.execute("UPDATE audit_events SET actor='intruder' WHERE key='k-7'")
    db.commit()
    db.close()
    create_backup(site, tmp_path / "backup")
    report = restore_backup(_settings(tmp_path / "new" / "var"), tmp_path / "backup")
    assert not report.ok
    assert "k-7" in report.audit_message


def test_a_failed_backup_leaves_no_folder_behind(site, tmp_path):
    (site.var_dir / "ebr.db").rename(site.var_dir / "elsewhere.db")
    with pytest.raises(BackupError, match="does not exist"):
        create_backup(site, tmp_path / "backup")
    assert not (tmp_path / "backup").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".backup")]


def test_the_manifest_lists_sizes_and_hashes(site, tmp_path):
    create_backup(site, tmp_path / "backup")
    manifest = Manifest.read(tmp_path / "backup")
    entry = manifest.files["files/secrets.json"]
    assert entry.size == len('{"jwt_secret": "s"}') and len(entry.sha256) == 64


def test_the_cli_backs_up_and_restores_with_clear_messages(site, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("EBR_VAR_DIR", str(site.var_dir))
    done = runner.invoke(app, ["backup", str(tmp_path / "backup")])
    assert done.exit_code == 0, done.output
    assert "Backed up" in done.output and "Temporal state: yes" in done.output
    again = runner.invoke(app, ["backup", str(tmp_path / "backup")])
    assert again.exit_code == 1 and "not empty" in again.output
    assert "Traceback" not in again.output
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path / "new" / "var"))
    restored = runner.invoke(app, ["restore", str(tmp_path / "backup")])
    assert restored.exit_code == 0, restored.output
    assert "Audit trail intact: 25 entries" in restored.output


# --- PostgreSQL --------------------------------------------------------------------

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_databases() -> Iterator[list[str]]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({exc})")
    names = [f"ebr_backup_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield [f"postgresql+psycopg://postgres@127.0.0.1:5432/{n}" for n in names]
    for name in names:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def test_postgresql_is_backed_up_with_pg_dump_and_restored_into_an_empty_database(
    tmp_path, pg_databases
):
    source_url, target_url = pg_databases
    site = _settings(tmp_path / "site", database_url=source_url)
    site.var_dir.mkdir()
    _populate(site, entries=12)
    manifest = create_backup(site, tmp_path / "backup")
    assert manifest.database == "postgresql"
    assert "records/ebr.pgdump" in manifest.files

    with pytest.raises(BackupError, match="has tables"):
        restore_backup(_settings(tmp_path / "busy", database_url=source_url),
                       tmp_path / "backup")
    target = _settings(tmp_path / "new", database_url=target_url)
    report = restore_backup(target, tmp_path / "backup")
    assert report.ok and report.audit_entries == 12
    assert _count(target) == 12
    # The append-only triggers came back with the schema.
    engine = make_engine(target_url)
    with pytest.raises(Exception, match=r"append-only|not allowed|refuse"), \
            engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events")
    engine.dispose()


def test_a_sqlite_backup_cannot_be_restored_into_postgresql(site, tmp_path, pg_databases):
    create_backup(site, tmp_path / "backup")
    target = _settings(tmp_path / "new", database_url=pg_databases[1])
    with pytest.raises(BackupError, match="sqlite record store"):
        restore_backup(target, tmp_path / "backup")
