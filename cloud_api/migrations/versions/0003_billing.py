"""Editions, prepaid packages, metering, reminders, licences, tasks, plugins

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud_api.platform.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metering_state',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('last_ledger_id', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('updated_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_metering_state_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_metering_state'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('message_type', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_notifications_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('edition', sa.String(length=16), nullable=True),
    sa.Column('add_on', sa.String(length=32), nullable=True),
    sa.Column('billing_mode', sa.String(length=8), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('area', sa.String(length=8), nullable=True),
    sa.Column('business_area_m2', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_yuan', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('total_yuan', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('units', sa.Numeric(precision=20, scale=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payment_reference', sa.String(length=100), nullable=True),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_orders_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('payment_reference', name=op.f('uq_orders_payment_reference'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_tenant_id_id', ['tenant_id', 'id'], unique=False)

    op.create_table('reminder_state',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('armed', sa.Boolean(), nullable=False),
    sa.Column('fired_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_reminder_state_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'key', name=op.f('pk_reminder_state'))
    )
    op.create_table('subscriptions',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('message_type', sa.String(length=64), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('updated_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_subscriptions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'message_type', name=op.f('pk_subscriptions'))
    )
    op.create_table('tenant_plugins',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('plugin', sa.String(length=64), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('enabled_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_plugins_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'plugin', name=op.f('pk_tenant_plugins'))
    )
    op.create_table('usage_days',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('gram_ms', sa.Numeric(precision=32, scale=0), nullable=False),
    sa.Column('closing_g', sa.BigInteger(), nullable=False),
    sa.Column('pieces_in', sa.BigInteger(), nullable=False),
    sa.Column('pieces_out', sa.BigInteger(), nullable=False),
    sa.Column('closed_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_days_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'day', name=op.f('pk_usage_days'))
    )
    op.create_table('usage_postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('posted_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_postings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_postings')),
    sa.UniqueConstraint('tenant_id', 'day', 'unit', 'revision', name=op.f('uq_usage_postings_tenant_id_day_unit_revision'))
    )
    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('message_type', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_messages_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_messages_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_tenant_id_user_id_id', ['tenant_id', 'user_id', 'id'], unique=False)

    op.create_table('packages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('edition', sa.String(length=16), nullable=True),
    sa.Column('add_on', sa.String(length=32), nullable=True),
    sa.Column('billing_mode', sa.String(length=8), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Numeric(precision=20, scale=3), nullable=False),
    sa.Column('consumed', sa.Numeric(precision=20, scale=3), server_default='0', nullable=False),
    sa.Column('starts_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('activated_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_packages_order_id_orders')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_packages_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_packages')),
    sa.UniqueConstraint('order_id', name=op.f('uq_packages_order_id'))
    )
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.create_index('ix_packages_tenant_id_activated_at', ['tenant_id', 'activated_at'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('assignee', sa.String(length=254), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tasks_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_tasks_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    op.create_table('licences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('issued_at', cloud_api.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_licences_device_id_devices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_licences_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licences')),
    sa.UniqueConstraint('serial', name=op.f('uq_licences_serial'))
    )
    op.create_table('package_allocations',
    sa.Column('posting_id', sa.BigInteger(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_package_allocations_package_id_packages')),
    sa.ForeignKeyConstraint(['posting_id'], ['usage_postings.id'], name=op.f('fk_package_allocations_posting_id_usage_postings')),
    sa.PrimaryKeyConstraint('posting_id', 'package_id', name=op.f('pk_package_allocations'))
    )


def downgrade() -> None:
    op.drop_table('package_allocations')
    op.drop_table('licences')
    op.drop_table('tasks')
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.drop_index('ix_packages_tenant_id_activated_at')

    op.drop_table('packages')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_tenant_id_user_id_id')

    op.drop_table('messages')
    op.drop_table('usage_postings')
    op.drop_table('usage_days')
    op.drop_table('tenant_plugins')
    op.drop_table('subscriptions')
    op.drop_table('reminder_state')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_tenant_id_id')

    op.drop_table('orders')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_next_attempt_at')

    op.drop_table('notifications')
    op.drop_table('metering_state')
