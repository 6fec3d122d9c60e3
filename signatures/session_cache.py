"""What an authenticated request learned about its token, kept for about a second.

Every API request needs the token's user and session row (revocation, idle time). Read
from the database each time, that was two thirds of an authenticated read. This cache
keeps both per token id for `TTL_S`; each hit still applies every check (`active`,
tokens revoked since issue, logout, idle time) to the remembered values.

Revocation delay (a Part 11 consideration, see docs/performance.md): a change made in
*this* process through the ORM (logout, password change, role change, deactivation,
idle revocation) drops the affected entries when it is flushed and again when it is
committed, so it takes effect on the next request. A change made by *another* process
(a second API process, the CLI) takes effect within `TTL_S` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached

from store.models import SessionToken, User

TTL_S = 1.0

_USER_COLUMNS = tuple(User.__table__.columns.keys())  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SessionState:
    """The remembered columns of one `sessions` row."""

    username: str
    last_seen_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


@dataclass(frozen=True, slots=True)
class Remembered:
    user: dict[str, Any]
    session: SessionState
    until: float  # time.monotonic()


class SessionCache:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], Remembered] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: a request that read the database before one must
        # not store what it read (it may predate the change).
        self.generation = 0

    def get(self, store: str, jti: str) -> Remembered | None:
        entry = self._entries.get((store, jti))
        if entry is None or entry.until < time.monotonic():
            return None
        return entry

    def put(self, store: str, jti: str, user: User, row: SessionToken, generation: int) -> None:
        values = {name: user.__dict__[name] for name in _USER_COLUMNS if name in user.__dict__}
        if len(values) != len(_USER_COLUMNS):
            return  # an expired attribute: nothing reliable to remember
        state = SessionState(row.username, row.last_seen_at, row.revoked_at, row.revoked_reason)
        with self._lock:
            if generation != self.generation:
                return
            self._entries[(store, jti)] = Remembered(values, state,
                                                     time.monotonic() + self.ttl_s)
            if len(self._entries) > 10_000:  # a bound, not a policy: drop the expired
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v.until >= now}

    def forget(self, usernames: set[str], jtis: set[str]) -> None:
        with self._lock:
            self.generation += 1
            self._entries = {
                key: entry for key, entry in self._entries.items()
                if key[1] not in jtis and entry.session.username not in usernames
                and entry.user.get("username") not in usernames
            }


def fresh_user(values: dict[str, Any]) -> User:
    """A User object of this request's own, detached like one `UserDirectory.get` returns
    (a few microseconds; the model's constructor costs thirty)."""
    user = User.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    user.__dict__.update(values)
    make_transient_to_detached(user)
    return user


CACHE = SessionCache()


# --- invalidation: any ORM flush that touches a user or a session row ------------------

_PENDING = "ebr_session_cache_forget"


def _touched(session: Session) -> tuple[set[str], set[str]]:
    usernames: set[str] = set()
    jtis: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, User):
            usernames.add(obj.username)
        elif isinstance(obj, SessionToken):
            jtis.add(obj.jti)
    return usernames, jtis


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: object) -> None:
    usernames, jtis = _touched(session)
    if usernames or jtis:
        CACHE.forget(usernames, jtis)
        pending = session.info.setdefault(_PENDING, (set(), set()))
        pending[0].update(usernames)
        pending[1].update(jtis)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # Again at commit: a request may have read (and stored) the old row in between.
    pending = session.info.pop(_PENDING, None)
    if pending is not None:
        CACHE.forget(*pending)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
