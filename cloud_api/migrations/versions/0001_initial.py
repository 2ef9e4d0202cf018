"""initial: tenants, devices, ledger, stock, sync

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud_api.platform.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=63), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('mqtt_password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_accounts')),
    sa.UniqueConstraint('username', name=op.f('uq_service_accounts_username'))
    )
    op.create_table('tenants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), server_default='Asia/Shanghai', nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('code', name=op.f('uq_tenants_code'))
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_alerts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_tenant_id_id', ['tenant_id', 'id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_users_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('warehouses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_warehouses_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warehouses')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_warehouses_tenant_id_code'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_api_tokens_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='edge', nullable=False),
    sa.Column('name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('mqtt_password_hash', sa.String(length=255), nullable=True),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('online', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('status_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('current_epoch', sa.String(length=64), nullable=True),
    sa.Column('last_seen_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_devices_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_devices_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('code', name=op.f('uq_devices_code'))
    )
    op.create_table('stock',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('customer', sa.String(length=64), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('lot', sa.String(length=20), nullable=False),
    sa.Column('qty', sa.BigInteger(), nullable=False),
    sa.Column('weight_g', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_stock_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('tenant_id', 'warehouse_id', 'customer', 'gtin', 'sku', 'lot', name=op.f('pk_stock'))
    )
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('epoch', sa.String(length=64), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_dead_letters_device_id_devices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dead_letters_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
    sa.UniqueConstraint('device_id', 'epoch', 'seq', name=op.f('uq_dead_letters_device_id_epoch_seq'))
    )
    op.create_table('device_sync',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.String(length=64), nullable=False),
    sa.Column('acked_through', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('max_seq_seen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('edge_last_seq', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('filed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('duplicates', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('batches', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('clock_skew_s', sa.Float(), nullable=True),
    sa.Column('first_seen_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_hello_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_device_sync_device_id_devices')),
    sa.PrimaryKeyConstraint('device_id', 'epoch', name=op.f('pk_device_sync'))
    )
    op.create_table('ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('movement_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('gtin', sa.String(length=14), server_default='', nullable=False),
    sa.Column('sku', sa.String(length=64), server_default='', nullable=False),
    sa.Column('lot', sa.String(length=20), server_default='', nullable=False),
    sa.Column('expiry_date', sa.Date(), nullable=True),
    sa.Column('serial', sa.String(length=20), nullable=True),
    sa.Column('sscc', sa.String(length=18), nullable=True),
    sa.Column('qty', sa.Integer(), nullable=False),
    sa.Column('weight_g', sa.BigInteger(), nullable=True),
    sa.Column('qty_delta', sa.Integer(), nullable=False),
    sa.Column('weight_delta_g', sa.BigInteger(), nullable=False),
    sa.Column('customer', sa.String(length=64), server_default='', nullable=False),
    sa.Column('location', sa.String(length=64), nullable=True),
    sa.Column('to_location', sa.String(length=64), nullable=True),
    sa.Column('operator', sa.String(length=64), nullable=True),
    sa.Column('reverses', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('body_hash', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_ledger_device_id_devices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_ledger_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger')),
    sa.UniqueConstraint('device_id', 'epoch', 'seq', name=op.f('uq_ledger_device_id_epoch_seq'))
    )
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_tenant_id_id', ['tenant_id', 'id'], unique=False)
        batch_op.create_index('ix_ledger_tenant_id_occurred_at', ['tenant_id', 'occurred_at'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('body_hash', sa.String(length=32), nullable=False),
    sa.Column('existing_hash', sa.String(length=32), nullable=False),
    sa.Column('item', sa.Text(), nullable=False),
    sa.Column('received_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_quarantine_device_id_devices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_quarantine_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine')),
    sa.UniqueConstraint('device_id', 'epoch', 'seq', 'body_hash', name=op.f('uq_quarantine_device_id_epoch_seq_body_hash'))
    )


def downgrade() -> None:
    op.drop_table('quarantine')
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_tenant_id_occurred_at')
        batch_op.drop_index('ix_ledger_tenant_id_id')

    op.drop_table('ledger')
    op.drop_table('device_sync')
    op.drop_table('dead_letters')
    op.drop_table('stock')
    op.drop_table('devices')
    op.drop_table('api_tokens')
    op.drop_table('warehouses')
    op.drop_table('users')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_tenant_id_id')

    op.drop_table('alerts')
    op.drop_table('tenants')
    op.drop_table('service_accounts')
