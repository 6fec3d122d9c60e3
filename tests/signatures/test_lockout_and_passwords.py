"""Lockout after repeated failures, password expiry, and administrator-set passwords."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from signatures.identity import (
    AccountLocked,
    AuthenticationFailed,
    IdentityPolicy,
    PasswordChangeRequired,
    UserDirectory,
)
from store.audit import verify_chain
from store.models import AuditEvent

# A later signature of its session: the password alone (the first needs the user id).
LATER = {"username": None, "first_in_session": False}

PASSWORD = "operator-pass-1"


@pytest.fixture
def users(engine):
    directory = UserDirectory(engine, IdentityPolicy(lockout_threshold=3, lockout_duration_s=600))
    directory.ensure_user("olivia", "Olivia Operator", PASSWORD, ["operator"], "test")
    directory.ensure_user("adrian", "Adrian Admin", "admin-pass-123", ["admin"], "test")
    return directory


def _actions(engine, subject: str) -> list[str]:
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.subject == subject)
        return [e.action for e in session.exec(query.order_by(col(AuditEvent.id)))]


def test_third_wrong_password_locks_the_account_and_says_until_when(engine, users):
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="User id or password is wrong"):
            users.authenticate("olivia", "wrong-pass-1")
    before = datetime.now(UTC)
    with pytest.raises(AccountLocked, match=r"locked .* until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"):
        users.authenticate("olivia", "wrong-pass-1")
    locked_until = users.get("olivia").locked_until
    assert timedelta(seconds=590) < locked_until - before < timedelta(seconds=610)


def test_locked_account_refuses_even_the_right_password(users):
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            users.authenticate("olivia", "wrong-pass-1")
    with pytest.raises(AccountLocked):
        users.authenticate("olivia", PASSWORD)


def test_failed_signing_attempts_count_towards_the_lockout(users):
    olivia = users.get("olivia")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            users.sign(olivia, "wrong-pass-1", "performed", "operator", **LATER)
    with pytest.raises(AccountLocked):
        users.sign(olivia, "wrong-pass-1", "performed", "operator", **LATER)


def test_failures_and_the_lockout_are_audited_in_the_chain(engine, users):
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            users.authenticate("olivia", "wrong-pass-1", purpose="signature")
    assert _actions(engine, "user/olivia") == [
        "user.created", "auth.failed", "auth.failed", "auth.failed", "user.locked",
    ]
    with Session(engine) as session:
        failed = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.failed")).first()
        assert json.loads(failed.detail_json)["purpose"] == "signature"
        assert verify_chain(session).ok


def test_a_good_password_resets_the_failure_count(users):
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            users.authenticate("olivia", "wrong-pass-1")
    users.authenticate("olivia", PASSWORD)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="wrong"):
            users.authenticate("olivia", "wrong-pass-1")
    assert users.get("olivia").locked_until is None


def test_lockout_ends_when_its_time_is_up(engine, users):
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            users.authenticate("olivia", "wrong-pass-1")
    past = (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None).isoformat(" ")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE users SET locked_until = '{past}' WHERE username='olivia'")
    assert users.authenticate("olivia", PASSWORD).username == "olivia"


def test_an_administrator_can_unlock_with_a_reason(engine, users):
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            users.authenticate("olivia", "wrong-pass-1")
    users.unlock(users.get("adrian"), "olivia", "identity confirmed by phone")
    assert users.authenticate("olivia", PASSWORD).locked_until is None
    assert _actions(engine, "user/olivia")[-1] == "user.unlocked"


def test_unknown_user_gets_the_same_message_as_a_wrong_password(users):
    with pytest.raises(AuthenticationFailed, match="User id or password is wrong"):
        users.authenticate("nobody", "whatever-pass-1")


def test_expired_password_allows_login_but_not_signing(engine, users):
    users.policy = IdentityPolicy(password_max_age_days=30)
    old = (datetime.now(UTC) - timedelta(days=31)).replace(tzinfo=None).isoformat(" ")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE users SET password_changed_at = '{old}' WHERE username='olivia'"
        )
    olivia = users.authenticate("olivia", PASSWORD)
    with pytest.raises(PasswordChangeRequired, match=r"expired on .*change it"):
        users.sign(olivia, PASSWORD, "performed", "operator", **LATER)
    users.change_password("olivia", PASSWORD, "a-fresh-pass-2")
    intent = users.sign(olivia, "a-fresh-pass-2", "performed", "operator", **LATER)
    assert intent.meaning == "performed"


def test_password_set_by_an_administrator_must_be_changed_before_signing(users):
    admin = users.get("adrian")
    users.create_user(admin, "nina", "Nina New", ["operator"], "temporary-pass-1", "new hire")
    nina = users.authenticate("nina", "temporary-pass-1")
    with pytest.raises(PasswordChangeRequired, match="set by an administrator"):
        users.sign(nina, "temporary-pass-1", "performed", "operator", **LATER)
    users.change_password("nina", "temporary-pass-1", "only-nina-knows-3")
    intent = users.sign(nina, "only-nina-knows-3", "performed", "operator", **LATER)
    assert intent.signer.username == "nina"


def test_administrator_reset_also_forces_a_change(users):
    users.reset_password(users.get("adrian"), "olivia", "reset-by-admin-4", "forgotten")
    olivia = users.authenticate("olivia", "reset-by-admin-4")
    with pytest.raises(PasswordChangeRequired):
        users.sign(olivia, "reset-by-admin-4", "performed", "operator", **LATER)


def test_new_password_must_differ_and_follow_the_policy(users):
    from signatures.identity import IdentityError
    from signatures.passwords import PasswordPolicyError

    with pytest.raises(IdentityError, match="must differ"):
        users.change_password("olivia", PASSWORD, PASSWORD)
    with pytest.raises(PasswordPolicyError, match="at least 12"):
        users.change_password("olivia", PASSWORD, "short-1")
