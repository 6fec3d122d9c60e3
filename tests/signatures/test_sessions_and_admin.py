"""Session revocation (logout, password change, role removal, deactivation), idle
timeout, and audited user administration."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from signatures.identity import IdentityError, NotPermitted, UserDirectory
from signatures.sessions import SessionRegistry
from signatures.tokens import TokenError, issue_token, read_token
from store.models import AuditEvent

# A later signature of its session: the password alone (the first needs the user id).
LATER = {"username": None, "first_in_session": False}

SECRET = "s" * 48


@pytest.fixture
def users(engine):
    directory = UserDirectory(engine)
    directory.ensure_user("olivia", "Olivia Operator", "operator-pass-1", ["operator"], "test")
    directory.ensure_user("adrian", "Adrian Admin", "admin-pass-123", ["admin"], "test")
    directory.ensure_user("quinn", "Quinn Quality", "quality-pass-1", ["qa"], "test")
    return directory


@pytest.fixture
def registry(engine):
    return SessionRegistry(engine, idle_timeout_s=600)


def _open(registry, users, name="olivia"):
    token = registry.open(SECRET, users.get(name), 900)
    return read_token(SECRET, token)


def test_open_session_is_accepted(registry, users):
    registry.check(_open(registry, users), users.get("olivia"))


def test_logout_revokes_that_token_only(registry, users):
    first, second = _open(registry, users), _open(registry, users)
    registry.logout(first)
    with pytest.raises(TokenError, match="logged out"):
        registry.check(first, users.get("olivia"))
    registry.check(second, users.get("olivia"))


def test_token_from_elsewhere_is_registered_on_first_use_and_can_be_logged_out(registry, users):
    claims = read_token(SECRET, issue_token(SECRET, "olivia", 900))
    registry.check(claims, users.get("olivia"))
    registry.logout(claims)
    with pytest.raises(TokenError, match="logged out"):
        registry.check(claims, users.get("olivia"))


def test_password_change_revokes_earlier_tokens_but_not_the_next_login(registry, users):
    before = _open(registry, users)
    users.change_password("olivia", "operator-pass-1", "a-new-pass-22")
    with pytest.raises(TokenError, match="password or roles changed"):
        registry.check(before, users.get("olivia"))
    registry.check(_open(registry, users), users.get("olivia"))


def test_role_removal_revokes_tokens_and_role_addition_does_not(registry, users):
    admin = users.get("adrian")
    claims = _open(registry, users)
    users.set_roles(admin, "olivia", ["operator", "supervisor"], "covers the night shift")
    registry.check(claims, users.get("olivia"))
    users.set_roles(admin, "olivia", ["operator"], "night shift over")
    with pytest.raises(TokenError, match="log in again"):
        registry.check(claims, users.get("olivia"))


def test_deactivation_revokes_tokens_and_refuses_login(registry, users):
    claims = _open(registry, users)
    users.deactivate(users.get("adrian"), "olivia", "left the company")
    with pytest.raises(TokenError):
        registry.check(claims, users.get("olivia"))
    with pytest.raises(IdentityError, match="wrong"):
        users.authenticate("olivia", "operator-pass-1")


def test_idle_session_is_closed(engine, users):
    registry = SessionRegistry(engine, idle_timeout_s=1)
    claims = _open(registry, users)
    time.sleep(1.2)
    with pytest.raises(TokenError, match="idle"):
        registry.check(claims, users.get("olivia"))
    with pytest.raises(TokenError, match="idle timeout"):
        registry.check(claims, users.get("olivia"))


def test_a_used_session_stays_open_past_the_idle_time(engine, users):
    registry = SessionRegistry(engine, idle_timeout_s=1)
    claims = _open(registry, users)
    for _ in range(4):
        time.sleep(0.4)
        registry.check(claims, users.get("olivia"))


def test_token_of_another_user_is_refused(registry, users):
    with pytest.raises(TokenError, match="does not belong"):
        registry.check(_open(registry, users), users.get("quinn"))


# --- administration ---------------------------------------------------------


def _audit(engine, action):
    with Session(engine) as session:
        return session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_admin_creates_a_user_and_it_is_audited(engine, users):
    users.create_user(users.get("adrian"), "nina", "Nina New", ["operator"], "temp-pass-123",
                      "new hire")
    assert users.get("nina").must_change_password
    [event] = [e for e in _audit(engine, "user.created") if e.subject == "user/nina"]
    assert event.actor == "adrian"


def test_a_deactivated_users_id_is_never_reused(users):
    admin = users.get("adrian")
    users.deactivate(admin, "olivia", "left")
    with pytest.raises(IdentityError, match="never reused"):
        users.create_user(admin, "olivia", "Other Olivia", ["operator"], "temp-pass-123",
                          "rehire")


def test_users_cannot_be_deleted_from_the_database(engine, users):
    # SQLite's trigger aborts (IntegrityError), PostgreSQL's raises insufficient_privilege.
    with pytest.raises(DBAPIError, match="never deleted"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM users WHERE username = 'olivia'")


def test_role_change_records_old_and_new_roles_and_the_reason(engine, users):
    import json

    users.set_roles(users.get("adrian"), "olivia", ["operator", "qa"], "trained for QA")
    [event] = _audit(engine, "user.roles_changed")
    assert json.loads(event.detail_json) == {
        "old": "operator", "new": "operator,qa", "reason": "trained for QA",
    }


def test_changes_need_a_reason(users):
    with pytest.raises(IdentityError, match="reason"):
        users.deactivate(users.get("adrian"), "olivia", "  ")


def test_only_an_admin_administers_users(users):
    with pytest.raises(NotPermitted, match="admin role"):
        users.deactivate(users.get("quinn"), "olivia", "no reason to")


def test_an_admin_cannot_change_their_own_roles(users):
    with pytest.raises(NotPermitted, match="own roles"):
        users.set_roles(users.get("adrian"), "adrian", ["admin", "qa"], "want QA rights")


def test_being_admin_grants_no_qa_signature(users):
    with pytest.raises(NotPermitted, match="qa role"):
        users.sign(users.get("adrian"), "admin-pass-123", "released", "qa", **LATER)
