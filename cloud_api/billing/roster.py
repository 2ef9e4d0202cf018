"""Every tenant as platform staff see it (平台运营): edition, packages, orders awaiting payment.

A read-only view across tenants for the staff console; each tenant's packages and edition
come from its own ``TenantBilling``, so what staff read is what the tenant is held to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.timeutil import utcnow
from cloud_api.billing.store import TenantBilling
from cloud_api.platform.schema import orders, tenants

PLATFORM_TENANT = "platform"  # the staff's own tenant: not a customer, not listed
SHOWN_PACKAGES = ("active", "scheduled")  # what is left and what comes next


def tenants_page(
    engine: Engine, q: str, *, after: str | None, limit: int, now: datetime | None = None
) -> tuple[int, list[dict[str, Any]], str | None]:
    """Tenants whose code or name contains ``q`` (any case), by code after ``after``: the
    total matching, one page, and the code to continue after (None on the last page)."""
    now = now or utcnow()
    where = [tenants.c.code != PLATFORM_TENANT]
    if q:
        needle = q.lower()
        where.append(
            sa.or_(
                sa.func.lower(tenants.c.code).contains(needle, autoescape=True),
                sa.func.lower(tenants.c.name).contains(needle, autoescape=True),
            )
        )
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        if after is not None:
            where.append(tenants.c.code > after)
        rows = (
            conn.execute(
                sa.select(tenants.c.id, tenants.c.code, tenants.c.name, tenants.c.created_at)
                .where(*where)
                .order_by(tenants.c.code)
                .limit(limit + 1)
            )
            .mappings()
            .all()
        )
        more, rows = len(rows) > limit, rows[:limit]
        ids = [r["id"] for r in rows]
        open_orders = dict(
            conn.execute(
                sa.select(orders.c.tenant_id, sa.func.count())
                .where(orders.c.tenant_id.in_(ids), orders.c.status == "pending_payment")
                .group_by(orders.c.tenant_id)
            ).all()
        )
    items = []
    for row in rows:
        billing = TenantBilling(engine, row["id"])
        held = billing.entitlement(now)
        items.append(
            {
                "code": row["code"],
                "name": row["name"],
                "created_at": row["created_at"],
                "edition": held.edition,
                "add_ons": sorted(held.add_ons),
                "packages": [p for p in billing.packages(now) if p["status"] in SHOWN_PACKAGES],
                "open_orders": open_orders.get(row["id"], 0),
            }
        )
    return total, items, rows[-1]["code"] if more and rows else None
