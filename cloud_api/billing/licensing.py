"""Offline licences for edge boxes, issued by the cloud (the token format is cangyun.licence).

A licence is a lease: it says what the tenant's packages allow (edition, features, add-ons,
whether new receipts are allowed) and holds for LEASE at most, so a box that stops hearing
from the cloud locks its gated features after LEASE plus the grace period. The cloud hands
a box its licence on every hello, and the ingest worker's sweep re-issues a licence once a
day and as soon as the tenant pays an order, so a renewal unlocks the boxes in seconds.

A tenant that has never bought anything gets no licence: its boxes run as the edge does
before its first licence (docs/licences.md). Issuing is idempotent enough for several
ingest workers: a licence still fresh and saying the same is sent again, not re-signed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from cangyun import licence as tokens
from cangyun import wire
from cangyun.licence import Licence
from cloud_api.billing.store import TenantBilling
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import devices, licences, orders, tenants, warehouses
from cloud_api.settings import BillingSection

log = logging.getLogger(__name__)

RENEW_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Terms:
    """How long a licence holds and how long an offline box keeps working after it
    (``[billing] licence_days`` and ``licence_grace_days``)."""

    lease: timedelta = timedelta(days=30)
    grace_days: int = 7

    @classmethod
    def from_settings(cls, billing: BillingSection) -> Terms:
        return cls(timedelta(days=billing.licence_days), billing.licence_grace_days)


DEFAULT_TERMS = Terms()


@dataclass(frozen=True)
class EdgeBox:
    id: int
    code: str
    tenant_id: int
    tenant: str
    warehouse: str


def grant(
    box: EdgeBox, engine: Engine, now: datetime, terms: Terms = DEFAULT_TERMS
) -> Licence | None:
    """What the tenant's packages allow this box now; None for a tenant that never bought."""
    held = TenantBilling(engine, box.tenant_id).entitlement(now)
    if not held.has_bought:
        return None
    valid_until = now + terms.lease
    if held.period_ends_at is not None and held.period_ends_at < valid_until:
        valid_until = held.period_ends_at  # a year package ends on its own date
    valid_until = max(valid_until, now + timedelta(minutes=1))  # issue() refuses the past
    return Licence(
        serial=f"LIC-{uuid.uuid4().hex[:24].upper()}",
        tenant=box.tenant,
        warehouse=box.warehouse,
        device=box.code,
        edition=held.edition,
        features=tuple(sorted(held.features)),
        add_ons=tuple(sorted(held.add_ons)),
        inbound_allowed=held.inbound_allowed,
        valid_until=valid_until,
        issued_at=now,
        grace_days=terms.grace_days,
    )


def _same_terms(a: Licence, b: Licence) -> bool:
    return (a.edition, a.features, a.add_ons, a.inbound_allowed) == (
        b.edition,
        b.features,
        b.add_ons,
        b.inbound_allowed,
    )


def licence_token(
    engine: Engine,
    key: Ed25519PrivateKey,
    box: EdgeBox,
    now: datetime,
    *,
    terms: Terms = DEFAULT_TERMS,
    reuse: bool = True,
) -> str | None:
    """The token this box should hold now, kept in ``licences``. With ``reuse``, the latest
    one is sent again when it is under a day old, no order was paid since, and it says the
    same (a box reconnecting often does not make a licence each time)."""
    granted = grant(box, engine, now, terms)
    if granted is None:
        return None
    if reuse:
        with engine.connect() as conn:
            latest = conn.execute(
                sa.select(licences.c.token, licences.c.payload, licences.c.issued_at)
                .where(licences.c.device_id == box.id)
                .order_by(licences.c.issued_at.desc(), licences.c.id.desc())
                .limit(1)
            ).first()
            last_paid = conn.execute(
                sa.select(sa.func.max(orders.c.paid_at)).where(orders.c.tenant_id == box.tenant_id)
            ).scalar()
        if (
            latest is not None
            and now - latest.issued_at < RENEW_AFTER
            and (last_paid is None or latest.issued_at >= last_paid)
            and _same_terms(Licence.from_payload(latest.payload), granted)
        ):
            return str(latest.token)
    token = tokens.issue(granted, key)
    with atomic(engine) as conn:
        conn.execute(
            licences.insert().values(
                tenant_id=box.tenant_id,
                device_id=box.id,
                serial=granted.serial,
                payload=granted.to_payload(),
                token=token,
                issued_at=now,
            )
        )
    log.info(
        "licence %s for %s: %s, inbound %s, until %s",
        granted.serial,
        box.code,
        granted.edition,
        "allowed" if granted.inbound_allowed else "refused",
        granted.valid_until.isoformat(),
    )
    return token


def command(token: str) -> bytes:
    """The ``down/cmd`` message that installs a licence on the box."""
    command_id = f"licence-{uuid.uuid4().hex[:12]}"
    return wire.encode_licence(wire.LicencePush(token), command_id)


def boxes_due(engine: Engine, now: datetime, limit: int = 500) -> list[EdgeBox]:
    """Edge boxes of paying tenants whose licence is missing, a day old, or older than the
    tenant's last paid order (a renewal or an upgrade)."""
    last_issued = (
        sa.select(sa.func.max(licences.c.issued_at))
        .where(licences.c.device_id == devices.c.id)
        .scalar_subquery()
    )
    last_paid = (
        sa.select(sa.func.max(orders.c.paid_at))
        .where(orders.c.tenant_id == devices.c.tenant_id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            devices.c.id,
            devices.c.code,
            devices.c.tenant_id,
            tenants.c.code.label("tenant"),
            warehouses.c.code.label("warehouse"),
        )
        .join(tenants, tenants.c.id == devices.c.tenant_id)
        .join(warehouses, warehouses.c.id == devices.c.warehouse_id)
        .where(
            devices.c.kind == "edge",
            devices.c.revoked_at.is_(None),
            last_paid.is_not(None),
            sa.or_(
                last_issued.is_(None),
                last_issued < now - RENEW_AFTER,
                last_issued < last_paid,
            ),
        )
        .order_by(devices.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [EdgeBox(*row) for row in conn.execute(query)]


def device_licences(engine: Engine, tenant_id: int) -> list[dict[str, object]]:
    """The latest licence of each of the tenant's boxes, for the licence page."""
    latest = (
        sa.select(licences.c.device_id, sa.func.max(licences.c.id).label("id"))
        .where(licences.c.tenant_id == tenant_id)
        .group_by(licences.c.device_id)
        .subquery()
    )
    query = (
        sa.select(devices.c.code, licences.c.serial, licences.c.payload, licences.c.issued_at)
        .join(latest, latest.c.id == licences.c.id)
        .join(devices, devices.c.id == licences.c.device_id)
        .order_by(devices.c.code)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "device": row.code,
            "serial": row.serial,
            "issued_at": row.issued_at.isoformat(),
            "valid_until": row.payload["valid_until"],
            "inbound_allowed": row.payload["inbound_allowed"],
            "add_ons": row.payload["add_ons"],
        }
        for row in rows
    ]


__all__ = [
    "EdgeBox",
    "DEFAULT_TERMS",
    "RENEW_AFTER",
    "Terms",
    "boxes_due",
    "command",
    "device_licences",
    "grant",
    "licence_token",
]
