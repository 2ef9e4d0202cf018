"""Ledger: occurred_at as epoch milliseconds with a covering index for metering

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("occurred_ms", sa.BigInteger(), server_default="0", nullable=False)
        )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE ledger SET occurred_ms = FLOOR(EXTRACT(EPOCH FROM occurred_at) * 1000)::bigint"
        )
    else:
        op.execute(
            "UPDATE ledger SET occurred_ms = CAST(strftime('%s', occurred_at) AS INTEGER) * 1000"
            " + COALESCE(CAST(substr(occurred_at, 21, 3) AS INTEGER), 0)"
        )
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_metering",
            ["tenant_id", "occurred_ms", "weight_delta_g", "type", "qty"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_metering")
        batch_op.drop_column("occurred_ms")
