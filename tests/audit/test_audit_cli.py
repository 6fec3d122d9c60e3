"""`ebr audit verify`: exit 0 on an intact trail, 1 naming the first altered entry."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from signatures.identity import UserDirectory
from store.db import create_schema, make_engine
from tests.databases import disable_audit_guard, record_store_url

runner = CliRunner()


def _store(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    engine = make_engine(record_store_url(tmp_path))
    create_schema(engine)
    users = UserDirectory(engine)
    for name in ("ada", "bob", "cy"):
        users.ensure_user(name, name.title(), "a-good-pass-1", ["operator"], "test")
    return engine


def test_intact_trail_verifies_with_exit_0(tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 3 entries" in result.output


def test_altered_entry_is_named_with_exit_1(tmp_path, monkeypatch):
    engine = _store(tmp_path, monkeypatch)
    with engine.begin() as conn:
        disable_audit_guard(conn)
        conn.exec_driver_sql("UPDATE audit_events SET subject = 'user/mallory' WHERE id = 2")
    engine.dispose()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry id=2 (key user/bob/created)" in result.output


def test_audit_verify_has_help():
    result = runner.invoke(app, ["audit", "verify", "--help"])
    assert result.exit_code == 0 and "first entry" in result.output
