"""Users and the act of signing: who may sign, proven by re-entering a password.

Part 11 identity controls live here: lockout after repeated failed logins or signing
attempts, password expiry, an administrator-set password that must be changed before
its owner signs, and audited user administration (create, roles, deactivate — never
delete).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from signatures.passwords import check_policy, hash_password, verify_password
from store import audit
from store.db import transaction
from store.models import ALL_AREAS, DEFAULT_AREA, PasswordHistory, User
from workflows.messages import SignatureIntent, Signer

ROLES = ("author", "approver", "operator", "supervisor", "qa", "auditor", "admin")
ADMIN = "admin"


class IdentityError(Exception):
    """Authentication or authorisation failed; the message is safe to show the user."""


class AuthenticationFailed(IdentityError):
    def __init__(self, message: str = "User id or password is wrong.") -> None:
        super().__init__(message)


class AccountLocked(AuthenticationFailed):
    def __init__(self, username: str, until: datetime) -> None:
        self.until = until
        super().__init__(
            f"Account {username} is locked after repeated failed attempts until "
            f"{until.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC; try again then, "
            "or ask an administrator to unlock it."
        )


class NotPermitted(IdentityError):
    pass


class PasswordChangeRequired(NotPermitted):
    """Signing is refused until the owner sets a password only they know."""


class UserIdRequired(IdentityError):
    """The first signature of a session needs both components: user id and password."""

    def __init__(self) -> None:
        super().__init__(
            "The first signature of a session needs your user id as well as your password "
            "(send `username` with `password`); later signatures in this session need only "
            "the password."
        )


@dataclass(frozen=True)
class IdentityPolicy:
    lockout_threshold: int = 5
    lockout_duration_s: int = 900
    password_max_age_days: int = 90
    password_history: int = 5
    areas: tuple[str, ...] = (DEFAULT_AREA,)
    default_area: str = DEFAULT_AREA

    @classmethod
    def from_settings(cls, settings: Any) -> IdentityPolicy:
        return cls(
            lockout_threshold=settings.lockout_threshold,
            lockout_duration_s=settings.lockout_duration_s,
            password_max_age_days=settings.password_max_age_days,
            password_history=settings.password_history,
            areas=tuple(settings.areas),
            default_area=settings.default_area,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _audit_key(username: str, what: str) -> str:
    # Events that may happen many times (failures, role changes) need unique keys.
    return f"user/{username}/{what}/{uuid.uuid4().hex}"


class UserDirectory:
    def __init__(self, engine: Engine, policy: IdentityPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or IdentityPolicy()

    # --- reading -------------------------------------------------------------

    def get(self, username: str) -> User | None:
        with Session(self.engine) as session:
            return session.exec(select(User).where(User.username == username)).first()

    def list_users(self) -> list[User]:
        with Session(self.engine) as session:
            return list(session.exec(select(User).order_by(col(User.id))))

    def password_expires_at(self, user: User) -> datetime | None:
        if self.policy.password_max_age_days <= 0:
            return None
        changed = user.password_changed_at or user.created_at
        return changed + timedelta(days=self.policy.password_max_age_days)

    def password_change_reason(self, user: User) -> str | None:
        """Why this user must change their password before signing, or None."""
        if user.must_change_password:
            return "Your password was set by an administrator"
        expires = self.password_expires_at(user)
        if expires is not None and expires <= _now():
            return f"Your password expired on {expires.strftime('%Y-%m-%d')}"
        return None

    # --- seeding -------------------------------------------------------------

    def ensure_user(
        self,
        username: str,
        full_name: str,
        password: str,
        roles: list[str],
        actor: str,
        areas: list[str] | None = None,
    ) -> User:
        """Create a user once; a repeat (e.g. seeding on every start) changes nothing,
        except granting `areas` to a user who has none (a database from before areas)."""
        _check_roles(roles)
        areas = areas or []
        self._check_areas(areas)
        with transaction(self.engine) as session:
            existing = session.exec(select(User).where(User.username == username)).first()
            if existing is not None:
                if areas and not existing.area_list:
                    existing.areas = ",".join(areas)
                    session.add(existing)
                    audit.append(
                        session,
                        key=f"user/{username}/areas/seeded",
                        actor=actor,
                        action="user.areas_changed",
                        subject=f"user/{username}",
                        detail={"old": "", "new": existing.areas, "reason": "seeded"},
                    )
                return existing
            check_policy(password)
            user = User(
                username=username,
                full_name=full_name,
                password_hash=hash_password(password),
                roles=",".join(roles),
                areas=",".join(areas),
                password_changed_at=_now(),
            )
            session.add(user)
            session.flush()
            _remember_password(session, user)
            audit.append(
                session,
                key=f"user/{username}/created",
                actor=actor,
                action="user.created",
                subject=f"user/{username}",
                detail={"roles": user.roles, "areas": user.areas},
            )
            return user

    # --- authentication and signing -----------------------------------------

    def authenticate(self, username: str, password: str, purpose: str = "login") -> User:
        """Check a password; count failures, lock after too many, and audit both."""
        user = self.get(username)
        if user is not None and user.locked_until is not None and user.locked_until > _now():
            raise AccountLocked(user.username, user.locked_until)
        # Verify against a dummy hash when the user is unknown, so timing does not tell.
        # The hash runs outside any transaction: ~0.1 s must not hold the write lock.
        stored = user.password_hash if user else _DUMMY_HASH
        good = verify_password(stored, password)
        if user is None:
            raise AuthenticationFailed()
        if not good:
            self._record_failure(user.username, purpose)
            raise AuthenticationFailed()
        if not user.active:
            raise AuthenticationFailed()
        if user.failed_attempts:
            with transaction(self.engine) as session:
                fresh = _locked_row(session, user.username)
                fresh.failed_attempts = 0
                session.add(fresh)
            user.failed_attempts = 0
        return user

    def _record_failure(self, username: str, purpose: str) -> None:
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            now = _now()
            if user.locked_until is not None and user.locked_until > now:
                # A concurrent attempt locked it meanwhile; say so rather than "wrong".
                raise AccountLocked(username, user.locked_until)
            user.failed_attempts += 1
            attempts = user.failed_attempts
            audit.append(
                session,
                key=_audit_key(username, "failed"),
                actor=username,
                action="auth.failed",
                subject=f"user/{username}",
                detail={"purpose": purpose, "attempt": str(attempts)},
            )
            locked_until = None
            if attempts >= self.policy.lockout_threshold:
                locked_until = now + timedelta(seconds=self.policy.lockout_duration_s)
                user.locked_until = locked_until
                user.failed_attempts = 0
                audit.append(
                    session,
                    key=_audit_key(username, "locked"),
                    actor="ebr",
                    action="user.locked",
                    subject=f"user/{username}",
                    detail={"attempts": str(attempts), "until": locked_until.isoformat()},
                )
            session.add(user)
        if locked_until is not None:
            raise AccountLocked(username, locked_until)

    def sign(
        self,
        session_user: User,
        password: str,
        meaning: str,
        required_role: str,
        *,
        username: str | None,
        first_in_session: bool,
    ) -> SignatureIntent:
        """Re-check the signer's password now and return what the signature will record.

        The first signature of a session needs both components, user id and password
        (`first_in_session`; the caller's session registry knows); later ones need only
        the password. A user id, when given, must be the session's own.
        """
        if username is not None and username.strip() != session_user.username:
            # Someone signs in another person's session: a failed signing attempt of the
            # session's owner (counts towards the lockout), never a signature of another.
            self._record_failure(session_user.username, "signature (another user id)")
            raise AuthenticationFailed(
                f"The user id {username.strip()!r} is not the signed-in user's: each person "
                "signs in their own session (log out, and log in as yourself)."
            )
        if first_in_session and username is None:
            raise UserIdRequired()
        user = self.authenticate(session_user.username, password, purpose="signature")
        reason = self.password_change_reason(user)
        if reason is not None:
            raise PasswordChangeRequired(
                f"{reason}: change it (POST /api/v1/auth/password) before signing."
            )
        if required_role not in user.role_list:
            raise NotPermitted(
                f"{user.full_name} does not hold the {required_role} role needed to sign "
                f"as '{meaning}'."
            )
        return SignatureIntent(
            signer=Signer(
                user_id=user.id or 0,
                username=user.username,
                full_name=user.full_name,
                roles=user.role_list,
            ),
            meaning=meaning,
            signed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )

    def change_password(self, username: str, current: str, new: str) -> User:
        """The owner sets a new password; every token issued before now is revoked."""
        self.authenticate(username, current, purpose="password change")
        if new == current:
            raise IdentityError("The new password must differ from the current one.")
        check_policy(new)
        self._refuse_reuse(username, new)
        new_hash = hash_password(new)
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            _remember_password(session, user, new_hash)
            user.password_hash = new_hash
            user.password_changed_at = _now()
            user.must_change_password = False
            user.tokens_valid_from_ns = time.time_ns()
            session.add(user)
            audit.append(
                session,
                key=_audit_key(username, "password"),
                actor=username,
                action="user.password_changed",
                subject=f"user/{username}",
                detail={"by": "owner"},
            )
            return user

    # --- administration (admin role; every change audited with a reason) ------

    def create_user(
        self,
        actor: User,
        username: str,
        full_name: str,
        roles: list[str],
        password: str,
        reason: str,
        areas: list[str] | None = None,
    ) -> User:
        _require_admin(actor)
        _require_reason(reason)
        _check_roles(roles)
        areas = areas if areas is not None else [self.policy.default_area]
        self._check_areas(areas)
        check_policy(password)
        password_hash = hash_password(password)
        with transaction(self.engine) as session:
            if session.exec(select(User).where(User.username == username)).first():
                raise IdentityError(
                    f"User id {username} is already taken; user ids are never reused, even "
                    "after deactivation. Choose another."
                )
            user = User(
                username=username,
                full_name=full_name,
                password_hash=password_hash,
                roles=",".join(roles),
                areas=",".join(areas),
                password_changed_at=_now(),
                # The administrator knows this password: its owner must replace it.
                must_change_password=True,
            )
            session.add(user)
            session.flush()
            _remember_password(session, user)
            audit.append(
                session,
                key=f"user/{username}/created",
                actor=actor.username,
                action="user.created",
                subject=f"user/{username}",
                detail={
                    "old": "", "new": "active", "roles": user.roles, "areas": user.areas,
                    "full_name": full_name, "reason": reason,
                },
            )
            return user

    def set_roles(self, actor: User, username: str, roles: list[str], reason: str) -> User:
        _require_admin(actor)
        _require_reason(reason)
        _check_roles(roles)
        if actor.username == username:
            raise NotPermitted("Administrators cannot change their own roles; ask another one.")
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            old = user.role_list
            user.roles = ",".join(roles)
            if set(old) - set(roles):
                # A removed role must not live on in tokens issued while it was held.
                user.tokens_valid_from_ns = time.time_ns()
            session.add(user)
            audit.append(
                session,
                key=_audit_key(username, "roles"),
                actor=actor.username,
                action="user.roles_changed",
                subject=f"user/{username}",
                detail={"old": ",".join(old), "new": user.roles, "reason": reason},
            )
            return user

    def set_areas(self, actor: User, username: str, areas: list[str], reason: str) -> User:
        """Grant the areas whose batches the user sees (ALL_AREAS = every area)."""
        _require_admin(actor)
        _require_reason(reason)
        self._check_areas(areas)
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            old = user.areas
            user.areas = ",".join(areas)
            session.add(user)
            audit.append(
                session,
                key=_audit_key(username, "areas"),
                actor=actor.username,
                action="user.areas_changed",
                subject=f"user/{username}",
                detail={"old": old, "new": user.areas, "reason": reason},
            )
            return user

    def deactivate(self, actor: User, username: str, reason: str) -> User:
        _require_admin(actor)
        _require_reason(reason)
        if actor.username == username:
            raise NotPermitted("Administrators cannot deactivate themselves; ask another one.")
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            if not user.active:
                return user
            user.active = False
            user.deactivated_at = _now()
            user.tokens_valid_from_ns = time.time_ns()
            session.add(user)
            audit.append(
                session,
                key=f"user/{username}/deactivated",
                actor=actor.username,
                action="user.deactivated",
                subject=f"user/{username}",
                detail={"old": "active", "new": "inactive", "reason": reason},
            )
            return user

    def reset_password(self, actor: User, username: str, password: str, reason: str) -> User:
        _require_admin(actor)
        _require_reason(reason)
        check_policy(password)
        self._refuse_reuse(username, password)
        password_hash = hash_password(password)
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            _remember_password(session, user, password_hash)
            user.password_hash = password_hash
            user.password_changed_at = _now()
            user.must_change_password = True
            user.failed_attempts = 0
            user.locked_until = None
            user.tokens_valid_from_ns = time.time_ns()
            session.add(user)
            audit.append(
                session,
                key=_audit_key(username, "password"),
                actor=actor.username,
                action="user.password_reset",
                subject=f"user/{username}",
                detail={"by": "administrator", "old": "", "new": "set, must be changed",
                        "reason": reason},
            )
            return user

    def unlock(self, actor: User, username: str, reason: str) -> User:
        _require_admin(actor)
        _require_reason(reason)
        with transaction(self.engine) as session:
            user = _locked_row(session, username)
            old = user.locked_until.isoformat() if user.locked_until else ""
            user.locked_until = None
            user.failed_attempts = 0
            session.add(user)
            audit.append(
                session,
                key=_audit_key(username, "unlocked"),
                actor=actor.username,
                action="user.unlocked",
                subject=f"user/{username}",
                detail={"old": old, "new": "", "reason": reason},
            )
            return user


    # --- policy helpers --------------------------------------------------------

    def _refuse_reuse(self, username: str, password: str) -> None:
        """No reuse of the last N passwords (the current one included)."""
        n = self.policy.password_history
        if n <= 0:
            return
        with Session(self.engine) as session:
            query = (
                select(PasswordHistory.password_hash)
                .where(PasswordHistory.username == username)
                .order_by(col(PasswordHistory.id).desc())
                .limit(n)
            )
            hashes = list(session.exec(query))
            current = session.exec(
                select(User.password_hash).where(User.username == username)
            ).first()
        if current is not None and current not in hashes:
            hashes.insert(0, current)  # a user from before the history existed
        if any(verify_password(h, password) for h in hashes[:n]):
            raise IdentityError(
                f"This password was used recently: choose one that is not among your last "
                f"{n} passwords."
            )

    def _check_areas(self, areas: list[str]) -> None:
        unknown = [a for a in areas if a != ALL_AREAS and a not in self.policy.areas]
        if unknown:
            raise IdentityError(
                f"Unknown area(s) {', '.join(unknown)}; the site's areas are "
                f"{', '.join(self.policy.areas)} (EBR_AREAS), or '{ALL_AREAS}' for every area."
            )


def _remember_password(session: Session, user: User, password_hash: str | None = None) -> None:
    session.add(PasswordHistory(username=user.username,
                                password_hash=password_hash or user.password_hash))


def _locked_row(session: Session, username: str) -> User:
    # FOR UPDATE on PostgreSQL; SQLite already holds the write lock (BEGIN IMMEDIATE).
    user = session.exec(select(User).where(User.username == username).with_for_update()).first()
    if user is None:
        raise IdentityError(f"There is no user {username}.")
    return user


def _check_roles(roles: list[str]) -> None:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise IdentityError(f"Unknown role(s) {sorted(unknown)}; known: {', '.join(ROLES)}.")
    if not roles:
        raise IdentityError(f"A user needs at least one role; known: {', '.join(ROLES)}.")


def _require_admin(actor: User) -> None:
    if ADMIN not in actor.role_list:
        raise NotPermitted("User administration needs the admin role.")


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise IdentityError("Give a reason for this change; it is kept in the audit trail.")


_DUMMY_HASH = hash_password("timing-equaliser-not-a-password-1")
