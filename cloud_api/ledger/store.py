"""The cloud ledger: idempotent batch commits, watermarks, dead letters, stock; all its SQL.

A batch commits in one transaction that first locks the device's sync row (``FOR UPDATE``
on PostgreSQL; ``BEGIN IMMEDIATE`` serialises writers on SQLite), so several ingest workers
may receive the same device's batches in any order and still agree on one watermark.
"""

from __future__ import annotations

import base64
import operator
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.movement import grams_to_kg
from cloud_api.integrations import store as integrations
from cloud_api.platform.db import UTCDateTime, atomic, insert_for
from cloud_api.platform.schema import (
    alerts,
    dead_letters,
    device_sync,
    devices,
    ledger,
    quarantine,
    stock,
    warehouses,
    webhooks,
)
from cloud_api.sites.registry import DeviceRef

WALK_CHUNK = 5000  # seqs read per query while advancing a watermark across a gap
PAYLOAD_KEEP = 64 * 1024  # bytes of a dead-lettered payload kept for inspection


@dataclass(frozen=True)
class DeadItem:
    seq: int | None
    reason: str
    detail: str
    payload: str


@dataclass
class BatchOutcome:
    acked_through: int
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def commit_batch(
    engine: Engine,
    device: DeviceRef,
    epoch: str,
    rows: list[dict[str, Any]],
    dead: list[DeadItem],
    *,
    raw_items: dict[int, str],
    topic: str,
    received_at: datetime,
    clock_skew_s: float | None,
) -> BatchOutcome:
    """Commit a batch's valid rows and dead items; return the new contiguous watermark.

    ``raw_items`` maps seq to the item as received, kept if it must be quarantined.
    """
    insert = insert_for(engine)
    keyed_dead = [d for d in dead if d.seq is not None]
    batch_seqs = sorted({r["seq"] for r in rows} | {d.seq for d in keyed_dead})  # type: ignore[misc]
    with atomic(engine) as conn:
        acked, max_seen = _lock_sync_row(conn, device.id, epoch, received_at)
        outcome = BatchOutcome(acked_through=acked)

        # The device's sync row is locked, so no other worker can file these seqs meanwhile:
        # what is stored now decides new versus repeat (the unique key stays as the last guard).
        existing = _stored_hashes(conn, device.id, epoch, rows)
        new_rows = [r for r in rows if r["seq"] not in existing]
        bulk_insert(conn, ledger, new_rows)
        inserted = {r["seq"] for r in new_rows}
        outcome.inserted = len(new_rows)
        repeats = [r for r in rows if r["seq"] in existing]
        if repeats:
            _sort_repeats(conn, device, epoch, repeats, existing, raw_items, received_at, outcome)

        if dead:
            _insert_dead(conn, insert, device, epoch, dead, topic, received_at)
            outcome.rejected = [(d.seq, d.reason) for d in keyed_dead]  # type: ignore[misc]

        new_rows = [r for r in rows if r["seq"] in inserted]
        _apply_stock(conn, insert, device, new_rows, received_at)
        if new_rows:
            _announce(conn, device, new_rows)

        new_acked = _advance(conn, device.id, epoch, acked, max_seen, batch_seqs)
        outcome.acked_through = new_acked
        if batch_seqs:
            conn.execute(
                device_sync.update()
                .where(device_sync.c.device_id == device.id, device_sync.c.epoch == epoch)
                .values(
                    acked_through=new_acked,
                    max_seq_seen=_greatest(conn)(device_sync.c.max_seq_seen, batch_seqs[-1]),
                    filed=device_sync.c.filed + outcome.inserted,
                    duplicates=device_sync.c.duplicates + outcome.duplicates,
                    batches=device_sync.c.batches + 1,
                    clock_skew_s=clock_skew_s,
                    last_seen_at=received_at,
                )
            )
        _touch_device(conn, device.id, epoch, received_at)
    return outcome


def record_hello(
    engine: Engine, device: DeviceRef, epoch: str, edge_last_seq: int, received_at: datetime
) -> int:
    """Note the edge's position; return the cloud's watermark for that epoch."""
    with atomic(engine) as conn:
        acked, _ = _lock_sync_row(conn, device.id, epoch, received_at)
        conn.execute(
            device_sync.update()
            .where(device_sync.c.device_id == device.id, device_sync.c.epoch == epoch)
            .values(
                edge_last_seq=_greatest(conn)(device_sync.c.edge_last_seq, edge_last_seq),
                last_hello_at=received_at,
                last_seen_at=received_at,
            )
        )
        _touch_device(conn, device.id, epoch, received_at)
    return acked


def record_status(engine: Engine, device: DeviceRef, online: bool, received_at: datetime) -> None:
    with atomic(engine) as conn:
        conn.execute(
            devices.update()
            .where(devices.c.id == device.id)
            .values(online=online, status_at=received_at, last_seen_at=received_at)
        )


def dead_letter(
    engine: Engine,
    *,
    topic: str,
    reason: str,
    detail: str,
    payload: bytes,
    received_at: datetime,
    device: DeviceRef | None = None,
) -> None:
    """A whole message that cannot be filed (bad topic, unknown device, broken envelope)."""
    with atomic(engine) as conn:
        conn.execute(
            dead_letters.insert().values(
                received_at=received_at,
                topic=topic[:255],
                tenant_id=device.tenant_id if device else None,
                device_id=device.id if device else None,
                reason=reason[:64],
                detail=detail[:2000],
                payload=_storable(payload[:PAYLOAD_KEEP]),
            )
        )


def _storable(payload: bytes) -> str:
    """Payload as text any database accepts: UTF-8 as is, anything else (NUL bytes, binary)
    as base64 with a prefix, so the exact bytes can still be inspected."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return "base64:" + base64.b64encode(payload).decode()
    return text


# --- inside a batch transaction --------------------------------------------------------


def _announce(conn: sa.Connection, device: DeviceRef, rows: list[dict[str, Any]]) -> None:
    """Queue a ``movements.created`` webhook delivery in the same transaction as the rows."""
    has_hooks = conn.execute(
        sa.select(webhooks.c.id)
        .where(webhooks.c.tenant_id == device.tenant_id, webhooks.c.active.is_(True))
        .limit(1)
    ).first()
    if has_hooks is None:
        return
    items = [
        {
            "device": device.code,
            "warehouse": device.warehouse,
            "seq": r["seq"],
            "movement_id": r["movement_id"],
            "type": r["type"],
            "gtin": r["gtin"] or None,
            "sku": r["sku"] or None,
            "lot": r["lot"] or None,
            "qty": r["qty"],
            "weight_kg": grams_to_kg(r["weight_g"]) if r["weight_g"] is not None else None,
            "customer": r["customer"] or None,
            "occurred_at": r["occurred_at"].isoformat(),
        }
        for r in rows
    ]
    integrations.enqueue(conn, device.tenant_id, "movements.created", {"items": items})


def _greatest(conn: sa.Connection) -> Any:
    """Two-argument maximum: GREATEST on PostgreSQL, scalar max() on SQLite."""
    return sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max


def _lock_sync_row(
    conn: sa.Connection, device_id: int, epoch: str, now: datetime
) -> tuple[int, int]:
    insert = insert_for(conn)
    conn.execute(
        insert(device_sync)
        .values(device_id=device_id, epoch=epoch, first_seen_at=now, last_seen_at=now)
        .on_conflict_do_nothing(index_elements=["device_id", "epoch"])
    )
    query = sa.select(device_sync.c.acked_through, device_sync.c.max_seq_seen).where(
        device_sync.c.device_id == device_id, device_sync.c.epoch == epoch
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one()
    return row.acked_through, row.max_seq_seen


def _stored_hashes(
    conn: sa.Connection, device_id: int, epoch: str, rows: list[dict[str, Any]]
) -> dict[int, str]:
    """seq -> body hash of what the ledger already holds in this batch's seq range."""
    if not rows:
        return {}
    wanted = {r["seq"] for r in rows}
    result = conn.execute(
        sa.select(ledger.c.seq, ledger.c.body_hash).where(
            ledger.c.device_id == device_id,
            ledger.c.epoch == epoch,
            ledger.c.seq.between(min(wanted), max(wanted)),
        )
    )
    return {seq: body_hash for seq, body_hash in result if seq in wanted}


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows straight through the driver's executemany."""
    if rows:
        columns = tuple(rows[0])
        execute_many(
            conn,
            (table.name, "insert", columns),
            lambda: table.insert().values({c: sa.bindparam(c) for c in columns}),
            rows,
        )


def execute_many(
    conn: sa.Connection,
    key: tuple[Any, ...],
    build: Callable[[], Any],
    rows: list[dict[str, Any]],
) -> None:
    """Run the statement ``build()`` makes for every row via the driver's executemany.

    At ingest rates SQLAlchemy's per-row bind processing costs more than the insert itself,
    so the statement is built and compiled once per dialect and ``key``, and only the
    date/time values (the one thing the drivers store differently) are converted here.
    """
    sql, order, time_positions = _compiled(conn.dialect, key, build)
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(sql, rows)
        return
    pick = operator.itemgetter(*order)
    params = [pick(row) for row in rows] if len(order) > 1 else [(pick(row),) for row in rows]
    if time_positions:
        memo: dict[Any, Any] = {}
        converted = []
        for values in params:
            values = list(values)
            for position in time_positions:
                value = values[position]
                if value is not None:
                    text = memo.get(value)
                    if text is None:
                        text = memo[value] = _sqlite_time(value)
                    values[position] = text
            converted.append(tuple(values))
        params = converted
    conn.exec_driver_sql(sql, params)


_COMPILED: dict[tuple[Any, ...], tuple[str, tuple[str, ...], tuple[int, ...]]] = {}


def _compiled(
    dialect: Any, key: tuple[Any, ...], build: Callable[[], Any]
) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
    cache_key = (dialect.name, *key)
    cached = _COMPILED.get(cache_key)
    if cached is None:
        statement = build()
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or compiled.params)
        table = statement.table
        time_positions = tuple(
            i
            for i, name in enumerate(order)
            if isinstance(table.c[name].type, UTCDateTime | sa.Date | sa.DateTime)
        )
        cached = _COMPILED[cache_key] = (compiled.string, order, time_positions)
    return cached


def _sqlite_time(value: datetime | date) -> str:
    # The exact text SQLAlchemy's SQLite DateTime and Date types write and read back.
    if isinstance(value, datetime):
        if value.tzinfo is not UTC:  # ingest's values are UTC already
            value = value.astimezone(UTC)
        return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"
    return value.isoformat()


def _sort_repeats(
    conn: sa.Connection,
    device: DeviceRef,
    epoch: str,
    repeats: list[dict[str, Any]],
    existing: dict[int, str],
    raw_items: dict[int, str],
    received_at: datetime,
    outcome: BatchOutcome,
) -> None:
    """A repeat with the same body is a harmless duplicate; a different body is quarantined."""
    insert = insert_for(conn)
    for row in repeats:
        stored = existing.get(row["seq"])
        if stored == row["body_hash"]:
            outcome.duplicates += 1
            continue
        outcome.conflicts += 1
        result = conn.execute(
            insert(quarantine)
            .values(
                tenant_id=device.tenant_id,
                device_id=device.id,
                epoch=epoch,
                seq=row["seq"],
                body_hash=row["body_hash"],
                existing_hash=stored or "",
                item=raw_items.get(row["seq"], ""),
                received_at=received_at,
            )
            .on_conflict_do_nothing(index_elements=["device_id", "epoch", "seq", "body_hash"])
            .returning(quarantine.c.id)
        )
        if result.first() is not None:  # first time this conflicting version arrived
            message = (
                f"device {device.code} sent seq {row['seq']} of epoch {epoch} again with"
                " a different content; the first version stays in the ledger, the new"
                " one is quarantined"
            )
            details = {"device": device.code, "epoch": epoch, "seq": row["seq"]}
            conn.execute(
                alerts.insert().values(
                    tenant_id=device.tenant_id,
                    kind="sync_conflict",
                    severity="critical",
                    message=message,
                    details=details,
                    created_at=received_at,
                )
            )
            integrations.enqueue(
                conn,
                device.tenant_id,
                "alerts.created",
                {
                    "kind": "sync_conflict",
                    "severity": "critical",
                    "message": message,
                    "details": details,
                },
            )


def _insert_dead(
    conn: sa.Connection,
    insert: Any,
    device: DeviceRef,
    epoch: str,
    dead: list[DeadItem],
    topic: str,
    received_at: datetime,
) -> None:
    values = [
        {
            "received_at": received_at,
            "topic": topic[:255],
            "tenant_id": device.tenant_id,
            "device_id": device.id,
            "epoch": epoch if d.seq is not None else None,
            "seq": d.seq,
            "reason": d.reason[:64],
            "detail": d.detail[:2000],
            "payload": d.payload[:PAYLOAD_KEEP],
        }
        for d in dead
    ]
    conn.execute(
        insert(dead_letters).on_conflict_do_nothing(index_elements=["device_id", "epoch", "seq"]),
        values,
    )


def _apply_stock(
    conn: sa.Connection,
    insert: Any,
    device: DeviceRef,
    rows: list[dict[str, Any]],
    now: datetime,
) -> None:
    totals: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row["qty_delta"] or row["weight_delta_g"]:
            key = (row["customer"], row["gtin"], row["sku"], row["lot"])
            total = totals[key]
            total[0] += row["qty_delta"]
            total[1] += row["weight_delta_g"]
    if not totals:
        return

    def upsert() -> Any:
        statement = insert(stock).values({c: sa.bindparam(c) for c in _STOCK_COLUMNS})
        return statement.on_conflict_do_update(
            index_elements=["tenant_id", "warehouse_id", "customer", "gtin", "sku", "lot"],
            set_={
                "qty": stock.c.qty + statement.excluded.qty,
                "weight_g": stock.c.weight_g + statement.excluded.weight_g,
                "updated_at": statement.excluded.updated_at,
            },
        )

    execute_many(
        conn,
        ("stock", "upsert"),
        upsert,
        [
            {
                "tenant_id": device.tenant_id,
                "warehouse_id": device.warehouse_id,
                "customer": customer,
                "gtin": gtin,
                "sku": sku,
                "lot": lot,
                "qty": qty,
                "weight_g": weight,
                "updated_at": now,
            }
            for (customer, gtin, sku, lot), (qty, weight) in sorted(totals.items())
        ],
    )


_STOCK_COLUMNS = (
    "tenant_id",
    "warehouse_id",
    "customer",
    "gtin",
    "sku",
    "lot",
    "qty",
    "weight_g",
    "updated_at",
)


def _advance(
    conn: sa.Connection,
    device_id: int,
    epoch: str,
    acked: int,
    max_seen: int,
    batch_seqs: list[int],
) -> int:
    """Highest seq such that all seqs up to it are in the ledger or dead-lettered."""
    above = [s for s in batch_seqs if s > acked]
    if not above:
        return acked
    # Fast path: the batch continues the watermark without holes and nothing is stored
    # beyond it, so the new watermark is simply the batch's last seq.
    if above[0] == acked + 1 and above[-1] - acked == len(above) and max_seen <= above[-1]:
        return above[-1]
    if above[0] != acked + 1:
        return acked  # a hole right above the watermark: nothing to advance
    while True:
        seqs = conn.execute(
            sa.union(
                sa.select(ledger.c.seq).where(
                    ledger.c.device_id == device_id, ledger.c.epoch == epoch, ledger.c.seq > acked
                ),
                sa.select(dead_letters.c.seq).where(
                    dead_letters.c.device_id == device_id,
                    dead_letters.c.epoch == epoch,
                    dead_letters.c.seq > acked,
                ),
            )
            .order_by("seq")
            .limit(WALK_CHUNK)
        ).scalars()
        count = 0
        for seq in seqs:
            count += 1
            if seq != acked + 1:
                return acked
            acked = seq
        if count < WALK_CHUNK:
            return acked


def _touch_device(conn: sa.Connection, device_id: int, epoch: str, now: datetime) -> None:
    conn.execute(
        devices.update()
        .where(devices.c.id == device_id)
        .values(current_epoch=epoch, last_seen_at=now)
    )


# --- reads -----------------------------------------------------------------------------


def list_movements(
    engine: Engine,
    tenant_id: int,
    filters: dict[str, Any],
    *,
    after_id: int | None,
    limit: int,
    newest_first: bool,
) -> tuple[int, list[dict[str, Any]], int | None]:
    conditions = [ledger.c.tenant_id == tenant_id]
    for name in ("type", "gtin", "sku", "lot", "customer"):
        if name in filters:
            conditions.append(ledger.c[name] == filters[name])
    if "warehouse" in filters:
        conditions.append(warehouses.c.code == filters["warehouse"])
    if "device" in filters:
        conditions.append(devices.c.code == filters["device"])
    if "from" in filters:
        conditions.append(ledger.c.occurred_at >= filters["from"])
    if "to" in filters:
        conditions.append(ledger.c.occurred_at < filters["to"])
    joined = ledger.join(warehouses, warehouses.c.id == ledger.c.warehouse_id).join(
        devices, devices.c.id == ledger.c.device_id
    )
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(joined).where(*conditions)
        ).scalar_one()
        page_conditions = list(conditions)
        if after_id is not None:
            page_conditions.append(
                ledger.c.id < after_id if newest_first else ledger.c.id > after_id
            )
        order = ledger.c.id.desc() if newest_first else ledger.c.id.asc()
        rows = (
            conn.execute(
                sa.select(
                    ledger,
                    warehouses.c.code.label("warehouse"),
                    devices.c.code.label("device"),
                )
                .select_from(joined)
                .where(*page_conditions)
                .order_by(order)
                .limit(limit + 1)
            )
            .mappings()
            .all()
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return total, [_movement_json(r) for r in rows], rows[-1]["id"] if more and rows else None


def _movement_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "movement_id": row["movement_id"],
        "warehouse": row["warehouse"],
        "device": row["device"],
        "epoch": row["epoch"],
        "seq": row["seq"],
        "type": row["type"],
        "gtin": row["gtin"] or None,
        "sku": row["sku"] or None,
        "lot": row["lot"] or None,
        "expiry_date": row["expiry_date"].isoformat() if row["expiry_date"] else None,
        "serial": row["serial"],
        "sscc": row["sscc"],
        "qty": row["qty"],
        "weight_kg": grams_to_kg(row["weight_g"]) if row["weight_g"] is not None else None,
        "qty_delta": row["qty_delta"],
        "weight_delta_kg": grams_to_kg(row["weight_delta_g"]),
        "customer": row["customer"] or None,
        "location": row["location"],
        "to_location": row["to_location"],
        "operator": row["operator"],
        "occurred_at": row["occurred_at"].isoformat(timespec="milliseconds"),
        "received_at": row["received_at"].isoformat(timespec="milliseconds"),
    }


def stock_levels(
    engine: Engine,
    tenant_id: int,
    filters: dict[str, str],
    *,
    after: list[Any] | None,
    limit: int,
) -> tuple[int, list[dict[str, Any]], list[Any] | None]:
    conditions = [
        stock.c.tenant_id == tenant_id,
        sa.or_(stock.c.qty != 0, stock.c.weight_g != 0),
    ]
    for name in ("customer", "gtin", "sku", "lot"):
        if name in filters:
            conditions.append(stock.c[name] == filters[name])
    if "warehouse" in filters:
        conditions.append(warehouses.c.code == filters["warehouse"])
    joined = stock.join(warehouses, warehouses.c.id == stock.c.warehouse_id)
    key = (stock.c.warehouse_id, stock.c.customer, stock.c.gtin, stock.c.sku, stock.c.lot)
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(joined).where(*conditions)
        ).scalar_one()
        page_conditions = list(conditions)
        if after is not None:
            page_conditions.append(sa.tuple_(*key) > sa.tuple_(*after))
        rows = (
            conn.execute(
                sa.select(stock, warehouses.c.code.label("warehouse"))
                .select_from(joined)
                .where(*page_conditions)
                .order_by(*key)
                .limit(limit + 1)
            )
            .mappings()
            .all()
        )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "warehouse": r["warehouse"],
            "customer": r["customer"] or None,
            "gtin": r["gtin"] or None,
            "sku": r["sku"] or None,
            "lot": r["lot"] or None,
            "qty": r["qty"],
            "weight_kg": grams_to_kg(r["weight_g"]),
            "updated_at": r["updated_at"].isoformat(timespec="milliseconds"),
        }
        for r in rows
    ]
    last = rows[-1] if more and rows else None
    cursor = (
        [last["warehouse_id"], last["customer"], last["gtin"], last["sku"], last["lot"]]
        if last
        else None
    )
    return total, items, cursor


def device_sync_view(
    engine: Engine, tenant_id: int, code: str, now: datetime
) -> dict[str, Any] | None:
    with engine.connect() as conn:
        device = (
            conn.execute(
                sa.select(devices, warehouses.c.code.label("warehouse"))
                .join(warehouses, warehouses.c.id == devices.c.warehouse_id)
                .where(devices.c.tenant_id == tenant_id, devices.c.code == code)
            )
            .mappings()
            .first()
        )
        if device is None:
            return None
        sync = None
        if device["current_epoch"]:
            sync = (
                conn.execute(
                    sa.select(device_sync).where(
                        device_sync.c.device_id == device["id"],
                        device_sync.c.epoch == device["current_epoch"],
                    )
                )
                .mappings()
                .first()
            )
        dead = conn.execute(
            sa.select(sa.func.count()).where(dead_letters.c.device_id == device["id"])
        ).scalar_one()
        held = conn.execute(
            sa.select(sa.func.count()).where(quarantine.c.device_id == device["id"])
        ).scalar_one()
    last_seen = device["last_seen_at"]
    acked = sync["acked_through"] if sync else 0
    edge_last = max(sync["edge_last_seq"], sync["max_seq_seen"]) if sync else 0
    return {
        "device": device["code"],
        "warehouse": device["warehouse"],
        "online": bool(device["online"]),
        "status_at": _iso(device["status_at"]),
        "last_seen_at": _iso(last_seen),
        "seconds_since_seen": round((now - last_seen).total_seconds(), 3) if last_seen else None,
        "epoch": device["current_epoch"],
        "watermark": acked,
        "edge_last_seq": edge_last,
        "lag": max(0, edge_last - acked),
        "filed": sync["filed"] if sync else 0,
        "duplicates": sync["duplicates"] if sync else 0,
        "batches": sync["batches"] if sync else 0,
        "clock_skew_s": sync["clock_skew_s"] if sync else None,
        "last_hello_at": _iso(sync["last_hello_at"]) if sync else None,
        "dead_letters": dead,
        "quarantined": held,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value else None


def daily_counts(
    engine: Engine, tenant_id: int, start: datetime, days: int, utc_offset_hours: float
) -> dict[str, int]:
    """Movements per local business day from ``start`` (UTC instant of a local midnight)."""
    shifted = ledger.c.occurred_at
    if engine.dialect.name == "postgresql":
        day = sa.func.to_char(
            shifted + sa.text(f"interval '{utc_offset_hours} hours'"), "YYYY-MM-DD"
        )
    else:
        day = sa.func.date(shifted, f"{utc_offset_hours:+g} hours")
    end = start + timedelta(days=days)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(day.label("day"), sa.func.count())
            .where(
                ledger.c.tenant_id == tenant_id,
                ledger.c.occurred_at >= start,
                ledger.c.occurred_at < end,
            )
            .group_by("day")
        ).all()
    return {str(d): n for d, n in rows}
