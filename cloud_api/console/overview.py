"""The console's overview pages: the dashboard with its chart, devices and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template, request

from cangyun.timeutil import utcnow
from cloud_api.accounts.store import TenantAccounts
from cloud_api.console import bp
from cloud_api.console.session import can, require
from cloud_api.ledger import store as ledger
from cloud_api.platform.auth import engine
from cloud_api.platform.tenancy import Caller
from cloud_api.sites import registry
from cloud_api.sites.store import TenantSites

CHART_DAYS = 14


@bp.get("/")
def dashboard() -> str:
    who = require("movements:read")
    tenant = registry.tenant_by_code(engine(), who.tenant)
    zone = ZoneInfo(tenant["timezone"])
    now_local = datetime.now(zone)
    first_day = (now_local - timedelta(days=CHART_DAYS - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    offset = (now_local.utcoffset() or timedelta()).total_seconds() / 3600
    counts = ledger.daily_counts(
        engine(), who.tenant_id, first_day.astimezone(UTC), CHART_DAYS, offset
    )
    days = [(first_day + timedelta(days=i)).date().isoformat() for i in range(CHART_DAYS)]
    series = [(day[5:], counts.get(day, 0)) for day in days]
    devices = registry.list_devices(engine(), who.tenant_id)
    _, recent, _ = ledger.list_movements(
        engine(), who.tenant_id, {}, after_id=None, limit=10, newest_first=True
    )
    stock_total, _, _ = ledger.stock_levels(engine(), who.tenant_id, {}, after=None, limit=1)
    midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    return render_template(
        "console/dashboard.html",
        today=series[-1][1],
        devices=devices,
        online=sum(1 for d in devices if d["online"]),
        recent=recent,
        stock_lines=stock_total,
        chart=_bar_chart(series),
        per_warehouse=_movements_since(who, midnight),
    )


def _movements_since(who: Caller, since: datetime) -> list[tuple[dict[str, Any], int]]:
    """Each warehouse with its movement count since ``since``. One count query per warehouse:
    the ledger store has no per-warehouse totals, and a tenant has a handful of warehouses."""
    if not can("warehouses:read"):
        return []
    return [
        (
            site,
            ledger.list_movements(
                engine(),
                who.tenant_id,
                {"warehouse": site["code"], "from": since.astimezone(UTC)},
                after_id=None,
                limit=1,
                newest_first=True,
            )[0],
        )
        for site in TenantSites(engine(), who.tenant_id).warehouses()
    ]


def _bar_chart(series: list[tuple[str, int]]) -> dict[str, Any]:
    """Bars for an inline SVG: no chart library, nothing fetched by the browser."""
    height, bar, gap = 120, 22, 8
    peak = max((n for _, n in series), default=0) or 1
    bars = []
    for index, (label, count) in enumerate(series):
        h = round(height * count / peak)
        bars.append(
            {
                "x": index * (bar + gap),
                "y": height - h,
                "h": h,
                "w": bar,
                "label": label,
                "count": count,
            }
        )
    return {"bars": bars, "width": len(series) * (bar + gap), "height": height}


@bp.get("/devices")
def devices() -> str:
    who = require("devices:read")
    items = registry.list_devices(engine(), who.tenant_id)
    views = {
        d["code"]: ledger.device_sync_view(engine(), who.tenant_id, d["code"], utcnow())
        for d in items
    }
    return render_template("console/devices.html", devices=items, views=views)


@bp.get("/audit")
def audit() -> str:
    who = require("audit:read")
    cursor = request.args.get("cursor", type=int)
    total, items, last = TenantAccounts(engine(), who.tenant_id).audit_entries(
        before_id=cursor, limit=50, action=request.args.get("action") or None
    )
    return render_template("console/audit.html", items=items, total=total, next=last)
