"""The backup drill on the real stack (issue 12): back up mid-batch while everything runs,
restore into an empty directory, verify the audit chain and the signed PDFs, and finish
the open batch on the restored stack."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from backup.archive import create_backup, restore_backup
from reports.verify import verify_pdf
from runtime.demo import Session, perform_steps, release_and_verify, run_demo, start_batch
from runtime.stack import start_stack
from settings.config import Settings
from tests.databases import backend
from tests.stack_rig import free_port

pytestmark = pytest.mark.slow


def quiet(*_: object) -> None:
    pass


def test_backup_mid_batch_restore_elsewhere_verify_and_finish_the_batch(
    stack, tmp_path, monkeypatch, request
):
    settings, group = stack
    released_pdf = run_demo(settings, say=quiet)
    start_batch(settings, "DRILL-2", say=quiet)
    assert perform_steps(settings, "DRILL-2", say=quiet, max_steps=2) == 2

    manifest = create_backup(settings, tmp_path / "backup")
    assert manifest.temporal
    assert any(name.endswith(released_pdf.name) for name in manifest.files)
    group.stop()
    # The old site is gone: nothing may still be read from its directory.
    settings.var_dir.rename(tmp_path / "lost-site")

    # A new machine: another directory, other ports, nothing of the old site running.
    restored_var = tmp_path / "restored" / "var"
    monkeypatch.setenv("EBR_VAR_DIR", str(restored_var))
    for key in ("EBR_API_PORT", "EBR_TEMPORAL_PORT", "EBR_TEMPORAL_UI_PORT"):
        monkeypatch.setenv(key, str(free_port()))
    cleanup = ExitStack()
    request.addfinalizer(cleanup.close)
    if backend() == "postgresql":
        # The new machine's database server: a new, empty database.
        databases = request.getfixturevalue("pg_test_databases")
        monkeypatch.setenv("EBR_DATABASE_URL",
                           cleanup.enter_context(databases.database(migrated=False)))
    restored = Settings(_env_file=None)
    report = restore_backup(restored, tmp_path / "backup")
    assert report.audit_intact, report.audit_message
    assert report.pdfs_verified == 1 and not report.pdf_problems

    group = start_stack(restored)
    try:
        # The batch goes on where it was: two steps done, the rest performed now.
        assert perform_steps(restored, "DRILL-2", say=quiet) >= 1
        pdf = release_and_verify(restored, "DRILL-2", say=quiet)
        assert pdf.is_relative_to(restored_var.resolve())

        qa = Session.login(restored.api_url, "qa")
        batch = qa.get("/api/v1/batches/DRILL-2")
        assert batch["execution"]["state"] == "released"
        first = released_pdf.stem
        old = qa.http.get(f"/api/v1/batches/{first}/report.pdf")
        assert old.status_code == 200, old.text
        assert verify_pdf(old.content, restored.pki_dir / "root.pem").ok
        chain = qa.get("/api/v1/audit/verify")
        assert chain["ok"] is True, chain
    finally:
        group.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{restored.api_url}/healthz", timeout=1)
