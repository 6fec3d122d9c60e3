"""The first signature of a session needs user id and password, later ones the password;
no reuse of recent passwords; administration audited with old value, new value, reason."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, col, select

from signatures.identity import (
    AuthenticationFailed,
    IdentityError,
    IdentityPolicy,
    NotPermitted,
    UserDirectory,
    UserIdRequired,
)
from signatures.sessions import SessionRegistry, bind_session
from signatures.tokens import read_token
from store.models import AuditEvent, SessionToken

SECRET = "s" * 48
PASSWORD = "operator-pass-1"


@pytest.fixture
def users(engine):
    directory = UserDirectory(engine, IdentityPolicy(password_history=2))
    directory.ensure_user("olivia", "Olivia Operator", PASSWORD, ["operator"], "test")
    directory.ensure_user("adrian", "Adrian Admin", "admin-pass-123", ["admin"], "test")
    return directory


@pytest.fixture
def registry(engine):
    return SessionRegistry(engine, idle_timeout_s=600)


def _session_user(registry, users, name="olivia"):
    """The user as a request sees them: bound to a freshly opened session."""
    claims = read_token(SECRET, registry.open(SECRET, users.get(name), 900))
    return bind_session(users.get(name), claims.jti), claims


def _sign(registry, users, user, username=None, password=PASSWORD):
    return registry.sign(users, user, password, "performed", "operator", username)


# --- first signature of a session ---------------------------------------------------


def test_first_signature_without_the_user_id_is_refused(registry, users):
    olivia, _ = _session_user(registry, users)
    with pytest.raises(UserIdRequired, match="first signature of a session needs your user id"):
        _sign(registry, users, olivia)


def test_first_signature_with_user_id_then_later_ones_with_the_password_only(
    engine, registry, users
):
    olivia, claims = _session_user(registry, users)
    assert registry.first_signature_pending(olivia)
    assert _sign(registry, users, olivia, username="olivia").signer.username == "olivia"
    assert not registry.first_signature_pending(olivia)
    with Session(engine) as session:
        assert session.get(SessionToken, claims.jti).first_signed_at is not None
    for _ in range(2):
        assert _sign(registry, users, olivia).meaning == "performed"
    # Giving the user id again later is fine too.
    assert _sign(registry, users, olivia, username="olivia").meaning == "performed"


def test_a_new_session_asks_for_the_user_id_again(registry, users):
    first, _ = _session_user(registry, users)
    _sign(registry, users, first, username="olivia")
    second, _ = _session_user(registry, users)
    with pytest.raises(UserIdRequired):
        _sign(registry, users, second)


def test_a_wrong_password_on_the_first_signature_leaves_it_first(registry, users):
    olivia, _ = _session_user(registry, users)
    with pytest.raises(AuthenticationFailed, match="wrong"):
        _sign(registry, users, olivia, username="olivia", password="wrong-pass-1")
    with pytest.raises(UserIdRequired):
        _sign(registry, users, olivia)


def test_another_users_id_is_refused_and_counted_as_a_failed_attempt(engine, registry, users):
    olivia, _ = _session_user(registry, users)
    with pytest.raises(AuthenticationFailed, match="'adrian' is not the signed-in user's"):
        _sign(registry, users, olivia, username="adrian")
    assert users.get("olivia").failed_attempts == 1
    with Session(engine) as session:
        failed = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.failed")).one()
    assert failed.subject == "user/olivia"
    assert json.loads(failed.detail_json)["purpose"] == "signature (another user id)"


def test_signing_without_a_session_is_refused(registry, users):
    with pytest.raises(NotPermitted, match="signed-in session"):
        _sign(registry, users, users.get("olivia"), username="olivia")


def test_the_directory_itself_demands_the_user_id_when_told_it_is_the_first(users):
    with pytest.raises(UserIdRequired):
        users.sign(users.get("olivia"), PASSWORD, "performed", "operator",
                   username=None, first_in_session=True)


# --- password history ------------------------------------------------------------------


def test_none_of_the_last_n_passwords_may_be_reused(users):
    users.change_password("olivia", PASSWORD, "second-pass-2")
    users.change_password("olivia", "second-pass-2", "third-pass-3")
    with pytest.raises(IdentityError, match="not among your last 2 passwords"):
        users.change_password("olivia", "third-pass-3", "second-pass-2")
    # Three changes back is outside a history of 2.
    users.change_password("olivia", "third-pass-3", PASSWORD)
    assert users.authenticate("olivia", PASSWORD).username == "olivia"


def test_history_of_zero_only_forbids_the_current_password(engine):
    users = UserDirectory(engine, IdentityPolicy(password_history=0))
    users.ensure_user("olivia", "Olivia Operator", PASSWORD, ["operator"], "test")
    users.change_password("olivia", PASSWORD, "second-pass-2")
    users.change_password("olivia", "second-pass-2", PASSWORD)


def test_an_administrator_cannot_reset_to_a_recent_password_either(users):
    with pytest.raises(IdentityError, match="used recently"):
        users.reset_password(users.get("adrian"), "olivia", PASSWORD, "forgotten")


def test_password_history_is_append_only(engine, users):
    # SQLite's trigger aborts (IntegrityError); PostgreSQL's raises insufficient privilege.
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("UPDATE password_history SET password_hash = 'x'")
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM password_history")


# --- administration ---------------------------------------------------------------------


def test_every_administration_action_records_old_and_new_values_and_a_reason(engine, users):
    admin = users.get("adrian")
    users.create_user(admin, "nina", "Nina New", ["operator"], "temporary-pass-1", "new hire")
    users.set_roles(admin, "nina", ["operator", "supervisor"], "covers nights")
    users.set_areas(admin, "nina", ["*"], "floats between lines")
    users.reset_password(admin, "nina", "another-temp-2", "forgotten")
    users.unlock(admin, "nina", "identity checked")
    users.deactivate(admin, "nina", "left the company")
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.subject == "user/nina")
        events = list(session.exec(query.order_by(col(AuditEvent.id))))
    assert [e.action for e in events] == [
        "user.created", "user.roles_changed", "user.areas_changed", "user.password_reset",
        "user.unlocked", "user.deactivated",
    ]
    for event in events:
        detail = json.loads(event.detail_json)
        assert event.actor == "adrian"
        assert {"old", "new", "reason"} <= detail.keys(), event.action
        assert detail["reason"].strip()
    areas = json.loads(events[2].detail_json)
    assert (areas["old"], areas["new"]) == ("main", "*")


def test_creating_a_user_needs_a_reason(users):
    with pytest.raises(IdentityError, match="reason"):
        users.create_user(users.get("adrian"), "nina", "Nina", ["operator"], "temp-pass-123", "")


def test_unknown_area_is_refused_naming_the_sites_areas(users):
    with pytest.raises(IdentityError, match="the site's areas are main"):
        users.set_areas(users.get("adrian"), "olivia", ["line-z"], "moved")
