"""Expected goods: ASN and shipment lines per warehouse, and what each edge box was sent

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud_api.platform.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = cloud_api.platform.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "expected_lines",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("sscc", sa.String(length=18), nullable=True),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("weight_g", sa.BigInteger(), nullable=True),
        sa.Column("customer", sa.String(length=64), nullable=True),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("gate", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("movement_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_expected_lines_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_expected_lines_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expected_lines")),
    )
    for name, columns in (
        ("ix_expected_lines_tenant_id_warehouse_id_id", ["tenant_id", "warehouse_id", "id"]),
        ("ix_expected_lines_warehouse_id_status_id", ["warehouse_id", "status", "id"]),
        ("ix_expected_lines_warehouse_id_version", ["warehouse_id", "version"]),
        ("ix_expected_lines_warehouse_id_sscc", ["warehouse_id", "sscc"]),
    ):
        op.create_index(name, "expected_lines", columns, unique=False)
    op.create_table(
        "expected_deliveries",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_expected_deliveries_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_expected_deliveries_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_expected_deliveries")),
    )


def downgrade() -> None:
    op.drop_table("expected_deliveries")
    for name in (
        "ix_expected_lines_warehouse_id_sscc",
        "ix_expected_lines_warehouse_id_version",
        "ix_expected_lines_warehouse_id_status_id",
        "ix_expected_lines_tenant_id_warehouse_id_id",
    ):
        op.drop_index(name, table_name="expected_lines")
    op.drop_table("expected_lines")
