"""Staff grants (代运营): requested or offered, approved, scoped

Revision ID: 0007
Revises: 0006

Columns are only added, without foreign keys, so SQLite takes a plain ALTER TABLE ADD COLUMN:
a table rebuild would drop staff_grants, which api_tokens rows reference (foreign keys are
on). Grants made before scopes existed let staff do everything staff could do: they get
every scope, and revoked ones their status.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud_api.platform.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Timestamp = cloud_api.platform.db.UTCDateTime(timezone=True)
EVERY_SCOPE = '["inbound", "outbound", "read", "reports"]'


def upgrade() -> None:
    with op.batch_alter_table("staff_grants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="active", nullable=False)
        )
        batch_op.add_column(sa.Column("scopes", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("hours", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("requested_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("approved_at", Timestamp, nullable=True))
        batch_op.add_column(sa.Column("declined_at", Timestamp, nullable=True))
    op.execute(
        f"UPDATE staff_grants SET scopes = '{EVERY_SCOPE}', approved_by = granted_by,"
        " approved_at = created_at"
    )
    op.execute("UPDATE staff_grants SET status = 'revoked' WHERE revoked_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("staff_grants", schema=None) as batch_op:
        for name in (
            "declined_at",
            "approved_at",
            "approved_by",
            "requested_by",
            "hours",
            "scopes",
            "status",
        ):
            batch_op.drop_column(name)
