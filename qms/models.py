"""The built-in QMS's tables (same `SQLModel.metadata` as the record store)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from store.models import utcnow


class DeviationRow(SQLModel, table=True):
    __tablename__ = "qms_deviations"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    batch_id: str = Field(index=True, max_length=64)
    phase_instance: str = ""
    classification: str = Field(max_length=16)
    title: str = Field(max_length=200)
    description: str
    lots_json: str = "[]"
    origin: str = Field(max_length=16)
    status: str = Field(default="open", index=True, max_length=16)
    opened_by: str = Field(max_length=64)
    opened_at: datetime = Field(default_factory=utcnow)
    disposition: str = ""
    rationale: str = ""
    capa_ref: str = ""
    disposition_by: str = ""
    disposition_at: datetime | None = None
    signature_json: str = ""
    signature_hash: str = ""


class DeviationNoteRow(SQLModel, table=True):
    __tablename__ = "qms_deviation_notes"

    id: int | None = Field(default=None, primary_key=True)
    deviation_id: int = Field(index=True, foreign_key="qms_deviations.id")
    note: str
    author: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow)


class QmsRequest(SQLModel, table=True):
    """One row per applied write; a repeated key replays `result_json`."""

    __tablename__ = "qms_requests"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    operation: str = Field(max_length=32)
    request_hash: str = Field(max_length=64)
    result_json: str
    at: datetime = Field(default_factory=utcnow)
