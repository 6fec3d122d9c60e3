"""The built-in WMS's tables (same `SQLModel.metadata` as the record store).

Quantities are stored as Decimal text in the material's own unit: SQLite has no exact
decimal type, and a float would turn 0.1 kg into 0.1000000000000000055 kg.
Stock rows are a projection of the movement ledger, updated in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, UniqueConstraint

from store.models import utcnow


class DecimalText(TypeDecorator[Decimal]):
    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else format(Decimal(value), "f")

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class Material(SQLModel, table=True):
    __tablename__ = "wms_materials"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    unit: str = Field(max_length=32, description="unit stock is kept in, e.g. kg")
    gtin: str | None = Field(default=None, unique=True, max_length=14)
    created_at: datetime = Field(default_factory=utcnow)


class Lot(SQLModel, table=True):
    """Lot numbers are unique across materials: ebr assigns or confirms them at receipt."""

    __tablename__ = "wms_lots"

    id: int | None = Field(default=None, primary_key=True)
    lot_number: str = Field(unique=True, index=True, max_length=64)
    material_code: str = Field(index=True, max_length=64)
    status: str = Field(default="quarantine", max_length=16)
    status_reason: str = ""
    expiry: date | None = None
    retest: date | None = None
    potency: Decimal | None = Field(default=None, sa_type=DecimalText)
    supplier_lot: str = ""
    produced_by_batch: str = Field(default="", index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Bin(SQLModel, table=True):
    __tablename__ = "wms_bins"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=64)
    location: str = Field(default="", max_length=200, description="warehouse / area")
    staging: bool = False


class Stock(SQLModel, table=True):
    __tablename__ = "wms_stock"
    __table_args__ = (UniqueConstraint("lot_number", "bin_code"),)

    id: int | None = Field(default=None, primary_key=True)
    lot_number: str = Field(index=True, max_length=64)
    bin_code: str = Field(max_length=64)
    quantity: Decimal = Field(sa_type=DecimalText)


class Movement(SQLModel, table=True):
    """The ledger. `key` is the request's idempotency key plus a line suffix."""

    __tablename__ = "wms_movements"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    kind: str = Field(max_length=16, description="receipt|move|adjust|pick|issue|return|produce")
    lot_number: str = Field(index=True, max_length=64)
    material_code: str = Field(max_length=64)
    from_bin: str = ""
    to_bin: str = ""
    quantity: Decimal = Field(sa_type=DecimalText, description="in the material's unit")
    unit: str = Field(max_length=32)
    batch_id: str = Field(default="", index=True, max_length=64)
    phase_instance: str = ""
    line: int = 0
    sscc: str = Field(default="", index=True, max_length=18)
    reason: str = ""
    actor: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow)


class Reservation(SQLModel, table=True):
    __tablename__ = "wms_reservations"
    __table_args__ = (UniqueConstraint("key", "lot_number", "bin_code"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=300)
    batch_id: str = Field(index=True, max_length=64)
    phase_instance: str = ""
    line: int = 0
    lot_number: str = Field(index=True, max_length=64)
    bin_code: str = Field(max_length=64)
    quantity: Decimal = Field(sa_type=DecimalText, description="still reserved, material unit")
    created_at: datetime = Field(default_factory=utcnow)


class Genealogy(SQLModel, table=True):
    __tablename__ = "wms_genealogy"
    __table_args__ = (UniqueConstraint("output_lot", "input_lot"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(index=True, max_length=64)
    output_lot: str = Field(index=True, max_length=64)
    input_lot: str = Field(index=True, max_length=64)
    input_material: str = Field(max_length=64)
    quantity: Decimal = Field(sa_type=DecimalText)
    unit: str = Field(max_length=32)


class WmsRequest(SQLModel, table=True):
    """One row per applied write: a repeated key returns `result_json` and writes nothing."""

    __tablename__ = "wms_requests"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    operation: str = Field(max_length=32)
    request_hash: str = Field(max_length=64)
    result_json: str
    at: datetime = Field(default_factory=utcnow)


class ProcessOrder(SQLModel, table=True):
    """An ERP process order (ISA-95 production request) ebr will run as a batch."""

    __tablename__ = "erp_process_orders"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(unique=True, max_length=64)
    product_code: str = Field(max_length=64)
    quantity: Decimal = Field(sa_type=DecimalText)
    unit: str = Field(max_length=32)
    due: date
    recipe_id: str = Field(max_length=64)
    recipe_version: str = Field(default="", max_length=32)
    request_hash: str = Field(max_length=64)
    status: str = Field(default="received", max_length=16)  # received | started | confirmed
    batch_id: str = Field(default="", index=True, max_length=64)  # the batch run for it
    created_at: datetime = Field(default_factory=utcnow)


class OutboxMessage(SQLModel, table=True):
    """A confirmation to the ERP, written once and delivered until the ERP takes it."""

    __tablename__ = "erp_outbox"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    order_id: str = Field(index=True, max_length=64)
    batch_id: str = Field(default="", max_length=64)
    payload_json: str
    status: str = Field(default="pending", index=True, max_length=16)
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = Field(default=None, description="retry not before")
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
