"""Gate rows as the API and the CLI answer them, and the timestamp text stored in them: pure
functions of ``sqlite3.Row``, so the store's queries and the expected-goods rules share one
shape for each.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson

from cangyun.movement import grams_to_kg
from cangyun.timeutil import format_ts


def now_text() -> str:
    return format_ts(datetime.now(UTC))


def time_text(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return format_ts(datetime.fromtimestamp(seconds, UTC))


def identity_text(
    kind: str,
    sscc: str | None,
    gtin: str | None,
    lot: str | None,
    container: str | None,
    plate: str | None = None,
) -> str:
    """What went through as people read it: the SSCC, (01)GTIN(10)lot, the container or the
    truck's plate."""
    if kind == "sscc" and sscc:
        return sscc
    if kind == "gtin" and gtin:
        return f"(01){gtin}" + (f"(10){lot}" if lot else "")
    if kind == "plate" and plate:
        return plate
    return container or ""


def gate_row(row: sqlite3.Row, cameras: list[sqlite3.Row]) -> dict[str, Any]:
    return {
        "code": row["code"],
        "direction": row["direction"],
        "window_s": row["window_s"],
        "ocr_containers": bool(row["ocr_containers"]),
        "ocr_plates": bool(row["ocr_plates"]),
        "created_at": row["created_at"],
        "cameras": [camera_row(c) for c in cameras],
    }


def camera_row(row: sqlite3.Row) -> dict[str, Any]:
    data: dict[str, Any] = {"code": row["code"], "kind": row["kind"]}
    if row["kind"] == "stream":
        data.update(url=row["url"], fps=row["fps"])
    elif row["kind"] == "folder":
        data.update(folder=row["folder"], after=row["after"], poll_s=row["poll_s"])
    return data


def expected_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "direction": row["direction"],
        "sscc": row["sscc"],
        "gtin": row["gtin"],
        "lot": row["lot"],
        "qty": row["qty"],
        "weight_kg": grams_to_kg(row["weight_g"]) if row["weight_g"] is not None else None,
        "customer": row["customer"],
        "reference": row["reference"],
        "status": row["status"],
        "event_id": row["event_id"],
        "movement_id": row["movement_id"],
        "created_at": row["created_at"],
        "done_at": row["done_at"],
        "source": "edge" if row["cloud_id"] is None else "cloud",
        "cloud_id": row["cloud_id"],
    }


def event_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "direction": row["direction"],
        "kind": row["kind"],
        "identity": identity_text(
            row["kind"], row["sscc"], row["gtin"], row["lot"], row["container"], row["plate"]
        ),
        "sscc": row["sscc"],
        "gtin": row["gtin"],
        "lot": row["lot"],
        "container": row["container"],
        "plate": row["plate"],
        "first_seen": time_text(row["first_seen"]),
        "last_seen": time_text(row["last_seen"]),
        "frames": row["frames"],
        "cameras": orjson.loads(row["cameras"]),
        "outcome": row["outcome"],
        "reason": row["reason"],
        "expected_id": row["expected_id"],
        "movement_id": row["movement_id"],
        "hold_id": row["hold_id"],
    }


def hold_row(row: sqlite3.Row, event: sqlite3.Row, line: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "direction": row["direction"],
        "reason": row["reason"],
        "message": row["message"],
        "status": row["status"],
        "movement_id": row["movement_id"],
        "note": row["note"],
        "created_at": row["created_at"],
        "resolved_at": row["resolved_at"],
        "event": event_row(event),
        "expected": line,
    }


def alert_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "kind": row["kind"],
        "message": row["message"],
        "event_id": row["event_id"],
        "hold_id": row["hold_id"],
        "created_at": row["created_at"],
    }
