"""仓库管理: warehouses, 库区 zones, 库位 locations and devices of one tenant. All their SQL.

``TenantSites`` is built with one tenant id and every query it runs is filtered by it, so a
route cannot reach another tenant's rows. Every change writes its audit entry in the same
transaction. Codes that cannot exist (wrong characters, NUL bytes PostgreSQL would refuse)
are answered with ``NotFound`` before any query runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from cangyun.errors import AlreadyExists, Invalid, NotFound
from cangyun.timeutil import utcnow
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import devices, locations, service_accounts, warehouses, zones
from cloud_api.platform.tenancy import Caller, TenantStore
from cloud_api.sites.labels import LOCATION_CODE, MAX_LABELS

# Warehouse, zone and device codes: ASCII letters, digits, "_.-", 1-63 characters. Warehouse
# and device codes become MQTT topic levels and usernames, so nothing else may enter them.
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ZONE_KINDS = ("storage", "receiving", "staging", "shipping", "cold", "quarantine")
DEVICE_KINDS = ("edge", "pda", "camera")
EXISTING_SHOWN = 1000  # clashing codes listed in a refused bulk request
MAX_AREA_M2 = Decimal(1_000_000)
CENT = Decimal("0.01")
_IN_CHUNK = 500  # codes per IN (...) list


class LocationsExist(AlreadyExists):
    """A block of locations clashes with codes the warehouse already has."""

    code = "locations_exist"

    def __init__(self, existing: list[str]) -> None:
        clash = (
            f"location {existing[0]!r} already exists"
            if len(existing) == 1
            else f"{len(existing)} of these location codes already exist"
        )
        super().__init__(
            clash, details={"existing": existing[:EXISTING_SHOWN], "count": len(existing)}
        )
        # str() stays the clash alone, which the console shows; the API says the rest.
        self.message = f"{clash}; nothing was created"
        self.existing = existing


class UnknownZone(Invalid):
    """A zone named in a request body that the warehouse does not have."""

    code = "unknown_zone"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="zone")


class DeviceCodeTaken(AlreadyExists):
    """Device codes are global (they are MQTT usernames): whose the code is stays unsaid."""

    code = "code_taken"

    def __init__(self, code: str) -> None:
        super().__init__(f"device code {code!r} is taken; choose another", field="code")


def business_area(value: float | Decimal | None) -> Decimal | None:
    """Business area in m², exact to the cent: it decides the traceability edition's period
    price. Binary noise (0.1 + 0.2) rounds away; more digits than cents are a typo."""
    if value is None:
        return None
    refused = Invalid(
        "area_m2 must be a number of m² above 0 and at most 1,000,000, in 0.01 steps",
        code="invalid_area",
        field="area_m2",
    )
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise refused
    if not math.isfinite(value):
        raise refused
    exact = Decimal(str(value))
    if not 0 < exact <= MAX_AREA_M2:
        raise refused
    try:
        rounded = exact.quantize(CENT)
    except InvalidOperation as exc:
        raise refused from exc
    if abs(exact - rounded) > Decimal("1e-9"):
        raise refused
    return rounded


def valid_code(text: object) -> bool:
    return isinstance(text, str) and CODE.fullmatch(text) is not None


class TenantSites(TenantStore):
    # --- warehouses ---------------------------------------------------------------------

    def warehouses(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(self._warehouse_query().order_by(warehouses.c.code)).mappings()
            return [_warehouse_json(r) for r in rows]

    def warehouse(self, code: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = (
                conn.execute(self._warehouse_query().where(warehouses.c.code == code))
                .mappings()
                .first()
                if valid_code(code)
                else None
            )
        if row is None:
            raise NotFound(f"no warehouse {code!r} in this tenant")
        return _warehouse_json(row)

    def create_warehouse(
        self,
        *,
        code: str,
        name: str,
        address: str,
        area_m2: Decimal | None,
        caller: Caller,
        ip: str,
    ) -> dict[str, Any]:
        area_m2 = business_area(area_m2)
        try:
            with atomic(self.engine) as conn:
                conn.execute(
                    warehouses.insert().values(
                        tenant_id=self.tenant_id,
                        code=code,
                        name=name,
                        address=address,
                        area_m2=area_m2,
                        created_at=utcnow(),
                    )
                )
                details = {"name": name, "address": address, "area_m2": _number(area_m2)}
                self._audit(conn, caller, "warehouse.created", f"warehouse:{code}", details, ip)
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(f"warehouse {code!r} already exists", field="code") from exc
        return self.warehouse(code)

    def update_warehouse(
        self, code: str, changes: dict[str, Any], caller: Caller, ip: str
    ) -> dict[str, Any]:
        if "area_m2" in changes:
            changes = changes | {"area_m2": business_area(changes["area_m2"])}
        with atomic(self.engine) as conn:
            row = self._warehouse_row(conn, code)
            changes = {k: v for k, v in changes.items() if row[k] != v}
            if changes:
                conn.execute(
                    warehouses.update().where(warehouses.c.id == row["id"]).values(**changes)
                )
                before = {k: _number(row[k]) for k in changes}
                after = {k: _number(v) for k, v in changes.items()}
                self._audit(
                    conn,
                    caller,
                    "warehouse.updated",
                    f"warehouse:{code}",
                    {"before": before, "after": after},
                    ip,
                )
        return self.warehouse(code)

    def require_warehouse(self, code: str) -> None:
        with self.engine.connect() as conn:
            self._warehouse_row(conn, code)

    def _warehouse_query(self) -> sa.Select[Any]:
        def count(table: sa.Table) -> sa.ScalarSelect[Any]:
            return (
                sa.select(sa.func.count())
                .where(table.c.warehouse_id == warehouses.c.id)
                .scalar_subquery()
            )

        return sa.select(
            warehouses,
            count(zones).label("zones"),
            count(locations).label("locations"),
            sa.select(sa.func.count())
            .where(devices.c.warehouse_id == warehouses.c.id, devices.c.revoked_at.is_(None))
            .scalar_subquery()
            .label("devices"),
        ).where(warehouses.c.tenant_id == self.tenant_id)

    def _warehouse_row(self, conn: sa.Connection, code: str) -> sa.RowMapping:
        row = None
        if valid_code(code):
            row = (
                conn.execute(
                    sa.select(warehouses).where(
                        warehouses.c.tenant_id == self.tenant_id, warehouses.c.code == code
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no warehouse {code!r} in this tenant")
        return row

    # --- 库区 zones -----------------------------------------------------------------------

    def zones(self, warehouse: str) -> list[dict[str, Any]]:
        location_count = (
            sa.select(sa.func.count())
            .where(locations.c.zone_id == zones.c.id)
            .scalar_subquery()
            .label("locations")
        )
        with self.engine.connect() as conn:
            row = self._warehouse_row(conn, warehouse)
            rows = conn.execute(
                sa.select(zones, location_count)
                .where(zones.c.tenant_id == self.tenant_id, zones.c.warehouse_id == row["id"])
                .order_by(zones.c.code)
            ).mappings()
            return [_zone_json(r) for r in rows]

    def zone(self, warehouse: str, code: str) -> dict[str, Any]:
        for item in self.zones(warehouse):
            if item["code"] == code:
                return item
        raise NotFound(f"no zone {code!r} in warehouse {warehouse!r}")

    def create_zone(
        self, warehouse: str, *, code: str, name: str, kind: str, caller: Caller, ip: str
    ) -> dict[str, Any]:
        try:
            with atomic(self.engine) as conn:
                row = self._warehouse_row(conn, warehouse)
                conn.execute(
                    zones.insert().values(
                        tenant_id=self.tenant_id,
                        warehouse_id=row["id"],
                        code=code,
                        name=name,
                        kind=kind,
                        created_at=utcnow(),
                    )
                )
                self._audit(
                    conn,
                    caller,
                    "zone.created",
                    f"zone:{warehouse}/{code}",
                    {"name": name, "kind": kind},
                    ip,
                )
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                f"zone {code!r} already exists in {warehouse!r}", field="code"
            ) from exc
        return self.zone(warehouse, code)

    def _zone_id(self, conn: sa.Connection, warehouse_id: int, code: str) -> int | None:
        if not valid_code(code):
            return None
        return conn.execute(
            sa.select(zones.c.id).where(
                zones.c.tenant_id == self.tenant_id,
                zones.c.warehouse_id == warehouse_id,
                zones.c.code == code,
            )
        ).scalar()

    # --- 库位 locations -------------------------------------------------------------------

    def locations(
        self,
        warehouse: str,
        *,
        zone: str | None = None,
        prefix: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> tuple[int, list[dict[str, Any]], str | None]:
        """One page in code order: (total matching, items, last code if more follow)."""
        with self.engine.connect() as conn:
            conditions = self._location_filter(conn, warehouse, zone, prefix)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(locations).where(*conditions)
            ).scalar_one()
            key = self._code_order(locations.c.code)
            if after is not None:
                conditions.append(key > after)
            rows = (
                conn.execute(
                    sa.select(locations, zones.c.code.label("zone"))
                    .outerjoin(zones, zones.c.id == locations.c.zone_id)
                    .where(*conditions)
                    .order_by(key)
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return total, [_location_json(r) for r in rows], rows[-1]["code"] if more else None

    def label_rows(
        self, warehouse: str, *, zone: str | None, prefix: str | None, limit: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
        """The warehouse, up to ``limit`` matching locations with zone names, and the count."""
        with self.engine.connect() as conn:
            row = self._warehouse_row(conn, warehouse)
            conditions = self._location_filter(conn, warehouse, zone, prefix)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(locations).where(*conditions)
            ).scalar_one()
            key = self._code_order(locations.c.code)
            rows = conn.execute(
                sa.select(
                    locations.c.code,
                    zones.c.code.label("zone"),
                    sa.func.coalesce(zones.c.name, "").label("zone_name"),
                )
                .outerjoin(zones, zones.c.id == locations.c.zone_id)
                .where(*conditions)
                .order_by(key)
                .limit(limit)
            ).mappings()
            items = [dict(r) for r in rows]
        return {"code": row["code"], "name": row["name"]}, items, total

    def printable_locations(
        self, warehouse: str, *, zone: str | None, prefix: str | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The rows of one label sheet: at least one, at most ``MAX_LABELS``."""
        found, rows, total = self.label_rows(warehouse, zone=zone, prefix=prefix, limit=MAX_LABELS)
        if total > MAX_LABELS:
            raise Invalid(
                f"{total} locations match; one PDF holds at most {MAX_LABELS} labels:"
                " filter by zone or prefix",
                code="too_many_labels",
                field="prefix",
                details={"count": total, "limit": MAX_LABELS},
            )
        if not rows:
            raise NotFound("no locations match; nothing to print", code="no_locations")
        return found, rows

    def create_location(
        self,
        warehouse: str,
        *,
        code: str,
        name: str,
        zone: str | None,
        caller: Caller,
        ip: str,
    ) -> dict[str, Any]:
        try:
            with atomic(self.engine) as conn:
                row = self._warehouse_row(conn, warehouse)
                zone_id = self._required_zone(conn, row["id"], warehouse, zone)
                conn.execute(
                    locations.insert().values(
                        tenant_id=self.tenant_id,
                        warehouse_id=row["id"],
                        zone_id=zone_id,
                        code=code,
                        name=name,
                        created_at=utcnow(),
                    )
                )
                self._audit(
                    conn,
                    caller,
                    "location.created",
                    f"location:{warehouse}/{code}",
                    {"zone": zone, "name": name},
                    ip,
                )
        except sa.exc.IntegrityError as exc:
            raise LocationsExist([code]) from exc
        return self.location(warehouse, code)

    def location(self, warehouse: str, code: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._warehouse_row(conn, warehouse)
            found = (
                conn.execute(
                    sa.select(locations, zones.c.code.label("zone"))
                    .outerjoin(zones, zones.c.id == locations.c.zone_id)
                    .where(
                        locations.c.tenant_id == self.tenant_id,
                        locations.c.warehouse_id == row["id"],
                        locations.c.code == code,
                    )
                )
                .mappings()
                .first()
                if LOCATION_CODE.fullmatch(code)
                else None
            )
        if found is None:
            raise NotFound(f"no location {code!r} in warehouse {warehouse!r}")
        return _location_json(found)

    def create_locations(
        self, warehouse: str, codes: list[str], *, zone: str | None, caller: Caller, ip: str
    ) -> int:
        """All of ``codes`` or none: any code already there refuses the whole block."""
        try:
            with atomic(self.engine) as conn:
                row = self._warehouse_row(conn, warehouse)
                zone_id = self._required_zone(conn, row["id"], warehouse, zone)
                existing = self._existing_codes(conn, row["id"], codes)
                if existing:
                    raise LocationsExist(existing)
                now = utcnow()
                conn.execute(
                    locations.insert(),
                    [
                        {
                            "tenant_id": self.tenant_id,
                            "warehouse_id": row["id"],
                            "zone_id": zone_id,
                            "code": code,
                            "name": "",
                            "created_at": now,
                        }
                        for code in codes
                    ],
                )
                self._audit(
                    conn,
                    caller,
                    "locations.generated",
                    f"warehouse:{warehouse}",
                    {"zone": zone, "count": len(codes), "first": codes[0], "last": codes[-1]},
                    ip,
                )
        except sa.exc.IntegrityError as exc:
            # Someone added some of these codes between our check and our insert.
            with self.engine.connect() as conn:
                row = self._warehouse_row(conn, warehouse)
                raise LocationsExist(self._existing_codes(conn, row["id"], codes)) from exc
        return len(codes)

    def delete_location(self, warehouse: str, code: str, caller: Caller, ip: str) -> None:
        """The cloud keeps stock per warehouse, not per bin, so nothing here can hold goods;
        the edge box decides what a scan of a deleted code means."""
        with atomic(self.engine) as conn:
            row = self._warehouse_row(conn, warehouse)
            result = (
                conn.execute(
                    locations.delete().where(
                        locations.c.tenant_id == self.tenant_id,
                        locations.c.warehouse_id == row["id"],
                        locations.c.code == code,
                    )
                )
                if LOCATION_CODE.fullmatch(code)
                else None
            )
            if result is None or result.rowcount == 0:
                raise NotFound(f"no location {code!r} in warehouse {warehouse!r}")
            self._audit(conn, caller, "location.deleted", f"location:{warehouse}/{code}", {}, ip)

    def _location_filter(
        self, conn: sa.Connection, warehouse: str, zone: str | None, prefix: str | None
    ) -> list[sa.ColumnElement[bool]]:
        row = self._warehouse_row(conn, warehouse)
        conditions: list[sa.ColumnElement[bool]] = [
            locations.c.tenant_id == self.tenant_id,
            locations.c.warehouse_id == row["id"],
        ]
        if zone is not None:
            zone_id = self._zone_id(conn, row["id"], zone)
            # An unknown zone holds nothing (comparing with None would mean "no zone").
            conditions.append(locations.c.zone_id == zone_id if zone_id else sa.false())
        if prefix:
            conditions.append(locations.c.code.startswith(prefix, autoescape=True))
        return conditions

    def _required_zone(
        self, conn: sa.Connection, warehouse_id: int, warehouse: str, zone: str | None
    ) -> int | None:
        if zone is None:
            return None
        zone_id = self._zone_id(conn, warehouse_id, zone)
        if zone_id is None:
            raise UnknownZone(f"no zone {zone!r} in warehouse {warehouse!r}")
        return zone_id

    def _existing_codes(
        self, conn: sa.Connection, warehouse_id: int, codes: Iterable[str]
    ) -> list[str]:
        wanted = list(codes)
        found: list[str] = []
        for start in range(0, len(wanted), _IN_CHUNK):
            found += conn.execute(
                sa.select(locations.c.code).where(
                    locations.c.warehouse_id == warehouse_id,
                    locations.c.code.in_(wanted[start : start + _IN_CHUNK]),
                )
            ).scalars()
        return sorted(found)

    def _code_order(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        # Byte order on both databases, whatever PostgreSQL's collation: pages and PDFs
        # list A-01-1, A-01-2 … the same way everywhere.
        return column.collate("C") if self.engine.dialect.name == "postgresql" else column

    # --- devices ------------------------------------------------------------------------

    def device(self, code: str) -> dict[str, Any]:
        row = None
        if valid_code(code):
            with self.engine.connect() as conn:
                row = (
                    conn.execute(
                        sa.select(devices, warehouses.c.code.label("warehouse"))
                        .join(warehouses, warehouses.c.id == devices.c.warehouse_id)
                        .where(devices.c.tenant_id == self.tenant_id, devices.c.code == code)
                    )
                    .mappings()
                    .first()
                )
        if row is None:
            raise NotFound(f"no device {code!r} in this tenant")
        return _device_json(row)

    def is_broker_account(self, code: str) -> bool:
        """A service account of the broker (ingest) goes by this name: no device may."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(service_accounts.c.id).where(service_accounts.c.username == code)
            ).first()
        return found is not None

    def require_free_device_code(self, code: str, reserved: Iterable[str] = ()) -> None:
        """No device of any tenant, no broker account (ingest) and none of ``reserved`` goes
        by ``code``: they share the broker's one username space. Revoked codes stay taken:
        they name ledger rows and old broker sessions."""
        with self.engine.connect() as conn:
            device = conn.execute(sa.select(devices.c.id).where(devices.c.code == code)).first()
        if device is not None or code in set(reserved) or self.is_broker_account(code):
            raise DeviceCodeTaken(code)

    def register_device(
        self,
        *,
        warehouse: str,
        code: str,
        kind: str,
        name: str,
        caller: Caller,
        ip: str,
    ) -> dict[str, Any]:
        """A PDA or camera: known to the cloud, but with no broker account (it talks to its
        edge box). Edge boxes are registered by provisioning, which makes their account."""
        try:
            with atomic(self.engine) as conn:
                row = self._warehouse_row(conn, warehouse)
                conn.execute(
                    devices.insert().values(
                        tenant_id=self.tenant_id,
                        warehouse_id=row["id"],
                        code=code,
                        kind=kind,
                        name=name,
                        mqtt_password_hash=None,
                        created_at=utcnow(),
                    )
                )
                self._audit(
                    conn,
                    caller,
                    "device.registered",
                    f"device:{code}",
                    {"warehouse": warehouse, "kind": kind, "name": name},
                    ip,
                )
        except sa.exc.IntegrityError as exc:
            raise DeviceCodeTaken(code) from exc
        return self.device(code)

    def update_device(self, code: str, name: str, caller: Caller, ip: str) -> dict[str, Any]:
        before = self.device(code)
        if before["name"] != name:
            with atomic(self.engine) as conn:
                conn.execute(
                    devices.update()
                    .where(devices.c.tenant_id == self.tenant_id, devices.c.code == code)
                    .values(name=name)
                )
                self._audit(
                    conn,
                    caller,
                    "device.updated",
                    f"device:{code}",
                    {"before": {"name": before["name"]}, "after": {"name": name}},
                    ip,
                )
        return self.device(code)

    def revoke_device(self, code: str, caller: Caller, ip: str) -> bool:
        """Mark the device revoked; False if it already was (nothing changes then)."""
        self.device(code)  # NotFound outside this tenant
        with atomic(self.engine) as conn:
            result = conn.execute(
                devices.update()
                .where(
                    devices.c.tenant_id == self.tenant_id,
                    devices.c.code == code,
                    devices.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow(), online=False)
            )
            if result.rowcount == 0:
                return False
            self._audit(conn, caller, "device.revoked", f"device:{code}", {}, ip)
        return True


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _warehouse_json(row: Any) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "address": row["address"],
        "area_m2": _number(row["area_m2"]),
        "zones": row["zones"],
        "locations": row["locations"],
        "devices": row["devices"],
        "created_at": _iso(row["created_at"]),
    }


def _zone_json(row: Any) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "kind": row["kind"],
        "locations": row["locations"],
        "created_at": _iso(row["created_at"]),
    }


def _location_json(row: Any) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "zone": row["zone"],
        "created_at": _iso(row["created_at"]),
    }


def _device_json(row: Any) -> dict[str, Any]:
    return {
        "code": row["code"],
        "kind": row["kind"],
        "name": row["name"],
        "warehouse": row["warehouse"],
        # Edge boxes hold a broker account; PDAs and cameras reach the cloud through them.
        "mqtt": row["mqtt_password_hash"] is not None and row["revoked_at"] is None,
        "online": bool(row["online"]),
        "status_at": _iso(row["status_at"]),
        "last_seen_at": _iso(row["last_seen_at"]),
        "current_epoch": row["current_epoch"],
        "created_at": _iso(row["created_at"]),
        "revoked_at": _iso(row["revoked_at"]),
    }


__all__ = [
    "DEVICE_KINDS",
    "ZONE_KINDS",
    "DeviceCodeTaken",
    "LocationsExist",
    "TenantSites",
    "UnknownZone",
    "business_area",
]
