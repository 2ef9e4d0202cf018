"""Alembic environment: migrations run on the connection platform.db.upgrade hands over."""

from __future__ import annotations

from alembic import context

from cloud_api.platform.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `cangyun cloud init` (cloud_api.platform.db.upgrade)"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
