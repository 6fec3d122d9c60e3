"""`ebr report verify FILE [--trust root.pem] [--db]`: what an auditor and QA see on a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from reports.pki import ensure_signing_identity
from reports.publish import sha256_hex
from reports.render import render_batch_record
from reports.sign import sign_pdf
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from tests.databases import record_store_url
from tests.sample_plan import PLAN

BATCH = "B-CLI-1"
runner = CliRunner()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, BatchRecordStore]:
    """A site's var dir with a batch and its signed, published eBMR; returns (pdf, root, store)."""
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("EBR_ENV", "test")
    engine = make_engine(record_store_url(tmp_path))
    create_schema(engine)
    store = BatchRecordStore(engine)
    store.create_batch(BATCH, PLAN, {"scale": "SCALE-01"}, "supervisor")
    identity = ensure_signing_identity(tmp_path / "pki", b"cli test")
    pdf = sign_pdf(render_batch_record(store.assemble_record(BATCH), "").pdf, identity)
    path = tmp_path / f"{BATCH}.pdf"
    path.write_bytes(pdf)
    store.attach_report(BATCH, str(path), sha256_hex(pdf), 3)
    return path, identity.root_cert, store


def test_offline_verification_needs_only_the_pdf_and_the_root(site) -> None:  # type: ignore[no-untyped-def]
    pdf, root, _ = site
    result = runner.invoke(app, ["report", "verify", str(pdf), "--trust", str(root)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("VERIFIED")
    assert "database:" not in result.output


def test_with_the_database_the_record_and_audit_chain_are_checked(site) -> None:  # type: ignore[no-untyped-def]
    pdf, root, _ = site
    result = runner.invoke(app, ["report", "verify", str(pdf), "--trust", str(root), "--db"])
    assert result.exit_code == 0, result.output
    assert f"database: batch {BATCH}; embedded record matches the database" in result.output
    assert "published copy: yes" in result.output
    assert "Audit trail intact" in result.output


def test_database_that_disagrees_with_the_signed_record_fails(site) -> None:  # type: ignore[no-untyped-def]
    pdf, root, store = site
    with store.engine.begin() as connection:
        # What a database administrator editing the table behind ebr's back would do.
        connection.execute(
            text("UPDATE batches SET product_name = 'Renamed' WHERE batch_id = :b"), {"b": BATCH}
        )
    result = runner.invoke(app, ["report", "verify", str(pdf), "--trust", str(root), "--db"])
    assert result.exit_code == 1
    assert "DIFFERS FROM the database" in result.output
    assert "difference: batch.product_name: signed 'Test blend', database 'Renamed'" in (
        result.output
    )
    assert result.output.rstrip().endswith("NOT VERIFIED")


def test_a_changed_byte_is_not_verified(site) -> None:  # type: ignore[no-untyped-def]
    pdf, root, _ = site
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x20
    pdf.write_bytes(bytes(data))
    result = runner.invoke(app, ["report", "verify", str(pdf), "--trust", str(root)])
    assert result.exit_code == 1
    assert "problem:" in result.output
