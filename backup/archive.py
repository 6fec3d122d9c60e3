"""`ebr backup` and `ebr restore`: the record store, the embedded Temporal server's state,
the signed PDFs, the keys and every other file under the data directory, in one folder
with a manifest.

Order matters while batches run: Temporal's state is copied first, the record store
second. The record store is then never behind the engine: whatever Temporal had done is
in the record copy, and what the engine repeats after a restore (activities it had not yet
seen finish) is absorbed by the record store's idempotent writes. Files come last, so
every PDF the record store names is in the copy.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect

from backup.databases import (
    copy_sqlite,
    dump_postgres,
    restore_postgres,
    sqlite_path,
)
from backup.errors import BackupError
from backup.manifest import MANIFEST, Manifest, file_entry
from settings.config import Settings
from store.db import make_engine

TEMPORAL_DB = "temporal.db"
RECORDS_SQLITE = "records/ebr.db"
RECORDS_PG = "records/ebr.pgdump"
FILES = "files"
# Under the data directory but not part of a backup: live database files (copied through
# their backup APIs instead), logs, and the run directory's process state.
SKIP_DIRS = {"log", "run"}
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class RestoreReport:
    files: int
    audit_entries: int
    audit_intact: bool
    audit_message: str
    pdfs_verified: int
    pdf_problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.audit_intact and not self.pdf_problems


def _skipped(rel: Path, live_databases: set[Path]) -> bool:
    if rel.parts and rel.parts[0] in SKIP_DIRS:
        return True
    if rel in live_databases:
        return True
    # Half-written files of an atomic write (".name.xxx.tmp") are never the real thing.
    return rel.name.startswith(".") or rel.name.endswith(".tmp")


def _live_databases(settings: Settings, var: Path) -> set[Path]:
    found = set()
    candidates = [var / TEMPORAL_DB]
    record_db = sqlite_path(settings.resolved_database_url)
    if record_db is not None:
        candidates.append(record_db.resolve())
    for db in candidates:
        for suffix in SQLITE_SUFFIXES:
            path = Path(f"{db}{suffix}")
            if path.is_relative_to(var):
                found.add(path.relative_to(var))
    return found


def _empty_target(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(
            f"{dest} exists and is not empty; give a new folder (a backup never overwrites "
            "another)."
        )


def create_backup(settings: Settings, dest: Path) -> Manifest:
    """Write a complete backup to `dest` (a new or empty folder); all or nothing."""
    var = settings.var_dir.resolve()
    dest = dest.resolve()
    if not var.is_dir():
        raise BackupError(f"The data directory {var} does not exist: is EBR_VAR_DIR right?")
    if dest.is_relative_to(var):
        raise BackupError(f"{dest} is inside the data directory {var}; back up elsewhere.")
    _empty_target(dest)
    work = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        temporal = settings.embedded_temporal and (var / TEMPORAL_DB).exists()
        if temporal:
            (work / "temporal").mkdir()
            copy_sqlite(var / TEMPORAL_DB, work / "temporal" / TEMPORAL_DB)
        (work / "records").mkdir()
        record_db = sqlite_path(settings.resolved_database_url)
        if record_db is not None:
            copy_sqlite(record_db, work / RECORDS_SQLITE)
            database = "sqlite"
        else:
            dump_postgres(settings.resolved_database_url, work / RECORDS_PG)
            database = "postgresql"
        live = _live_databases(settings, var)
        for path in sorted(var.rglob("*")):
            rel = path.relative_to(var)
            if path.is_file() and not _skipped(rel, live):
                target = work / FILES / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            database=database,
            temporal=temporal,
            files={
                p.relative_to(work).as_posix(): file_entry(p)
                for p in sorted(work.rglob("*")) if p.is_file()
            },
        )
        manifest.write(work)
        if dest.exists():
            dest.rmdir()
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def restore_backup(settings: Settings, source: Path) -> RestoreReport:
    """Restore `source` into the (empty) data directory and database the settings name,
    then verify the audit chain of what was restored."""
    source = source.resolve()
    manifest = Manifest.read(source)
    manifest.check(source)
    var = settings.var_dir.resolve()
    _empty_target(var)
    record_db = sqlite_path(settings.resolved_database_url)
    wanted = "sqlite" if record_db is not None else "postgresql"
    if manifest.database != wanted:
        raise BackupError(
            f"The backup holds a {manifest.database} record store but EBR_DATABASE_URL names "
            f"{wanted}; restore into the same kind of database."
        )
    if manifest.temporal and not settings.embedded_temporal:
        raise BackupError(
            "The backup holds the embedded Temporal server's state, but EBR_TEMPORAL_ADDRESS "
            "points at a cluster; unset it to restore the one-machine stack (a cluster is "
            "backed up with its own database's tools)."
        )
    if record_db is not None and record_db.exists():
        raise BackupError(f"{record_db} already exists; restore into an empty place.")
    if record_db is None:
        engine = make_engine(settings.resolved_database_url)
        try:
            if inspect(engine).get_table_names():
                raise BackupError(
                    "The PostgreSQL database named by EBR_DATABASE_URL has tables; restore "
                    "into a new, empty database."
                )
        finally:
            engine.dispose()

    var.mkdir(parents=True, exist_ok=True)
    files = 0
    for name in manifest.files:
        if name.startswith(f"{FILES}/"):
            target = var / name.removeprefix(f"{FILES}/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)
            files += 1
    if manifest.temporal:
        shutil.copy2(source / "temporal" / TEMPORAL_DB, var / TEMPORAL_DB)
    if record_db is not None:
        record_db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / RECORDS_SQLITE, record_db)
    else:
        restore_postgres(settings.resolved_database_url, source / RECORDS_PG)
    return _verify_restored(settings, files)


def _verify_restored(settings: Settings, files: int) -> RestoreReport:
    from sqlmodel import Session

    from reports.verify import verify_pdf
    from store.audit import verify_chain

    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            check = verify_chain(session)
    finally:
        engine.dispose()
    verified, problems = 0, []
    root = settings.pki_dir / "root.pem"
    # A site with a timestamp authority (PAdES B-T/B-LTA) trusts its root for timestamps.
    tsa_roots = [p for p in (settings.pki_dir / "tsa-root.pem", settings.tsa_root) if p]
    tsa_roots = [p for p in tsa_roots if p.exists()]
    for pdf in sorted(settings.reports_dir.glob("**/*.pdf")):
        result = verify_pdf(pdf.read_bytes(), root, tsa_roots=tsa_roots)
        if result.ok:
            verified += 1
        else:
            problems.append(f"{pdf.name}: {'; '.join(result.problems) or 'not valid'}")
    return RestoreReport(
        files, check.entries, check.ok, check.describe(), verified, tuple(problems)
    )


__all__ = ["MANIFEST", "RestoreReport", "create_backup", "restore_backup"]
