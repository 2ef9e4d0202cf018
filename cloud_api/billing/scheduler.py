"""The periodic billing work of ``cangyun cloud serve``: close metered days, then check every
tenant's prepaid position for renewal reminders. Every step is idempotent, so several API
processes may run it side by side."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.timeutil import utcnow
from cloud_api.billing.store import TenantBilling
from cloud_api.messaging import store as messaging
from cloud_api.messaging.reminders import PeriodCoverage, QuotaSnapshot
from cloud_api.platform.schema import packages, tenants
from cloud_api.platform.workers import PeriodicWorker
from cloud_api.settings import CloudSettings

log = logging.getLogger(__name__)


def billed_tenants(engine: Engine) -> list[int]:
    """Tenants that ever bought a package: the only ones with something to meter against."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(tenants.c.id)
                .where(tenants.c.id.in_(sa.select(packages.c.tenant_id).distinct()))
                .order_by(tenants.c.id)
            ).scalars()
        )


def run_once(
    engine: Engine, settings: CloudSettings, now: datetime | None = None
) -> dict[str, int]:
    now = now or utcnow()
    counts = {"tenants": 0, "closed": 0, "adjusted": 0, "reminders": 0}
    for tenant_id in billed_tenants(engine):
        billing = TenantBilling(engine, tenant_id)
        closed = billing.close_days(now)
        counts["tenants"] += 1
        counts["closed"] += closed.get("closed", 0)
        counts["adjusted"] += closed.get("adjusted", 0)
        held = billing.entitlement(now)
        snapshots = [
            QuotaSnapshot(
                q.unit, q.remaining, q.total, _days_left(billing, q.unit, q.remaining, now)
            )  # type: ignore[arg-type]
            for q in held.quotas
        ]
        bought_units = {p["unit"] for p in billing.packages(now) if p["edition"]}
        for unit in ("tonne_day", "piece"):
            if unit in bought_units and unit not in {s.unit for s in snapshots}:
                snapshots.append(QuotaSnapshot(unit, Decimal(0), Decimal(0)))  # all used up
        coverage = PeriodCoverage(held.period_ends_at) if held.period_ends_at else None
        fired = messaging.evaluate_and_queue(engine, tenant_id, snapshots, coverage, settings, now)
        counts["reminders"] += len(fired)
    return counts


def _days_left(
    billing: TenantBilling, unit: str, remaining: Decimal, now: datetime
) -> Decimal | None:
    if unit == "tonne_day":
        tonnes = billing.current_stock_tonnes()
        return (remaining / tonnes).quantize(Decimal("0.1")) if tonnes > 0 else None
    rate = billing.average_daily_pieces(now=now)
    return (remaining / rate).quantize(Decimal("0.1")) if rate > 0 else None


def billing_worker(engine: Engine, settings: CloudSettings) -> PeriodicWorker:
    """The scheduler inside ``cangyun cloud serve``: one round every scheduler_interval_s."""

    def one_round() -> int:
        counts = run_once(engine, settings)
        if counts["closed"] or counts["adjusted"] or counts["reminders"]:
            log.info("billing: %s", counts)
        return 0  # periodic, not a queue: always wait for the next round

    return PeriodicWorker("billing", one_round, settings.billing.scheduler_interval_s)
