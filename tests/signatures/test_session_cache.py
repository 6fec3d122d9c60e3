"""The per-token memory behind authenticated requests: a change made in this process
closes the session on the very next request; one made elsewhere within a second."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from signatures import session_cache
from signatures.identity import NotPermitted, UserDirectory
from signatures.sessions import SessionRegistry, session_id_of
from signatures.tokens import TokenError, read_token

SECRET = "s" * 48


@pytest.fixture
def users(engine):
    directory = UserDirectory(engine)
    directory.ensure_user("olivia", "Olivia Operator", "operator-pass-1", ["operator"], "test")
    directory.ensure_user("adrian", "Adrian Admin", "admin-pass-123", ["admin"], "test")
    return directory


@pytest.fixture
def registry(engine):
    return SessionRegistry(engine, idle_timeout_s=600)


def _warm(registry, users):
    """An open session whose state the cache now holds."""
    claims = read_token(SECRET, registry.open(SECRET, users.get("olivia"), 900))
    registry.resolve(claims, users)
    store = registry.engine.url.render_as_string(hide_password=True)
    assert session_cache.CACHE.get(store, claims.jti) is not None
    return claims


def test_each_request_gets_its_own_user_object_bound_to_its_session(registry, users):
    claims = _warm(registry, users)
    first, second = registry.resolve(claims, users), registry.resolve(claims, users)
    assert first is not second
    assert (first.username, first.role_list, session_id_of(first)) == (
        "olivia", ["operator"], claims.jti)


def test_logout_closes_a_remembered_session_at_once(registry, users):
    claims = _warm(registry, users)
    registry.logout(claims)
    with pytest.raises(TokenError, match="logged out"):
        registry.resolve(claims, users)


def test_password_change_closes_a_remembered_session_at_once(registry, users):
    claims = _warm(registry, users)
    users.change_password("olivia", "operator-pass-1", "a-fresh-pass-2")
    with pytest.raises(TokenError, match="password or roles changed"):
        registry.resolve(claims, users)


def test_role_change_closes_a_remembered_session_at_once(registry, users):
    claims = _warm(registry, users)
    users.set_roles(users.get("adrian"), "olivia", ["qa"], "moved to QA")
    with pytest.raises(TokenError, match="password or roles changed"):
        registry.resolve(claims, users)


def test_deactivation_closes_a_remembered_session_at_once(registry, users):
    claims = _warm(registry, users)
    users.deactivate(users.get("adrian"), "olivia", "left the company")
    with pytest.raises((TokenError, NotPermitted)):
        registry.resolve(claims, users)


def test_a_revocation_by_another_process_takes_effect_within_the_cache_time(
    engine, registry, users
):
    claims = _warm(registry, users)
    # Another process writes straight to the database: this process hears nothing of it.
    with engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET revoked_at = :at, revoked_reason = 'logged out' "
                          "WHERE jti = :jti"), {"at": datetime.now(UTC), "jti": claims.jti})
    time.sleep(session_cache.TTL_S + 0.1)
    with pytest.raises(TokenError, match="logged out"):
        registry.resolve(claims, users)


def test_what_was_read_before_an_invalidation_is_not_remembered(registry, users):
    claims = read_token(SECRET, registry.open(SECRET, users.get("olivia"), 900))
    user = users.get("olivia")
    row = registry.check(claims, user)
    generation = session_cache.CACHE.generation
    session_cache.CACHE.forget({"olivia"}, set())  # a change committed meanwhile
    store = registry.engine.url.render_as_string(hide_password=True)
    session_cache.CACHE.put(store, claims.jti, user, row, generation)
    assert session_cache.CACHE.get(store, claims.jti) is None


def test_a_session_closed_by_another_process_cannot_sign_even_while_remembered(
    engine, registry, users
):
    claims = _warm(registry, users)
    user = registry.resolve(claims, users)
    with engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET revoked_at = :at, revoked_reason = 'logged out' "
                          "WHERE jti = :jti"), {"at": datetime.now(UTC), "jti": claims.jti})
    with pytest.raises(TokenError, match="closed"):
        registry.sign(users, user, "operator-pass-1", "performed", "operator", "olivia")
