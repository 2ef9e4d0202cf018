"""Metering benchmark: tonne-days for a year of 10,000 SKU-lots (a million movements).

Builds a cloud SQLite database with one tenant whose ledger holds ~1,000,000 movements over
365 days (receipts and shipments of 10,000 goods/lot lines), then measures:

- full recompute: every business day's tonne-days and pieces from the raw ledger;
- incremental day close: closing one more day after the history is closed.

    python bench/metering.py [--movements 1000000] [--lines 10000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from cloud_api import provisioning  # noqa: E402
from cloud_api.billing import usage_store as metering  # noqa: E402
from cloud_api.billing.metering import close, epoch_ms, windows  # noqa: E402
from cloud_api.billing.store import TenantBilling  # noqa: E402
from cloud_api.ledger.store import bulk_insert  # noqa: E402
from cloud_api.settings import CloudSection, CloudSettings, MqttSection  # noqa: E402
from cloud_api.sites.registry import device_ref  # noqa: E402


def fill(engine: sa.Engine, device, count: int, lines: int, start: datetime, days: int) -> None:
    rng = random.Random(7)
    stock = [0] * lines
    chunk: list[dict] = []
    span_ms = days * 86_400_000
    times = sorted(rng.randrange(span_ms) for _ in range(count))
    for seq, offset in enumerate(times, start=1):
        line = rng.randrange(lines)
        shipping = stock[line] > 0 and rng.random() < 0.45
        qty = rng.randint(1, 20)
        weight = qty * 12_500
        if shipping:
            qty = min(qty, stock[line] // 12_500) or 1
            weight = min(weight, stock[line])
        delta = -weight if shipping else weight
        stock[line] += delta
        chunk.append(
            {
                "tenant_id": device.tenant_id,
                "warehouse_id": device.warehouse_id,
                "device_id": device.id,
                "epoch": "bench-epoch-0001",
                "seq": seq,
                "movement_id": f"m{seq}",
                "type": "ship" if shipping else "receive",
                "gtin": "",
                "sku": f"SKU-{line % 2000}",
                "lot": f"L{line // 2000}",
                "expiry_date": None,
                "serial": None,
                "sscc": None,
                "qty": qty,
                "weight_g": weight,
                "qty_delta": -qty if shipping else qty,
                "weight_delta_g": delta,
                "customer": "",
                "location": None,
                "to_location": None,
                "operator": None,
                "reverses": None,
                "occurred_at": start + timedelta(milliseconds=offset),
                "occurred_ms": epoch_ms(start) + offset,
                "received_at": start + timedelta(milliseconds=offset, minutes=1),
                "body_hash": "0" * 32,
            }
        )
        if len(chunk) == 20_000:
            _flush(engine, chunk)
            progress("filling ledger", seq, count)
    _flush(engine, chunk)
    progress("filling ledger", count, count)


def _flush(engine: sa.Engine, rows: list[dict]) -> None:
    if rows:
        from cloud_api.platform.schema import ledger

        with engine.begin() as conn:
            bulk_insert(conn, ledger, rows)
        rows.clear()


def progress(label: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        filled = int(30 * done / total)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}{end}")
        sys.stderr.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10_000, help="SKU-lot lines")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cangyun-metering-"))
    try:
        settings = CloudSettings(cloud=CloudSection(data_dir=root), mqtt=MqttSection(password="x"))
        engine = provisioning.init(settings)
        provisioning.create_tenant(engine, "bench", "bench")
        provisioning.create_warehouse(engine, "bench", "wh", "wh")
        provisioning.create_device(settings, engine, tenant="bench", warehouse="wh", code="edge")
        device = device_ref(engine, "edge")
        assert device is not None
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        # History ends two days ago, so "yesterday" is left for the incremental close.
        start = today - timedelta(days=args.days + 2)
        fill(engine, device, args.movements, args.lines, start, args.days)
        billing = TenantBilling(engine, device.tenant_id)
        zone = billing.zone()
        first = start.astimezone(zone).date()
        last = first + timedelta(days=args.days)

        timings = []
        for _ in range(3):
            began = time.perf_counter()
            with engine.connect() as conn:
                days = windows(zone, first, last)
                opening, sums = metering.movement_sums(conn, device.tenant_id, days, zone)
            usage = close(opening, sums, days)
            timings.append(time.perf_counter() - began)
        total = sum(u.tonne_days for u in usage)
        print(
            f"movements={args.movements} lines={args.lines} days={len(usage)}"
            f" tonne_days={total:.1f}"
        )
        print(f"full_recompute_s={min(timings):.3f} (best of 3; {[round(t, 3) for t in timings]})")

        now = datetime.now(UTC)
        began = time.perf_counter()
        first_close = billing.close_days(now - timedelta(days=1))
        print(f"first_close_s={time.perf_counter() - began:.3f} ({first_close})")
        # One more day of movements arrives; closing it is the daily job.
        fill_day = today - timedelta(days=1) + timedelta(hours=3)
        extra = [{"offset": i} for i in range(args.movements // args.days)]
        rows = []
        for i, _ in enumerate(extra):
            rows.append(
                {
                    "tenant_id": device.tenant_id,
                    "warehouse_id": device.warehouse_id,
                    "device_id": device.id,
                    "epoch": "bench-epoch-0002",
                    "seq": i + 1,
                    "movement_id": f"d{i}",
                    "type": "receive",
                    "gtin": "",
                    "sku": "SKU-1",
                    "lot": "L1",
                    "expiry_date": None,
                    "serial": None,
                    "sscc": None,
                    "qty": 1,
                    "weight_g": 1000,
                    "qty_delta": 1,
                    "weight_delta_g": 1000,
                    "customer": "",
                    "location": None,
                    "to_location": None,
                    "operator": None,
                    "reverses": None,
                    "occurred_at": fill_day + timedelta(seconds=i),
                    "occurred_ms": epoch_ms(fill_day) + i * 1000,
                    "received_at": now - timedelta(minutes=10),
                    "body_hash": "0" * 32,
                }
            )
        _flush(engine, rows)
        began = time.perf_counter()
        result = billing.close_days(now + timedelta(minutes=5))
        incremental = time.perf_counter() - began
        print(f"incremental_day_close_ms={incremental * 1000:.1f} ({result})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
