"""Expected goods in the cloud: ASN (inbound) and shipment (outbound) lines per warehouse, one
per pallet. All their SQL, and the checks of an order of lines before it is stored.

Lines are checked with the kernel's grammar (``cangyun.expected.parse_ordered_line``), the
one every edge box checks them with again when they arrive, so a line the cloud accepts is
one every box accepts.

``TenantExpected`` is the API's view: built with one tenant id, every query filtered by it,
every change audited in its own transaction. The functions after it serve the ingest
workers, which send the lines down to the warehouse's edge boxes: the change stamp of a
warehouse, its open lines, the lines changed since a stamp, the boxes that are behind, and
closing lines whose pallet the ledger shows received or shipped.

Change stamps: every change of a warehouse's lines takes the warehouse row's lock
(``FOR NO KEY UPDATE``, which ledger inserts referencing the warehouse do not wait for; on
SQLite the write lock of ``BEGIN IMMEDIATE``) and stamps the lines it touches with
MAX(version) + 1. Changes of one warehouse therefore commit in stamp order, and a reader
that sees stamp N sees every change up to N.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun import wire
from cangyun.errors import Conflict, Forbidden, Invalid, NotFound
from cangyun.expected import STATUSES, ExpectedLine, parse_ordered_line
from cangyun.movement import grams_to_kg
from cangyun.timeutil import format_ts, utcnow
from cloud_api.platform.db import atomic, insert_for
from cloud_api.platform.schema import (
    devices,
    expected_deliveries,
    expected_lines,
    tenants,
    warehouses,
)
from cloud_api.platform.tenancy import Caller, TenantStore
from cloud_api.sites.store import valid_code

MAX_LINES = 1000  # lines in one order: an ASN of a few trucks
FEATURE_OF = {"in": "inbound", "out": "outbound"}  # 入库管理 / 出库管理
DONE_STATUS = {"in": "received", "out": "shipped"}
MOVEMENT_DIRECTION = {"receive": "in", "ship": "out"}
_IN_CHUNK = 500  # values per IN (...) list
_AUDITED_REFERENCES = 20


class AlreadyExpected(Conflict):
    """An SSCC is expected already (open, same direction): one pallet, one line."""

    code = "already_expected"

    def __init__(self, sscc: str, index: int, line_id: int | None, *, indexed: bool) -> None:
        where = f"line {line_id}" if line_id else "this request"
        details: dict[str, Any] = {"field": "sscc", "sscc": sscc, "expected_id": line_id}
        super().__init__(
            f"SSCC {sscc} is expected already ({where}); nothing was added",
            details=details | _index(index, indexed),
        )
        self.sscc = sscc
        self.index = index
        self.line_id = line_id


class LineClosed(Conflict):
    """The line was received or shipped: there is nothing left to cancel."""

    code = "line_closed"


def read_lines(items: list[Mapping[str, Any]], *, indexed: bool) -> list[dict[str, Any]]:
    """An order of lines as column values, every line checked before any is stored: all or
    nothing, the culprit named (``indexed``: the order was a list, so by its index too)."""
    if not items:
        raise Invalid("send one line or a non-empty list of lines", code="no_lines")
    if len(items) > MAX_LINES:
        raise Invalid(
            f"at most {MAX_LINES} lines a request; send the rest after", code="too_many_lines"
        )
    lines = []
    for position, item in enumerate(items):
        try:
            line, gate = parse_ordered_line(item)
        except Invalid as exc:
            raise Invalid(
                exc.message, code=exc.code, details=exc.details | _index(position, indexed)
            ) from exc
        lines.append(
            {
                "direction": line.direction,
                "qty": line.qty,
                "sscc": line.sscc,
                "gtin": line.gtin,
                "lot": line.lot,
                "weight_g": line.weight_g,
                "customer": line.customer,
                "reference": line.reference,
                "gate": gate,
            }
        )
    return lines


def require_features(
    lines: list[dict[str, Any]], features: Iterable[str], edition: str | None
) -> None:
    """Inbound lines need 入库管理 in the tenant's edition, outbound lines 出库管理."""
    held = set(features)
    for direction in sorted({line["direction"] for line in lines}):
        code = FEATURE_OF[direction]
        if code not in held:
            raise Forbidden(
                f"{code} is not part of the {edition or 'current (none bought)'} edition",
                code="feature_not_in_edition",
                details={"feature": code, "edition": edition},
            )


def _index(position: int, indexed: bool) -> dict[str, int]:
    return {"index": position} if indexed else {}


class TenantExpected(TenantStore):
    def require_warehouse(self, code: str) -> None:
        with self.engine.connect() as conn:
            self._warehouse_id(conn, code)

    def add(
        self,
        warehouse: str,
        lines: list[dict[str, Any]],
        caller: Caller,
        ip: str,
        *,
        indexed: bool = False,
    ) -> list[dict[str, Any]]:
        """Record lines (column values, as ``read_lines`` makes them), all or none; a line
        whose SSCC is expected already refuses the lot (``indexed``: named by its index)."""
        now = utcnow()
        with atomic(self.engine) as conn:
            warehouse_id = self._warehouse_id(conn, warehouse)
            version = _next_stamp(conn, warehouse_id)
            self._refuse_repeated_ssccs(conn, warehouse_id, lines, indexed)
            ids = []
            for line in lines:
                result = conn.execute(
                    expected_lines.insert().values(
                        tenant_id=self.tenant_id,
                        warehouse_id=warehouse_id,
                        status="open",
                        version=version,
                        created_at=now,
                        **line,
                    )
                )
                ids.append(result.inserted_primary_key[0])
            references = sorted({line["reference"] for line in lines if line.get("reference")})
            self._audit(
                conn,
                caller,
                "expected.created",
                f"warehouse:{warehouse}",
                {
                    "lines": len(ids),
                    "first_id": ids[0],
                    "last_id": ids[-1],
                    "references": references[:_AUDITED_REFERENCES],
                },
                ip,
            )
            rows = conn.execute(
                sa.select(expected_lines)
                .where(expected_lines.c.id.in_(ids))
                .order_by(expected_lines.c.id)
            ).mappings()
            return [_line_json(row, warehouse) for row in rows]

    def lines(
        self,
        warehouse: str,
        *,
        filters: dict[str, str],
        before_id: int | None,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        """Newest first: (total matching, page, id to continue before)."""
        with self.engine.connect() as conn:
            warehouse_id = self._warehouse_id(conn, warehouse)
            conditions = [
                expected_lines.c.tenant_id == self.tenant_id,
                expected_lines.c.warehouse_id == warehouse_id,
            ]
            conditions += [expected_lines.c[name] == value for name, value in filters.items()]
            total = conn.execute(
                sa.select(sa.func.count()).select_from(expected_lines).where(*conditions)
            ).scalar_one()
            if before_id is not None:
                conditions.append(expected_lines.c.id < before_id)
            rows = (
                conn.execute(
                    sa.select(expected_lines)
                    .where(*conditions)
                    .order_by(expected_lines.c.id.desc())
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_id = rows[-1]["id"] if more and rows else None
        return total, [_line_json(row, warehouse) for row in rows], next_id

    def cancel(self, warehouse: str, line_id: int, caller: Caller, ip: str) -> dict[str, Any]:
        """Cancel an open line; cancelling it again answers the same."""
        with atomic(self.engine) as conn:
            warehouse_id = self._warehouse_id(conn, warehouse)
            version = _next_stamp(conn, warehouse_id)  # under the lock: no race with a receipt
            row = self._line(conn, warehouse_id, line_id)
            if row["status"] in DONE_STATUS.values():
                raise LineClosed(f"expected line {line_id} was {row['status']} already")
            if row["status"] == "open":
                conn.execute(
                    expected_lines.update()
                    .where(expected_lines.c.id == line_id)
                    .values(status="cancelled", version=version, closed_at=utcnow())
                )
                self._audit(
                    conn,
                    caller,
                    "expected.cancelled",
                    f"expected:{line_id}",
                    {"warehouse": warehouse, "reference": row["reference"], "sscc": row["sscc"]},
                    ip,
                )
                row = self._line(conn, warehouse_id, line_id)
            return _line_json(row, warehouse)

    def _warehouse_id(self, conn: sa.Connection, code: str) -> int:
        found = None
        if valid_code(code):
            found = conn.execute(
                sa.select(warehouses.c.id).where(
                    warehouses.c.tenant_id == self.tenant_id, warehouses.c.code == code
                )
            ).scalar()
        if found is None:
            raise NotFound(f"no warehouse {code!r} in this tenant")
        return int(found)

    def _line(self, conn: sa.Connection, warehouse_id: int, line_id: int) -> sa.RowMapping:
        row = (
            conn.execute(
                sa.select(expected_lines).where(
                    expected_lines.c.id == line_id,
                    expected_lines.c.tenant_id == self.tenant_id,
                    expected_lines.c.warehouse_id == warehouse_id,
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no expected line {line_id} in this warehouse")
        return row

    def _refuse_repeated_ssccs(
        self, conn: sa.Connection, warehouse_id: int, lines: list[dict[str, Any]], indexed: bool
    ) -> None:
        seen: dict[tuple[str, str], int] = {}
        for index, line in enumerate(lines):
            if line.get("sscc"):
                key = (line["direction"], line["sscc"])
                if key in seen:
                    raise AlreadyExpected(line["sscc"], index, None, indexed=indexed)
                seen[key] = index
        ssccs = sorted({sscc for _, sscc in seen})
        for chunk in _chunks(ssccs):
            for row in conn.execute(
                sa.select(expected_lines.c.id, expected_lines.c.direction, expected_lines.c.sscc)
                .where(
                    expected_lines.c.warehouse_id == warehouse_id,
                    expected_lines.c.status == "open",
                    expected_lines.c.sscc.in_(chunk),
                )
                .order_by(expected_lines.c.id)
            ):
                index = seen.get((row.direction, row.sscc))
                if index is not None:
                    raise AlreadyExpected(row.sscc, index, row.id, indexed=indexed)


# --- delivery to the edge boxes (ingest workers) ------------------------------------------


@dataclass(frozen=True)
class BoxBehind:
    """An edge box whose warehouse's lines changed since the stamp it was last sent."""

    device_id: int
    code: str
    tenant_id: int
    tenant: str
    warehouse_id: int
    warehouse: str
    latest: int
    sent: int | None  # None: never sent anything; it gets the full set


def warehouse_stamp(engine: Engine, warehouse_id: int) -> int:
    """The warehouse's latest change stamp; 0 when it never had an expected line."""
    with engine.connect() as conn:
        return _stamp(conn, warehouse_id)


def open_lines(engine: Engine, warehouse_id: int) -> list[wire.CloudLine]:
    """Every open line of the warehouse in id order, as the downlink carries them."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(expected_lines)
            .where(expected_lines.c.warehouse_id == warehouse_id, expected_lines.c.status == "open")
            .order_by(expected_lines.c.id)
        ).mappings()
        return [cloud_line(row) for row in rows]


def changed_lines(
    engine: Engine, warehouse_id: int, after: int, through: int
) -> list[wire.CloudLine]:
    """Lines whose stamp is in (after, through], whatever their status, in stamp order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(expected_lines)
            .where(
                expected_lines.c.warehouse_id == warehouse_id,
                expected_lines.c.version > after,
                expected_lines.c.version <= through,
            )
            .order_by(expected_lines.c.version, expected_lines.c.id)
        ).mappings()
        return [cloud_line(row) for row in rows]


def boxes_behind(engine: Engine, limit: int = 500) -> list[BoxBehind]:
    """Edge boxes (not revoked) of warehouses with lines changed since the stamp they were
    last sent, or never sent anything although their warehouse has lines."""
    latest = (
        sa.select(sa.func.max(expected_lines.c.version))
        .where(expected_lines.c.warehouse_id == devices.c.warehouse_id)
        .scalar_subquery()
    )
    sent = (
        sa.select(expected_deliveries.c.version)
        .where(expected_deliveries.c.device_id == devices.c.id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            devices.c.id,
            devices.c.code,
            devices.c.tenant_id,
            tenants.c.code,
            devices.c.warehouse_id,
            warehouses.c.code,
            latest,
            sent,
        )
        .join(tenants, tenants.c.id == devices.c.tenant_id)
        .join(warehouses, warehouses.c.id == devices.c.warehouse_id)
        .where(
            devices.c.kind == "edge",
            devices.c.revoked_at.is_(None),
            latest.is_not(None),
            sa.or_(sent.is_(None), sent < latest),
        )
        .order_by(devices.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [BoxBehind(*row) for row in conn.execute(query)]


def record_sent(engine: Engine, device_id: int, tenant_id: int, version: int) -> bool:
    """Note that the box was sent everything up to ``version``. False when it was sent as
    much or more already (another ingest worker got there first): then send nothing."""
    now = utcnow()
    with atomic(engine) as conn:
        moved = conn.execute(
            expected_deliveries.update()
            .where(
                expected_deliveries.c.device_id == device_id,
                expected_deliveries.c.version < version,
            )
            .values(version=version, sent_at=now)
        ).rowcount
        if moved:
            return True
        insert = insert_for(conn)
        added = conn.execute(
            insert(expected_deliveries)
            .values(device_id=device_id, tenant_id=tenant_id, version=version, sent_at=now)
            .on_conflict_do_nothing(index_elements=["device_id"])
        ).rowcount
        return bool(added)


def close_from_ledger(
    engine: Engine, tenant_id: int, warehouse_id: int, movements: Iterable[dict[str, Any]]
) -> int:
    """Close the open lines whose pallet these ledger rows receive or ship (by SSCC, in the
    line's direction); returns how many. A repeat finds nothing left to close."""
    done: dict[tuple[str, str], str] = {}
    for movement in movements:
        direction = MOVEMENT_DIRECTION.get(movement.get("type", ""))
        if direction and movement.get("sscc"):
            done.setdefault((direction, movement["sscc"]), movement["movement_id"])
    if not done:
        return 0
    ssccs = sorted({sscc for _, sscc in done})
    matched: list[tuple[int, str, str]] = []  # (line id, status, movement id)
    with engine.connect() as conn:  # the common case, no line to close, takes no lock
        for chunk in _chunks(ssccs):
            for row in conn.execute(
                sa.select(
                    expected_lines.c.id, expected_lines.c.direction, expected_lines.c.sscc
                ).where(
                    expected_lines.c.tenant_id == tenant_id,
                    expected_lines.c.warehouse_id == warehouse_id,
                    expected_lines.c.status == "open",
                    expected_lines.c.sscc.in_(chunk),
                )
            ):
                movement_id = done.get((row.direction, row.sscc))
                if movement_id is not None:
                    matched.append((row.id, DONE_STATUS[row.direction], movement_id))
    if not matched:
        return 0
    closed = 0
    now = utcnow()
    with atomic(engine) as conn:
        version = _next_stamp(conn, warehouse_id)
        for line_id, status, movement_id in matched:
            closed += conn.execute(
                expected_lines.update()
                .where(expected_lines.c.id == line_id, expected_lines.c.status == "open")
                .values(status=status, movement_id=movement_id, version=version, closed_at=now)
            ).rowcount
    return closed


def cloud_line(row: Any) -> wire.CloudLine:
    """A stored line as the ``expected`` command carries it (``wire.encode_expected``)."""
    return wire.CloudLine(
        id=row["id"],
        version=row["version"],
        status=row["status"],
        gate=row["gate"],
        line=ExpectedLine(
            direction=row["direction"],
            qty=row["qty"],
            sscc=row["sscc"],
            gtin=row["gtin"],
            lot=row["lot"],
            weight_g=row["weight_g"],
            customer=row["customer"],
            reference=row["reference"],
        ),
    )


def _stamp(conn: sa.Connection, warehouse_id: int) -> int:
    current = conn.execute(
        sa.select(sa.func.max(expected_lines.c.version)).where(
            expected_lines.c.warehouse_id == warehouse_id
        )
    ).scalar()
    return int(current or 0)


def _next_stamp(conn: sa.Connection, warehouse_id: int) -> int:
    """The stamp of a change about to be written, taken under the warehouse's lock."""
    conn.execute(
        sa.select(warehouses.c.id)
        .where(warehouses.c.id == warehouse_id)
        .with_for_update(key_share=True)
    )
    return _stamp(conn, warehouse_id) + 1


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _line_json(row: Any, warehouse: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "warehouse": warehouse,
        "direction": row["direction"],
        "sscc": row["sscc"],
        "gtin": row["gtin"],
        "lot": row["lot"],
        "qty": row["qty"],
        "weight_kg": grams_to_kg(row["weight_g"]) if row["weight_g"] is not None else None,
        "customer": row["customer"],
        "reference": row["reference"],
        "gate": row["gate"],
        "status": row["status"],
        "movement_id": row["movement_id"],
        "created_at": format_ts(row["created_at"]),
        "closed_at": format_ts(row["closed_at"]) if row["closed_at"] else None,
    }


__all__ = [
    "FEATURE_OF",
    "MAX_LINES",
    "STATUSES",
    "AlreadyExpected",
    "BoxBehind",
    "LineClosed",
    "TenantExpected",
    "boxes_behind",
    "changed_lines",
    "close_from_ledger",
    "cloud_line",
    "open_lines",
    "read_lines",
    "record_sent",
    "require_features",
    "warehouse_stamp",
]
