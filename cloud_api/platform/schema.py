"""Cloud tables (SQLAlchemy Core). Alembic migrations create them; a test checks the two agree.

Text key parts that may be absent (customer, gtin, sku, lot) are stored as '' rather than
NULL so that unique keys work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud_api.platform.db import UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# BIGINT primary keys that are still SQLite rowid aliases.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(63), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

warehouses = sa.Table(
    "warehouses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("code", sa.String(63), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("address", sa.String(300), nullable=False, server_default=""),
    sa.Column("area_m2", sa.Numeric(12, 2), nullable=True),  # business area: period pricing
    sa.UniqueConstraint("tenant_id", "code"),
)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=False),
    sa.Column("code", sa.String(63), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("kind", sa.String(32), nullable=False, server_default="storage"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("warehouse_id", "code"),
)

locations = sa.Table(
    "locations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=False),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("warehouse_id", "code"),
)

# 货主: the cargo owners whose goods a tenant stores.
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),  # what movements carry as `customer`
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("contacts", sa.JSON, nullable=False),  # [{name, phone, email, role}]
    sa.Column("contracts", sa.JSON, nullable=False),  # [{number, starts, ends, terms}]
    # Rate card in yuan: storage per tonne-day, handling per piece in and out, monthly minimum.
    sa.Column("storage_per_tonne_day", sa.Numeric(12, 4), nullable=False, server_default="0"),
    sa.Column("handling_in_per_piece", sa.Numeric(12, 4), nullable=False, server_default="0"),
    sa.Column("handling_out_per_piece", sa.Numeric(12, 4), nullable=False, server_default="0"),
    sa.Column("minimum_monthly_charge", sa.Numeric(12, 2), nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("tenant_id", "code"),
)

customer_notes = sa.Table(
    "customer_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("author", sa.String(254), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    # Kept to sign deliveries (HMAC-SHA256); shown once, like API keys.
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=False),
    # Globally unique: it is the MQTT username and client id.
    sa.Column("code", sa.String(63), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="edge"),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    # The broker's own hash format, so the password file can be rebuilt from the database.
    sa.Column("mqtt_password_hash", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("online", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status_at", UTCDateTime, nullable=True),
    sa.Column("current_epoch", sa.String(64), nullable=True),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
)

service_accounts = sa.Table(
    "service_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(63), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),  # "ingest"
    sa.Column("mqtt_password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("name", sa.String(100), nullable=False, server_default=""),
    sa.Column("phone", sa.String(32), nullable=False, server_default=""),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("password_changed_at", UTCDateTime, nullable=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
)

# 安全策略: one row per tenant; absent means the defaults in cloud_api.accounts.security.
security_policies = sa.Table(
    "security_policies",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=True),
    sa.Column("actor_user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("actor", sa.String(254), nullable=False),  # email, key name, "system"
    sa.Column("via_grant_id", sa.Integer, nullable=True),  # platform staff acting in a tenant
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False, server_default=""),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_audit_log_tenant_id_id", "tenant_id", "id"),
)

one_time_codes = sa.Table(
    "one_time_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),  # password_reset | login
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)

# Platform staff act inside a tenant only through a grant its owner or an admin gave: offered
# by them (active at once) or requested by staff and approved. expires_at of a request is a
# placeholder until approval sets it to then + hours; "expired" is computed from it.
staff_grants = sa.Table(
    "staff_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("staff_user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    # Who offered it, or (a request) the staff member until an owner or admin approves it.
    sa.Column("granted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    # requested | active | declined | revoked
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("scopes", sa.JSON, nullable=False, server_default="[]"),  # read, inbound, ...
    sa.Column("hours", sa.Integer, nullable=False, server_default="0"),
    # User ids without foreign keys, so migration 0007 could add them without a rebuild.
    sa.Column("requested_by", sa.Integer, nullable=True),  # the staff member who asked
    sa.Column("approved_by", sa.Integer, nullable=True),  # the owner/admin who made it active
    sa.Column("approved_at", UTCDateTime, nullable=True),  # active since
    sa.Column("declined_at", UTCDateTime, nullable=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    # SHA-256 of a 256-bit random token: a fast hash is enough for secrets with that entropy.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="session"),  # or api_key
    sa.Column("scopes", sa.JSON, nullable=True),  # API keys: what they may do
    sa.Column("prefix", sa.String(16), nullable=False, server_default=""),  # shown in lists
    sa.Column("grant_id", sa.Integer, sa.ForeignKey("staff_grants.id"), nullable=True),
    sa.Column("password_expired", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=False),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("epoch", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("movement_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("gtin", sa.String(14), nullable=False, server_default=""),
    sa.Column("sku", sa.String(64), nullable=False, server_default=""),
    sa.Column("lot", sa.String(20), nullable=False, server_default=""),
    sa.Column("expiry_date", sa.Date, nullable=True),
    sa.Column("serial", sa.String(20), nullable=True),
    sa.Column("sscc", sa.String(18), nullable=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("weight_g", sa.BigInteger, nullable=True),
    # Change of the warehouse's stock caused by this movement (pieces, grams).
    sa.Column("qty_delta", sa.Integer, nullable=False),
    sa.Column("weight_delta_g", sa.BigInteger, nullable=False),
    sa.Column("customer", sa.String(64), nullable=False, server_default=""),
    sa.Column("location", sa.String(64), nullable=True),
    sa.Column("to_location", sa.String(64), nullable=True),
    sa.Column("operator", sa.String(64), nullable=True),
    sa.Column("reverses", sa.String(64), nullable=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("body_hash", sa.String(32), nullable=False),
    # occurred_at as UTC epoch milliseconds: metering sums a year of movements in one scan of
    # the covering index below instead of parsing a million timestamps.
    sa.Column("occurred_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("device_id", "epoch", "seq"),
    sa.Index("ix_ledger_tenant_id_id", "tenant_id", "id"),
    sa.Index("ix_ledger_tenant_id_occurred_at", "tenant_id", "occurred_at"),
    sa.Index("ix_ledger_metering", "tenant_id", "occurred_ms", "weight_delta_g", "type", "qty"),
    # A cargo owner's timeline (CRM), newest first, without scanning the tenant's ledger.
    sa.Index("ix_ledger_tenant_id_customer_occurred_at", "tenant_id", "customer", "occurred_at"),
)

stock = sa.Table(
    "stock",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), primary_key=True),
    sa.Column("customer", sa.String(64), primary_key=True),
    sa.Column("gtin", sa.String(14), primary_key=True),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("lot", sa.String(20), primary_key=True),
    sa.Column("qty", sa.BigInteger, nullable=False),
    sa.Column("weight_g", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

device_sync = sa.Table(
    "device_sync",
    metadata,
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("epoch", sa.String(64), primary_key=True),
    # Highest seq such that every seq up to it is committed (or dead-lettered).
    sa.Column("acked_through", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("max_seq_seen", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("edge_last_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("filed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("batches", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("clock_skew_s", sa.Float, nullable=True),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_hello_at", UTCDateTime, nullable=True),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=True),
    sa.Column("epoch", sa.String(64), nullable=True),
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.UniqueConstraint("device_id", "epoch", "seq"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("epoch", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("body_hash", sa.String(32), nullable=False),
    sa.Column("existing_hash", sa.String(32), nullable=False),
    sa.Column("item", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("device_id", "epoch", "seq", "body_hash"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Index("ix_alerts_tenant_id_id", "tenant_id", "id"),
)

# --- editions, prepaid packages, metering, reminders, licences (issue 6) ------------------

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("edition", sa.String(16), nullable=True),
    sa.Column("add_on", sa.String(32), nullable=True),
    sa.Column("billing_mode", sa.String(8), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("area", sa.String(8), nullable=True),
    sa.Column("business_area_m2", sa.Numeric(12, 2), nullable=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_yuan", sa.Numeric(14, 2), nullable=False),
    sa.Column("total_yuan", sa.Numeric(16, 2), nullable=False),
    sa.Column("units", sa.Numeric(20, 3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending_payment | paid | cancelled
    sa.Column("payment_reference", sa.String(100), nullable=True, unique=True),
    sa.Column("created_by", sa.String(254), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("paid_at", UTCDateTime, nullable=True),
    sa.Column("cancelled_at", UTCDateTime, nullable=True),
    sa.Index("ix_orders_tenant_id_id", "tenant_id", "id"),
)

packages = sa.Table(
    "packages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, unique=True),
    sa.Column("edition", sa.String(16), nullable=True),
    sa.Column("add_on", sa.String(32), nullable=True),
    sa.Column("billing_mode", sa.String(8), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),  # tonne_day | piece | year
    sa.Column("total", sa.Numeric(20, 3), nullable=False),
    sa.Column("consumed", sa.Numeric(20, 3), nullable=False, server_default="0"),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),  # period packages and add-ons
    sa.Column("activated_at", UTCDateTime, nullable=False),
    sa.Index("ix_packages_tenant_id_activated_at", "tenant_id", "activated_at"),
)

# One row per tenant and closed business day; the integral is kept exact in gram·ms.
usage_days = sa.Table(
    "usage_days",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("gram_ms", sa.Numeric(32, 0), nullable=False),
    sa.Column("closing_g", sa.BigInteger, nullable=False),
    sa.Column("pieces_in", sa.BigInteger, nullable=False),
    sa.Column("pieces_out", sa.BigInteger, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
)

# What was charged against packages: a day's usage once, and adjustments when late
# movements change a closed day. Never rewritten.
usage_postings = sa.Table(
    "usage_postings",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("amount", sa.Numeric(20, 6), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # usage | adjustment
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("posted_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant_id", "day", "unit", "revision"),
)

package_allocations = sa.Table(
    "package_allocations",
    metadata,
    sa.Column("posting_id", sa.BigInteger, sa.ForeignKey("usage_postings.id"), primary_key=True),
    sa.Column("package_id", sa.Integer, sa.ForeignKey("packages.id"), primary_key=True),
    sa.Column("amount", sa.Numeric(20, 6), nullable=False),
)

metering_state = sa.Table(
    "metering_state",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("last_ledger_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Edge-triggered reminders: a key fires once, and re-arms when the condition clears.
reminder_state = sa.Table(
    "reminder_state",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("armed", sa.Boolean, nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=True),
)

# 消息订阅: per message type, which channels and which users.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("message_type", sa.String(64), primary_key=True),
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),  # user ids
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("message_type", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("read_at", UTCDateTime, nullable=True),
    sa.Index("ix_messages_tenant_id_user_id_id", "tenant_id", "user_id", "id"),
)

# SMS and email waiting to be sent; a channel that fails is retried without blocking others.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("message_type", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # sms | email
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # SMS template parameters
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
)

licences = sa.Table(
    "licences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("serial", sa.String(40), nullable=False, unique=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    # A box's latest licence: answered on every hello and by the ingest worker's sweep.
    sa.Index("ix_licences_device_id_issued_at", "device_id", "issued_at"),
)

# 任务管理 (professional and basic editions).
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),  # receive | putaway | pick | ship | count
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("assignee", sa.String(254), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | in_progress | done | cancelled
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# 行业插件 (professional edition).
tenant_plugins = sa.Table(
    "tenant_plugins",
    metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("plugin", sa.String(64), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("enabled_at", UTCDateTime, nullable=False),
)

# --- expected goods: ASN and shipment lines sent down to the edge boxes (issue 7) ----------

# One line per expected pallet. ``version`` is the warehouse's change stamp when the line was
# made or last changed: MAX(version) per warehouse says what a box has seen, and changes are
# taken one at a time per warehouse, so the stamps follow commit order.
expected_lines = sa.Table(
    "expected_lines",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),  # in | out
    sa.Column("sscc", sa.String(18), nullable=True),
    sa.Column("gtin", sa.String(14), nullable=True),
    sa.Column("lot", sa.String(20), nullable=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("weight_g", sa.BigInteger, nullable=True),
    sa.Column("customer", sa.String(64), nullable=True),  # cargo owner code
    sa.Column("reference", sa.String(64), nullable=True),  # ASN or shipment number
    sa.Column("gate", sa.String(32), nullable=True),  # an edge gate code; None: any gate
    sa.Column("status", sa.String(16), nullable=False),  # open | cancelled | received | shipped
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("movement_id", sa.String(64), nullable=True),  # the receipt or shipment
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Index("ix_expected_lines_tenant_id_warehouse_id_id", "tenant_id", "warehouse_id", "id"),
    sa.Index("ix_expected_lines_warehouse_id_status_id", "warehouse_id", "status", "id"),
    sa.Index("ix_expected_lines_warehouse_id_version", "warehouse_id", "version"),
    sa.Index("ix_expected_lines_warehouse_id_sscc", "warehouse_id", "sscc"),
)

# The change stamp each edge box was last sent, so the ingest sweep sends only what changed.
expected_deliveries = sa.Table(
    "expected_deliveries",
    metadata,
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
)

# 定制服务: a tenant's request for custom work, staff's quote on it, and the order it became.
custom_services = sa.Table(
    "custom_services",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("warehouses", sa.JSON, nullable=False),  # warehouse codes it concerns
    sa.Column("private_deployment", sa.Boolean, nullable=False),
    sa.Column("contact_name", sa.String(100), nullable=False),
    sa.Column("contact_phone", sa.String(32), nullable=False),
    sa.Column("contact_email", sa.String(254), nullable=False),
    # submitted | quoted | accepted | withdrawn | declined (paid and cancelled: its order's)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("price_yuan", sa.Numeric(16, 2), nullable=True),
    sa.Column("scope", sa.Text, nullable=True),  # what the quote covers
    sa.Column("delivery_working_days", sa.Integer, nullable=True),
    sa.Column("quote_valid_until", UTCDateTime, nullable=True),
    sa.Column("quoted_by", sa.String(254), nullable=True),
    sa.Column("quoted_at", UTCDateTime, nullable=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=True, unique=True),
    sa.Column("created_by", sa.String(254), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_custom_services_tenant_id_id", "tenant_id", "id"),
    sa.Index("ix_custom_services_status_id", "status", "id"),
)

# What happened to a request, in order: each state change and each message of either side.
custom_service_events = sa.Table(
    "custom_service_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("custom_services.id"), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),  # tenant | platform
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # submitted | quoted | ... | message
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_custom_service_events_request_id_id", "request_id", "id"),
)
