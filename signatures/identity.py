"""Users and the act of signing: who may sign, proven by re-entering a password."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from signatures.passwords import check_policy, hash_password, verify_password
from store import audit
from store.db import transaction
from store.models import User
from workflows.messages import SignatureIntent, Signer

ROLES = ("author", "approver", "operator", "supervisor", "qa", "auditor", "admin")


class IdentityError(Exception):
    """Authentication or authorisation failed; the message is safe to show the user."""


class AuthenticationFailed(IdentityError):
    def __init__(self) -> None:
        super().__init__("User id or password is wrong.")


class NotPermitted(IdentityError):
    pass


class UserDirectory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_user(
        self, username: str, full_name: str, password: str, roles: list[str], actor: str
    ) -> User:
        """Create a user once; a repeat (e.g. seeding on every start) changes nothing."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise IdentityError(f"Unknown role(s) {sorted(unknown)}; known: {', '.join(ROLES)}.")
        with transaction(self.engine) as session:
            existing = session.exec(select(User).where(User.username == username)).first()
            if existing is not None:
                return existing
            check_policy(password)
            user = User(
                username=username,
                full_name=full_name,
                password_hash=hash_password(password),
                roles=",".join(roles),
            )
            session.add(user)
            session.flush()
            audit.append(
                session,
                key=f"user/{username}/created",
                actor=actor,
                action="user.created",
                subject=f"user/{username}",
                detail={"roles": user.roles},
            )
            return user

    def get(self, username: str) -> User | None:
        with Session(self.engine) as session:
            return session.exec(select(User).where(User.username == username)).first()

    def authenticate(self, username: str, password: str) -> User:
        user = self.get(username)
        # Verify against a dummy hash when the user is unknown, so timing does not tell.
        stored = user.password_hash if user else _DUMMY_HASH
        if not verify_password(stored, password) or user is None or not user.active:
            raise AuthenticationFailed()
        return user

    def sign(
        self, session_user: User, password: str, meaning: str, required_role: str
    ) -> SignatureIntent:
        """Re-check the signer's password now and return what the signature will record."""
        user = self.authenticate(session_user.username, password)
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


_DUMMY_HASH = hash_password("timing-equaliser-not-a-password-1")
