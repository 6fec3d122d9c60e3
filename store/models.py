"""The record store's tables. Every business write has a unique key, so a retried
activity or request finds its earlier write instead of making a second one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, UniqueConstraint


def utcnow() -> datetime:
    return datetime.now(UTC)


# SQLModel maps every `datetime` field to an aware UTC type (timestamptz on PostgreSQL;
# read back as UTC on SQLite) and refuses naive values, so stored times are always UTC.


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    full_name: str = Field(max_length=200)
    password_hash: str
    roles: str = Field(description="comma-separated role names")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # Part 11 identity controls. Every column has a default, so rows written before these
    # columns existed read as "no failures, not locked, no forced change".
    failed_attempts: int = 0
    locked_until: datetime | None = Field(default=None)
    password_changed_at: datetime | None = Field(default=None)
    must_change_password: bool = False
    # Tokens issued (in ns since the epoch) before this instant are revoked: password
    # change, role removal and deactivation bump it. Nanoseconds, because a login in the
    # same second as a revocation must still work while the revoked token must not.
    tokens_valid_from_ns: int = Field(default=0, sa_type=BigInteger)
    deactivated_at: datetime | None = Field(default=None)
    # The areas (lines, rooms) whose batches this user sees: comma-separated names, or
    # ALL_AREAS for every area (QA, auditors). Empty = none: access is granted, not assumed.
    areas: str = Field(default="", max_length=1000)

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split(",") if r]

    @property
    def area_list(self) -> list[str]:
        return [a for a in self.areas.split(",") if a]

    def sees_area(self, area: str) -> bool:
        areas = self.area_list
        return ALL_AREAS in areas or area in areas


ALL_AREAS = "*"
# The area of a site that names none (EBR_DEFAULT_AREA's default).
DEFAULT_AREA = "main"


class PasswordHistory(SQLModel, table=True):
    """Every password hash a user has had, newest last: no reuse of the last N.
    Append-only like the audit trail (triggers in `store.db`)."""

    __tablename__ = "password_history"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, max_length=64)
    password_hash: str
    set_at: datetime = Field(default_factory=utcnow)


class RecipeVersion(SQLModel, table=True):
    __tablename__ = "recipe_versions"
    __table_args__ = (UniqueConstraint("recipe_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    recipe_id: str = Field(index=True, max_length=64)
    version: str = Field(max_length=32)
    name: str
    product_code: str
    sha256: str = Field(max_length=64)
    source_text: str
    status: str = Field(default="draft", description="draft | approved")
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str
    approved_at: datetime | None = None
    approved_by: str | None = None
    approval_signature_id: int | None = None


class Batch(SQLModel, table=True):
    __tablename__ = "batches"

    batch_id: str = Field(primary_key=True, max_length=64)
    recipe_id: str
    recipe_version: str
    recipe_sha256: str
    product_code: str
    product_name: str
    batch_size: str
    batch_unit: str
    equipment_json: str = "{}"
    # The area (line, room) the batch runs in: only users granted it (or every area) see it.
    area: str = Field(default=DEFAULT_AREA, index=True, max_length=64)
    plan_json: str = Field(description="the compiled plan the workflow runs, for the record")
    state: str = "created"
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str
    completed_at: datetime | None = None
    released_at: datetime | None = None
    report_path: str | None = None
    report_sha256: str | None = None
    report_pages: int | None = None

    def plan_step(self, step_id: str) -> dict[str, Any] | None:
        """The compiled plan's step; a loop's repeats (`id#2`) share their plan step."""
        base = step_id.split("#")[0]
        steps = json.loads(self.plan_json)["steps"]
        return next((s for s in steps if s["step_id"] == base), None)


class Signature(SQLModel, table=True):
    """An executed e-signature. Append-only; `key` is the action's idempotency key."""

    __tablename__ = "signatures"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    batch_id: str | None = Field(default=None, index=True)
    subject: str = Field(description="what was signed, e.g. batch/step path or recipe@version")
    user_id: int
    username: str
    full_name: str
    meaning: str
    signed_at: str = Field(description="ISO 8601 UTC as signed; hashed exactly as stored")
    content_sha256: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow)


class StepRecord(SQLModel, table=True):
    """One completed phase: the values, the device evidence, and its signature."""

    __tablename__ = "step_records"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    batch_id: str = Field(index=True)
    step_id: str
    kind: str
    title: str
    result: str
    values_json: str
    reading_json: str | None = None
    comment: str = ""
    content_sha256: str = Field(max_length=64)
    signature_id: int
    recorded_at: datetime = Field(default_factory=utcnow)
    # Corrections add a row; the one they replace stays, so the original is never lost.
    version: int = 1
    supersedes_id: int | None = None
    reason: str = ""


class AuditEvent(SQLModel, table=True):
    """The audit trail: a hash chain, so a removed or edited entry breaks verification."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    subject: str
    detail_json: str = "{}"
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class SessionToken(SQLModel, table=True):
    """One issued session token, keyed by its `jti`: logout and idle timeout act on it."""

    __tablename__ = "sessions"

    jti: str = Field(primary_key=True, max_length=64)
    username: str = Field(index=True, max_length=64)
    issued_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = Field(default=None)
    revoked_reason: str | None = None
    # When this session's first e-signature (user id and password) was made; later ones
    # in the same session need only the password (21 CFR 11.200(a)(1)(i)).
    first_signed_at: datetime | None = Field(default=None)
