"""Session lifecycle: a token is valid only while its session is open.

A session closes when its owner logs out, when it has been idle too long, or when all
of a user's tokens are revoked (password change, role removal, deactivation: the user's
`tokens_valid_from_ns`). Tokens are made and read only by `signatures.tokens`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from signatures.tokens import TokenClaims, TokenError, issue_token, read_token
from store.db import transaction
from store.models import SessionToken, User


def _now() -> datetime:
    return datetime.now(UTC)


class SessionRegistry:
    def __init__(self, engine: Engine, idle_timeout_s: int) -> None:
        self.engine = engine
        self.idle = timedelta(seconds=idle_timeout_s)
        # Refresh last-seen at most this often, so reading pages does not write every time.
        self.touch_every = min(timedelta(seconds=30), self.idle / 10)

    def open(self, secret: str, user: User, ttl_s: int) -> str:
        token = issue_token(secret, user.username, ttl_s)
        claims = read_token(secret, token)
        with transaction(self.engine) as session:
            session.add(
                SessionToken(
                    jti=claims.jti,
                    username=user.username,
                    issued_at=_from_ns(claims.issued_ns),
                    last_seen_at=_from_ns(claims.issued_ns),
                )
            )
        return token

    def check(self, claims: TokenClaims, user: User) -> None:
        """Refuse a revoked, logged-out or idle token; note that this one is in use."""
        if claims.subject != user.username:
            raise TokenError("Session token does not belong to this user: log in again.")
        if claims.issued_ns < user.tokens_valid_from_ns:
            raise TokenError(
                "Your session was closed because your password or roles changed: log in again."
            )
        now = _now()
        with Session(self.engine) as session:
            row = session.get(SessionToken, claims.jti)
        if row is None:
            # A token issued elsewhere (e.g. the login page) is registered on first use.
            row = self._register(claims)
        if row.revoked_at is not None:
            raise TokenError(f"This session was closed ({row.revoked_reason}): log in again.")
        if now - row.last_seen_at > self.idle:
            self._revoke(claims.jti, "idle timeout")
            minutes = int(self.idle.total_seconds() // 60)
            raise TokenError(
                f"Your session was idle for more than {minutes} minutes: log in again."
            )
        if now - row.last_seen_at > self.touch_every:
            with transaction(self.engine) as session:
                fresh = session.get(SessionToken, claims.jti)
                if fresh is not None and fresh.revoked_at is None:
                    fresh.last_seen_at = now
                    session.add(fresh)

    def logout(self, claims: TokenClaims) -> None:
        # Register first, so a token never used before logout is still closed for good.
        self._register_if_missing(claims)
        self._revoke(claims.jti, "logged out")

    def _register(self, claims: TokenClaims) -> SessionToken:
        self._register_if_missing(claims)
        with Session(self.engine) as session:
            row = session.get(SessionToken, claims.jti)
        assert row is not None
        return row

    def _register_if_missing(self, claims: TokenClaims) -> bool:
        issued = _from_ns(claims.issued_ns)
        try:
            with transaction(self.engine) as session:
                if session.get(SessionToken, claims.jti) is not None:
                    return False
                session.add(
                    SessionToken(
                        jti=claims.jti, username=claims.subject, issued_at=issued,
                        last_seen_at=issued,
                    )
                )
            return True
        except IntegrityError:
            # Two first requests with one token raced; the other one registered it.
            return False

    def _revoke(self, jti: str, reason: str) -> None:
        with transaction(self.engine) as session:
            row = session.get(SessionToken, jti)
            if row is not None and row.revoked_at is None:
                row.revoked_at = _now()
                row.revoked_reason = reason
                session.add(row)


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1_000_000_000, tz=UTC)
