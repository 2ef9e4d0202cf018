"""Metering SQL: per-day movement sums straight from the ledger.

The day sums are one GROUP BY over the tenant's ledger rows in the range, read from a
covering index on (tenant, occurred_ms, weight delta, type, qty): a full year's recompute is
a single index scan with integer arithmetic.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from cloud_api.billing.metering import (
    MS_PER_DAY,
    DaySums,
    DayWindow,
    epoch_ms,
    fixed_offset_ms,
    sums_from_movements,
)
from cloud_api.platform.schema import ledger

EPOCH_DAY = date(1970, 1, 1)


def movement_sums(
    conn: sa.Connection,
    tenant_id: int,
    days: list[DayWindow],
    zone: ZoneInfo,
    opening_g: int | None = None,
) -> tuple[int, dict[date, DaySums]]:
    """(stock weight in grams at the first day's start, per-day sums) for a tenant.

    Pass ``opening_g`` when it is known (yesterday's closing level) to skip summing the
    whole history before the range.
    """
    if not days:
        return 0, {}
    first, last = days[0], days[-1]
    t_ms = ledger.c.occurred_ms
    opening = opening_g
    if opening is None:
        opening = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger.c.weight_delta_g), 0)).where(
                ledger.c.tenant_id == tenant_id, t_ms < first.start_ms
            )
        ).scalar_one()
    in_range = (ledger.c.tenant_id == tenant_id, t_ms >= first.start_ms, t_ms < last.end_ms)
    offset = fixed_offset_ms(zone, first.day, last.day)
    if offset is None:  # a DST change inside the range: bucket in Python
        rows = conn.execute(
            sa.select(t_ms, ledger.c.weight_delta_g, ledger.c.type, ledger.c.qty).where(*in_range)
        ).all()
        _, sums = sums_from_movements(((t, d, k, q) for t, d, k, q in rows), days)
        return int(opening), sums
    day_no = (t_ms + offset) // MS_PER_DAY  # integer division on both backends
    to_end = (day_no + 1) * MS_PER_DAY - offset - t_ms  # ms from the movement to midnight
    delta = ledger.c.weight_delta_g
    # Σδ·(E − t) split into whole seconds and the millisecond remainder keeps every partial
    # sum far inside 64 bits; Python joins them exactly.
    rows = conn.execute(
        sa.select(
            day_no.label("day_no"),
            sa.func.sum(delta),
            sa.func.sum(delta * (to_end // 1000)),
            sa.func.sum(delta * (to_end % 1000)),
            sa.func.sum(sa.case((ledger.c.type == "receive", ledger.c.qty), else_=0)),
            sa.func.sum(sa.case((ledger.c.type == "ship", ledger.c.qty), else_=0)),
        )
        .where(*in_range)
        .group_by("day_no")
    ).all()
    sums = {}
    for number, delta_g, whole_s, rest_ms, pieces_in, pieces_out in rows:
        sums[EPOCH_DAY + timedelta(days=int(number))] = DaySums(
            int(delta_g), int(whole_s) * 1000 + int(rest_ms), int(pieces_in), int(pieces_out)
        )
    return int(opening), sums


__all__ = ["epoch_ms", "movement_sums"]
