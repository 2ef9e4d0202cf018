"""Where cloud ingest spends its time per movement, and the floor SQLite puts under it.

No broker and no processes: the same edge outbox batches that bench/sync_throughput.py
sends are filed in-process, stage by stage, into a real cloud SQLite file:

- decode: ``wire.decode_batch`` (JSON and envelope checks);
- prepare: ``ingest.prepare_items`` (every item validated into a ledger row);
- commit: ``ledger.commit_batch`` (the batch's transaction, fsync included).

Then the floor: the same ledger rows inserted by a bare ``sqlite3`` loop (executemany of
each batch and a commit, WAL, ``synchronous=FULL``, every index), with no Python work
between batches. One SQLite writer cannot file faster than that, whatever ingest does.

The last line is ``sqlite_floor_rows_per_s=<n>``.

    python bench/ingest_cost.py [--movements 50000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_throughput import fill_outbox, progress  # noqa: E402

from cangyun import wire  # noqa: E402
from cangyun.movement import parse_movement  # noqa: E402
from cangyun.timeutil import utcnow  # noqa: E402
from cloud_api import provisioning  # noqa: E402
from cloud_api.ledger import store as ledger  # noqa: E402
from cloud_api.ledger.ingest import prepare_items  # noqa: E402
from cloud_api.settings import CloudSection, CloudSettings, MqttSection  # noqa: E402
from cloud_api.sites.registry import device_ref  # noqa: E402
from edge.store import EdgeStore, Outbox  # noqa: E402


def edge_batches(root: Path, settings: CloudSettings, engine, count: int, size: int):
    """The up/tx payloads the sync agent would publish for ``count`` dock receipts."""
    device = provisioning.create_device(
        settings, engine, tenant="bench", warehouse="wh", code="bench-edge", edge_data_dir=root
    )
    store = EdgeStore(device.settings.database_path, device="bench-edge")
    fill_outbox(store, count, run=10)
    store.close()
    outbox = Outbox(device.settings.database_path)
    payloads, cursor = [], 0
    while rows := outbox.items_after(cursor, size):
        cursor = rows[-1][0]
        items = [item for _, item in rows]
        payloads.append(
            wire.encode_batch("bench-edge", outbox.epoch, len(payloads), items, "2026-11-26T00:00Z")
        )
    outbox.close()
    return payloads


def file_in_stages(engine, payloads: list[bytes]) -> tuple[dict[str, float], list[list[dict]]]:
    """Seconds spent in each stage over all batches, and the ledger rows they made."""
    device = device_ref(engine, "bench-edge")
    topic = wire.DeviceAddress("bench", "wh", "bench-edge").topic(wire.UP_TX)
    spent = {"decode": 0.0, "prepare": 0.0, "commit": 0.0}
    all_rows = []
    for done, payload in enumerate(payloads, 1):
        t0 = time.perf_counter()
        batch = wire.decode_batch(payload)
        t1 = time.perf_counter()
        now = utcnow()
        rows, dead, raw = prepare_items(batch, device, now)
        t2 = time.perf_counter()
        ledger.commit_batch(
            engine,
            device,
            batch.epoch,
            rows,
            dead,
            raw_items=raw,
            topic=topic,
            received_at=now,
            clock_skew_s=None,
        )
        t3 = time.perf_counter()
        spent["decode"] += t1 - t0
        spent["prepare"] += t2 - t1
        spent["commit"] += t3 - t2
        all_rows.append(rows)
        progress("filing in stages    ", done, len(payloads))
    return spent, all_rows


def sqlite_floor(engine, database: Path, batches: list[list[dict]]) -> float:
    """Seconds for a bare sqlite3 loop to insert and commit the same rows into an emptied
    copy of the cloud database."""
    copy = database.with_name("floor.sqlite")
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("DELETE FROM ledger")
    # The statement and parameters exactly as ingest sends them, prepared beforehand.
    captured: list[tuple[str, list[tuple]]] = []

    class Capture:
        dialect = engine.dialect

        def exec_driver_sql(self, sql, params):
            captured.append((sql, params))

    for rows in batches:
        ledger.bulk_insert(Capture(), ledger.ledger, rows)  # type: ignore[arg-type]
    started = time.perf_counter()
    for done, (sql, params) in enumerate(captured, 1):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, params)
        conn.execute("COMMIT")
        progress("bare sqlite3 insert ", done, len(captured))
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def parse_cost_us() -> float:
    """One wire movement through parse_movement, best of 5 timeit runs."""
    data = {
        "type": "receive",
        "occurred_at": "2026-11-26T08:00:01.123+08:00",
        "gtin": "06901234567892",
        "qty": 3,
        "lot": "L3",
        "weight_kg": 1.5,
        "customer": "owner-1",
        "operator": "op1",
    }
    runs = timeit.repeat(lambda: parse_movement(data, source="wire"), number=20_000, repeat=5)
    return min(runs) / 20_000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cangyun-ingest-cost-"))
    try:
        settings = CloudSettings(
            cloud=CloudSection(data_dir=root / "cloud"), mqtt=MqttSection(password="bench")
        )
        engine = provisioning.init(settings)
        provisioning.create_tenant(engine, "bench", "bench")
        provisioning.create_warehouse(engine, "bench", "wh", "wh")
        payloads = edge_batches(root / "edge", settings, engine, args.movements, args.batch_size)
        spent, batches = file_in_stages(engine, payloads)
        floor_s = sqlite_floor(engine, Path(engine.url.database), batches)
        engine.dispose()

        count = sum(len(rows) for rows in batches)
        per = {stage: seconds / count * 1e6 for stage, seconds in spent.items()}
        total = sum(per.values())
        print(" ".join(f"{stage}_us={us:.1f}" for stage, us in per.items()), end=" ")
        print(f"total_us={total:.1f} in_process_movements_per_s={1e6 / total:.0f}")
        print(f"parse_movement_us={parse_cost_us():.2f}")
        print(f"sqlite_floor_us_per_row={floor_s / count * 1e6:.1f}")
        print(f"sqlite_floor_rows_per_s={count / floor_s:.0f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
