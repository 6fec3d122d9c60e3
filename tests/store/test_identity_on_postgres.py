"""Lockout, revocation and user administration on PostgreSQL: the same rules as SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from signatures.identity import AccountLocked, AuthenticationFailed, IdentityPolicy, UserDirectory
from signatures.sessions import SessionRegistry
from signatures.tokens import TokenError, read_token
from store.audit import AuditFilter, search, verify_chain

SECRET = "p" * 48


@pytest.fixture
def users(fresh_pg_engine):
    directory = UserDirectory(fresh_pg_engine, IdentityPolicy(lockout_threshold=2))
    directory.ensure_user("olivia", "Olivia Operator", "operator-pass-1", ["operator"], "test")
    directory.ensure_user("adrian", "Adrian Admin", "admin-pass-123", ["admin"], "test")
    return directory


def test_lockout_is_stored_and_audited_on_postgres(fresh_pg_engine, users):
    with pytest.raises(AuthenticationFailed):
        users.authenticate("olivia", "wrong-pass-1")
    with pytest.raises(AccountLocked):
        users.authenticate("olivia", "wrong-pass-1")
    assert users.get("olivia").locked_until.utcoffset().total_seconds() == 0
    with Session(fresh_pg_engine) as session:
        actions = [e.action for e in search(session, AuditFilter(subject="user/olivia"), 10)]
        assert actions == ["user.created", "auth.failed", "auth.failed", "user.locked"]
        assert verify_chain(session).ok


def test_password_change_revokes_tokens_on_postgres(fresh_pg_engine, users):
    registry = SessionRegistry(fresh_pg_engine, idle_timeout_s=600)
    claims = read_token(SECRET, registry.open(SECRET, users.get("olivia"), 900))
    registry.check(claims, users.get("olivia"))
    users.change_password("olivia", "operator-pass-1", "a-new-pass-22")
    with pytest.raises(TokenError, match="log in again"):
        registry.check(claims, users.get("olivia"))


def test_users_are_never_deleted_on_postgres(fresh_pg_engine, users):
    users.deactivate(users.get("adrian"), "olivia", "left")
    with pytest.raises(DBAPIError, match="never deleted"), fresh_pg_engine.begin() as c:
        c.exec_driver_sql("DELETE FROM users WHERE username = 'olivia'")
    assert users.get("olivia").active is False
