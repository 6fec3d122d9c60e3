"""`ebr backup DEST` and `ebr restore SRC` (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import load_settings


def backup(dest: Annotated[Path, typer.Argument(help="a new or empty folder")]) -> None:
    """Back up the record store, the embedded Temporal state, signed PDFs and keys.

    Safe while the stack runs: the databases are copied as consistent snapshots.
    """
    from backup.archive import create_backup
    from backup.errors import BackupError

    try:
        manifest = create_backup(load_settings(), dest)
    except BackupError as exc:
        typer.echo(f"ebr backup: {exc}", err=True)
        raise typer.Exit(1) from exc
    size = sum(entry.size for entry in manifest.files.values())
    typer.echo(f"Backed up {len(manifest.files)} files ({size / 1e6:.1f} MB, record store: "
               f"{manifest.database}, Temporal state: {'yes' if manifest.temporal else 'no'}) "
               f"to {dest.resolve()}")


def restore(
    source: Annotated[Path, typer.Argument(help="a folder written by `ebr backup`")],
) -> None:
    """Restore a backup into an empty EBR_VAR_DIR (and empty database), then verify the
    audit chain and every signed PDF. Exits 1 if anything does not verify."""
    from backup.archive import restore_backup
    from backup.errors import BackupError

    try:
        report = restore_backup(load_settings(), source)
    except BackupError as exc:
        typer.echo(f"ebr restore: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Restored {report.files} files. {report.audit_message}")
    typer.echo(f"Signed PDFs verified: {report.pdfs_verified}.")
    for problem in report.pdf_problems:
        typer.echo(f"  NOT VALID: {problem}", err=True)
    if not report.ok:
        raise typer.Exit(1)
