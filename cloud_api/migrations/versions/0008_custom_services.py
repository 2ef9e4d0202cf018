"""定制服务: custom-service requests, their quotes and their history

Revision ID: 0008
Revises: 0007

Two new tables, so nothing existing is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud_api.platform.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Timestamp = cloud_api.platform.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "custom_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("warehouses", sa.JSON(), nullable=False),
        sa.Column("private_deployment", sa.Boolean(), nullable=False),
        sa.Column("contact_name", sa.String(length=100), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("price_yuan", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("delivery_working_days", sa.Integer(), nullable=True),
        sa.Column("quote_valid_until", Timestamp, nullable=True),
        sa.Column("quoted_by", sa.String(length=254), nullable=True),
        sa.Column("quoted_at", Timestamp, nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_custom_services_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_custom_services_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_services")),
        sa.UniqueConstraint("order_id", name=op.f("uq_custom_services_order_id")),
    )
    op.create_index("ix_custom_services_status_id", "custom_services", ["status", "id"])
    op.create_index("ix_custom_services_tenant_id_id", "custom_services", ["tenant_id", "id"])
    op.create_table(
        "custom_service_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["custom_services.id"],
            name=op.f("fk_custom_service_events_request_id_custom_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_service_events")),
    )
    op.create_index(
        "ix_custom_service_events_request_id_id", "custom_service_events", ["request_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("custom_service_events")
    op.drop_table("custom_services")
