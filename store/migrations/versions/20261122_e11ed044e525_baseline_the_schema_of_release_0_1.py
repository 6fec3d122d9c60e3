"""baseline: the schema of release 0.1

Revision ID: e11ed044e525
Revises:
Create Date: 2026-11-22 01:36:08.320086

Every table of release 0.1 (record store, WMS, QMS, ERP boundary) and the guard triggers
that make audit entries, signatures and password history append-only and users
undeletable, on SQLite and PostgreSQL.

A database made before migrations existed (ebr created its tables at start) already has
these tables: every create is IF NOT EXISTS, the columns added during 0.1 are added when
missing, and guards are created when missing; the database is then adopted at this
revision without losing a row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e11ed044e525"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _add_columns_missing_before_adoption()
    _create_tables()
    create_guards()


def _create_tables() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("detail_json", sa.String(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("recipe_id", sa.String(), nullable=False),
        sa.Column("recipe_version", sa.String(), nullable=False),
        sa.Column("recipe_sha256", sa.String(), nullable=False),
        sa.Column("product_code", sa.String(), nullable=False),
        sa.Column("product_name", sa.String(), nullable=False),
        sa.Column("batch_size", sa.String(), nullable=False),
        sa.Column("batch_unit", sa.String(), nullable=False),
        sa.Column("equipment_json", sa.String(), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("plan_json", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report_path", sa.String(), nullable=True),
        sa.Column("report_sha256", sa.String(), nullable=True),
        sa.Column("report_pages", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("batch_id"),
        if_not_exists=True,
    )
    op.create_index(op.f("ix_batches_area"), "batches", ["area"], unique=False, if_not_exists=True)
    op.create_table(
        "erp_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("payload_json", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_erp_outbox_order_id"), "erp_outbox", ["order_id"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_erp_outbox_status"), "erp_outbox", ["status"], unique=False, if_not_exists=True
    )
    op.create_table(
        "erp_process_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("recipe_id", sa.String(length=64), nullable=False),
        sa.Column("recipe_version", sa.String(length=32), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_erp_process_orders_batch_id"),
        "erp_process_orders",
        ["batch_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_password_history_username"),
        "password_history",
        ["username"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "qms_deviations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("phase_instance", sa.String(), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("lots_json", sa.String(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disposition", sa.String(), nullable=False),
        sa.Column("rationale", sa.String(), nullable=False),
        sa.Column("capa_ref", sa.String(), nullable=False),
        sa.Column("disposition_by", sa.String(), nullable=False),
        sa.Column("disposition_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signature_json", sa.String(), nullable=False),
        sa.Column("signature_hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_qms_deviations_batch_id"),
        "qms_deviations",
        ["batch_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_qms_deviations_status"),
        "qms_deviations",
        ["status"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "qms_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result_json", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_table(
        "recipe_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipe_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("product_code", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source_text", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(), nullable=True),
        sa.Column("approval_signature_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipe_id", "version"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_recipe_versions_recipe_id"),
        "recipe_versions",
        ["recipe_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "sessions",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(), nullable=True),
        sa.Column("first_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("jti"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_sessions_username"), "sessions", ["username"], unique=False, if_not_exists=True
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=True),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("meaning", sa.String(), nullable=False),
        sa.Column("signed_at", sa.String(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_signatures_batch_id"), "signatures", ["batch_id"], unique=False, if_not_exists=True
    )
    op.create_table(
        "step_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("values_json", sa.String(), nullable=False),
        sa.Column("reading_json", sa.String(), nullable=True),
        sa.Column("comment", sa.String(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_step_records_batch_id"),
        "step_records",
        ["batch_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("roles", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("tokens_valid_from_ns", sa.BigInteger(), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("areas", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_users_username"), "users", ["username"], unique=True, if_not_exists=True
    )
    op.create_table(
        "wms_bins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("staging", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(op.f("ix_wms_bins_code"), "wms_bins", ["code"], unique=True, if_not_exists=True)
    op.create_table(
        "wms_genealogy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("output_lot", sa.String(length=64), nullable=False),
        sa.Column("input_lot", sa.String(length=64), nullable=False),
        sa.Column("input_material", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("output_lot", "input_lot"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_genealogy_batch_id"),
        "wms_genealogy",
        ["batch_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_genealogy_input_lot"),
        "wms_genealogy",
        ["input_lot"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_genealogy_output_lot"),
        "wms_genealogy",
        ["output_lot"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "wms_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("material_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("retest", sa.Date(), nullable=True),
        sa.Column("potency", sa.String(length=40), nullable=True),
        sa.Column("supplier_lot", sa.String(), nullable=False),
        sa.Column("produced_by_batch", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_lots_lot_number"), "wms_lots", ["lot_number"], unique=True, if_not_exists=True
    )
    op.create_index(
        op.f("ix_wms_lots_material_code"),
        "wms_lots",
        ["material_code"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_lots_produced_by_batch"),
        "wms_lots",
        ["produced_by_batch"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "wms_materials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gtin"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_materials_code"), "wms_materials", ["code"], unique=True, if_not_exists=True
    )
    op.create_table(
        "wms_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("material_code", sa.String(length=64), nullable=False),
        sa.Column("from_bin", sa.String(), nullable=False),
        sa.Column("to_bin", sa.String(), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("phase_instance", sa.String(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sscc", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_movements_batch_id"),
        "wms_movements",
        ["batch_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_movements_lot_number"),
        "wms_movements",
        ["lot_number"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_movements_sscc"), "wms_movements", ["sscc"], unique=False, if_not_exists=True
    )
    op.create_table(
        "wms_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result_json", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_table(
        "wms_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("phase_instance", sa.String(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("bin_code", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "lot_number", "bin_code"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_reservations_batch_id"),
        "wms_reservations",
        ["batch_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_reservations_key"),
        "wms_reservations",
        ["key"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_reservations_lot_number"),
        "wms_reservations",
        ["lot_number"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "wms_stock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("bin_code", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lot_number", "bin_code"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_wms_stock_lot_number"),
        "wms_stock",
        ["lot_number"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "qms_deviation_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deviation_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deviation_id"],
            ["qms_deviations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_qms_deviation_notes_deviation_id"),
        "qms_deviation_notes",
        ["deviation_id"],
        unique=False,
        if_not_exists=True,
    )


def downgrade() -> None:
    drop_guards()
    op.drop_index(op.f("ix_qms_deviation_notes_deviation_id"), table_name="qms_deviation_notes")
    op.drop_table("qms_deviation_notes")
    op.drop_index(op.f("ix_wms_stock_lot_number"), table_name="wms_stock")
    op.drop_table("wms_stock")
    op.drop_index(op.f("ix_wms_reservations_lot_number"), table_name="wms_reservations")
    op.drop_index(op.f("ix_wms_reservations_key"), table_name="wms_reservations")
    op.drop_index(op.f("ix_wms_reservations_batch_id"), table_name="wms_reservations")
    op.drop_table("wms_reservations")
    op.drop_table("wms_requests")
    op.drop_index(op.f("ix_wms_movements_sscc"), table_name="wms_movements")
    op.drop_index(op.f("ix_wms_movements_lot_number"), table_name="wms_movements")
    op.drop_index(op.f("ix_wms_movements_batch_id"), table_name="wms_movements")
    op.drop_table("wms_movements")
    op.drop_index(op.f("ix_wms_materials_code"), table_name="wms_materials")
    op.drop_table("wms_materials")
    op.drop_index(op.f("ix_wms_lots_produced_by_batch"), table_name="wms_lots")
    op.drop_index(op.f("ix_wms_lots_material_code"), table_name="wms_lots")
    op.drop_index(op.f("ix_wms_lots_lot_number"), table_name="wms_lots")
    op.drop_table("wms_lots")
    op.drop_index(op.f("ix_wms_genealogy_output_lot"), table_name="wms_genealogy")
    op.drop_index(op.f("ix_wms_genealogy_input_lot"), table_name="wms_genealogy")
    op.drop_index(op.f("ix_wms_genealogy_batch_id"), table_name="wms_genealogy")
    op.drop_table("wms_genealogy")
    op.drop_index(op.f("ix_wms_bins_code"), table_name="wms_bins")
    op.drop_table("wms_bins")
    op.drop_index(op.f("ix_users_username"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_step_records_batch_id"), table_name="step_records")
    op.drop_table("step_records")
    op.drop_index(op.f("ix_signatures_batch_id"), table_name="signatures")
    op.drop_table("signatures")
    op.drop_index(op.f("ix_sessions_username"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_index(op.f("ix_recipe_versions_recipe_id"), table_name="recipe_versions")
    op.drop_table("recipe_versions")
    op.drop_table("qms_requests")
    op.drop_index(op.f("ix_qms_deviations_status"), table_name="qms_deviations")
    op.drop_index(op.f("ix_qms_deviations_batch_id"), table_name="qms_deviations")
    op.drop_table("qms_deviations")
    op.drop_index(op.f("ix_password_history_username"), table_name="password_history")
    op.drop_table("password_history")
    op.drop_index(op.f("ix_erp_process_orders_batch_id"), table_name="erp_process_orders")
    op.drop_table("erp_process_orders")
    op.drop_index(op.f("ix_erp_outbox_status"), table_name="erp_outbox")
    op.drop_index(op.f("ix_erp_outbox_order_id"), table_name="erp_outbox")
    op.drop_table("erp_outbox")
    op.drop_index(op.f("ix_batches_area"), table_name="batches")
    op.drop_table("batches")
    op.drop_table("audit_events")


# Columns added during release 0.1, before migrations: a database made by an earlier 0.1
# build lacks them. Added before the tables are created (IF NOT EXISTS leaves an existing
# table as it is), so the indexes on them can be made.
_COLUMNS_ADDED_IN_0_1 = {
    "users": {
        "failed_attempts": (sa.Integer(), "0"),
        "locked_until": (sa.DateTime(timezone=True), None),
        "password_changed_at": (sa.DateTime(timezone=True), None),
        "must_change_password": (sa.Boolean(), "false"),
        "tokens_valid_from_ns": (sa.BigInteger(), "0"),
        "deactivated_at": (sa.DateTime(timezone=True), None),
        # Existing users and batches get no area: an administrator grants them.
        "areas": (sa.String(length=1000), "''"),
    },
    "batches": {"area": (sa.String(length=64), "''")},
    "sessions": {"first_signed_at": (sa.DateTime(timezone=True), None)},
    "erp_process_orders": {"batch_id": (sa.String(length=64), "''")},
    "erp_outbox": {
        "batch_id": (sa.String(length=64), "''"),
        "next_attempt_at": (sa.DateTime(timezone=True), None),
    },
}


def _add_columns_missing_before_adoption() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    for table, columns in _COLUMNS_ADDED_IN_0_1.items():
        if table not in tables:
            continue
        present = {c["name"] for c in inspector.get_columns(table)}
        for name, (type_, default) in columns.items():
            if name in present:
                continue
            # A NOT NULL column needs a value for the rows already there: its default.
            server_default = sa.text(default) if default is not None else None
            op.add_column(
                table,
                sa.Column(name, type_, nullable=default is None, server_default=server_default),
            )


# Audit entries, signatures and password history are evidence: no UPDATE, DELETE or
# TRUNCATE. Users may be updated (roles, lockout, deactivation) but never deleted, so an
# id is never reused.
APPEND_ONLY = ("audit_events", "signatures", "password_history")
NO_DELETE = ("users",)

_PG_REFUSE = """
CREATE OR REPLACE FUNCTION ebr_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ebr: % on % refused: audit entries and signatures are append-only; '
    'users are deactivated, never deleted', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$
"""


def guard_triggers(dialect: str) -> dict[str, str]:
    """Trigger name -> its CREATE statement, for `dialect` (sqlite or postgresql)."""
    wanted: dict[str, str] = {}
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            for what in ("UPDATE", "DELETE"):
                wanted[f"{table}_no_{what.lower()}"] = (
                    f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ebr: {table} is append-only; {what} "
                    "refused'); END"
                )
        for table in NO_DELETE:
            wanted[f"{table}_no_delete"] = (
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ebr: {table} rows are never deleted; "
                "deactivate'); END"
            )
        return wanted
    for table in APPEND_ONLY + NO_DELETE:
        rows = "UPDATE OR DELETE" if table in APPEND_ONLY else "DELETE"
        name = f"{table}_no_change" if table in APPEND_ONLY else f"{table}_no_delete"
        wanted[name] = (
            f"CREATE TRIGGER {name} BEFORE {rows} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ebr_refuse_change()"
        )
        wanted[f"{table}_no_truncate"] = (
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ebr_refuse_change()"
        )
    return wanted


def existing_triggers(bind: sa.engine.Connection) -> set[str]:
    if bind.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return {row[0] for row in bind.execute(sa.text(sql))}


def create_guards() -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("sqlite", "postgresql"):
        raise NotImplementedError(
            f"ebr guards audit tables on SQLite and PostgreSQL only, not {bind.dialect.name}"
        )
    if bind.dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
    present = existing_triggers(bind)
    for name, create in guard_triggers(bind.dialect.name).items():
        if name not in present:
            op.execute(create)


def drop_guards() -> None:
    bind = op.get_bind()
    for name in guard_triggers(bind.dialect.name):
        if bind.dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            table = next(t for t in APPEND_ONLY + NO_DELETE if name.startswith(t))
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ebr_refuse_change()")
