"""Indexes for a cargo owner's timeline and a box's latest licence

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_tenant_id_customer_occurred_at",
        "ledger",
        ["tenant_id", "customer", "occurred_at"],
        unique=False,
    )
    op.create_index(
        "ix_licences_device_id_issued_at", "licences", ["device_id", "issued_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_licences_device_id_issued_at", table_name="licences")
    op.drop_index("ix_ledger_tenant_id_customer_occurred_at", table_name="ledger")
