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

from signatures import session_cache
from signatures.identity import NotPermitted, UserDirectory
from signatures.tokens import TokenClaims, TokenError, issue_token, read_token
from store.db import transaction
from store.models import SessionToken, User
from workflows.messages import SignatureIntent

# The session a request's user signed in with. Kept on that request's own User object
# (loaded fresh for each request), outside the mapped columns, so route code that only
# passes `user` along still signs within the right session.
_SESSION_ATTR = "_ebr_session_id"


def bind_session(user: User, session_id: str) -> User:
    object.__setattr__(user, _SESSION_ATTR, session_id)
    return user


def session_id_of(user: User) -> str | None:
    value = user.__dict__.get(_SESSION_ATTR)
    return value if isinstance(value, str) else None


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

    def resolve(self, claims: TokenClaims, users: UserDirectory) -> User:
        """The token's user, if its session is open: `check` on values remembered for up
        to a second (`signatures.session_cache`), the database otherwise. Raises
        TokenError (closed session) or NotPermitted (no such or inactive user)."""
        store = self.engine.url.render_as_string(hide_password=True)
        hit = session_cache.CACHE.get(store, claims.jti)
        if hit is not None and self._still_open(claims, hit):
            return bind_session(session_cache.fresh_user(hit.user), claims.jti)
        generation = session_cache.CACHE.generation
        user = users.get(claims.subject)
        if user is None or not user.active:
            raise NotPermitted("This account is not active: log in again.")
        row = self.check(claims, user)
        session_cache.CACHE.put(store, claims.jti, user, row, generation)
        return bind_session(user, claims.jti)

    def _still_open(self, claims: TokenClaims, hit: session_cache.Remembered) -> bool:
        """Whether the remembered state lets this request through without the database.
        False sends it the long way, which refuses it with the right message or, for a
        session due a last-seen update, writes that."""
        user, state = hit.user, hit.session
        seen = _now() - _aware(state.last_seen_at)
        return (
            user["active"] and claims.subject == user["username"] == state.username
            and claims.issued_ns >= user["tokens_valid_from_ns"]
            and state.revoked_at is None and seen <= self.touch_every
        )

    def check(self, claims: TokenClaims, user: User) -> SessionToken:
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
                    row = fresh
        return row

    def sign(
        self,
        users: UserDirectory,
        user: User,
        password: str,
        meaning: str,
        required_role: str,
        username: str | None,
    ) -> SignatureIntent:
        """Sign in `user`'s session: its first signature needs user id and password,
        later ones the password only (21 CFR 11.200(a)(1)(i))."""
        session_id = session_id_of(user)
        if session_id is None:
            raise NotPermitted("Signing needs a signed-in session: log in first.")
        with Session(self.engine) as session:
            row = session.get(SessionToken, session_id)
        if row is not None and row.revoked_at is not None:
            # Read from the database, not the one-second session cache: a session closed
            # by another process cannot sign even in that second.
            raise TokenError(f"This session was closed ({row.revoked_reason}): log in again.")
        first = row is None or row.first_signed_at is None
        intent = users.sign(
            user, password, meaning, required_role, username=username, first_in_session=first
        )
        if first:
            with transaction(self.engine) as session:
                fresh = session.get(SessionToken, session_id)
                if fresh is not None and fresh.first_signed_at is None:
                    fresh.first_signed_at = _now()
                    session.add(fresh)
        return intent

    def first_signature_pending(self, user: User) -> bool:
        """Whether the next signature in this user's session must carry the user id."""
        session_id = session_id_of(user)
        if session_id is None:
            return True
        with Session(self.engine) as session:
            row = session.get(SessionToken, session_id)
        return row is None or row.first_signed_at is None

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


def _aware(at: datetime) -> datetime:
    # SQLite hands datetimes back naive; the store only ever writes UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1_000_000_000, tz=UTC)
