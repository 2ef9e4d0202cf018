"""Tenants, warehouses, devices, service accounts, users and API tokens: all their SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.errors import AlreadyExists, NotFound
from cangyun.timeutil import utcnow
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import (
    devices,
    service_accounts,
    tenants,
    warehouses,
)


@dataclass(frozen=True)
class DeviceRef:
    """What ingest needs to know about a device to file its messages."""

    id: int
    code: str
    tenant_id: int
    tenant: str
    warehouse_id: int
    warehouse: str
    revoked: bool


def _insert(engine: Engine, table: sa.Table, values: dict[str, Any], what: str) -> int:
    try:
        with atomic(engine) as conn:
            return conn.execute(table.insert().values(**values)).inserted_primary_key[0]
    except sa.exc.IntegrityError as exc:
        raise AlreadyExists(f"{what} already exists") from exc


def create_tenant(engine: Engine, code: str, name: str, timezone: str = "Asia/Shanghai") -> int:
    return _insert(
        engine,
        tenants,
        {"code": code, "name": name, "timezone": timezone, "created_at": utcnow()},
        f"tenant {code!r}",
    )


def tenant_by_code(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(tenants).where(tenants.c.code == code)).mappings().first()
    if row is None:
        raise NotFound(f"no tenant {code!r}")
    return dict(row)


def create_warehouse(engine: Engine, tenant_id: int, code: str, name: str) -> int:
    return _insert(
        engine,
        warehouses,
        {"tenant_id": tenant_id, "code": code, "name": name, "created_at": utcnow()},
        f"warehouse {code!r}",
    )


def warehouse_by_code(engine: Engine, tenant_id: int, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(warehouses).where(
                    warehouses.c.tenant_id == tenant_id, warehouses.c.code == code
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no warehouse {code!r} in this tenant")
    return dict(row)


def create_device(
    engine: Engine,
    tenant_id: int,
    warehouse_id: int,
    code: str,
    *,
    kind: str,
    name: str,
    mqtt_password_hash: str | None,
) -> int:
    return _insert(
        engine,
        devices,
        {
            "tenant_id": tenant_id,
            "warehouse_id": warehouse_id,
            "code": code,
            "kind": kind,
            "name": name,
            "mqtt_password_hash": mqtt_password_hash,
            "created_at": utcnow(),
        },
        f"device {code!r}",
    )


def set_device_password(engine: Engine, code: str, mqtt_password_hash: str) -> None:
    with atomic(engine) as conn:
        result = conn.execute(
            devices.update()
            .where(devices.c.code == code)
            .values(mqtt_password_hash=mqtt_password_hash)
        )
    if result.rowcount == 0:
        raise NotFound(f"no device {code!r}")


_DEVICE_REF = (
    sa.select(
        devices.c.id,
        devices.c.code,
        devices.c.tenant_id,
        tenants.c.code.label("tenant"),
        devices.c.warehouse_id,
        warehouses.c.code.label("warehouse"),
        devices.c.revoked_at,
    )
    .join(tenants, tenants.c.id == devices.c.tenant_id)
    .join(warehouses, warehouses.c.id == devices.c.warehouse_id)
)


def device_ref(engine: Engine, code: str) -> DeviceRef | None:
    with engine.connect() as conn:
        row = conn.execute(_DEVICE_REF.where(devices.c.code == code)).first()
    if row is None:
        return None
    return DeviceRef(
        row.id,
        row.code,
        row.tenant_id,
        row.tenant,
        row.warehouse_id,
        row.warehouse,
        row.revoked_at is not None,
    )


def list_devices(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    query = (
        sa.select(
            devices.c.code,
            devices.c.kind,
            devices.c.name,
            warehouses.c.code.label("warehouse"),
            devices.c.online,
            devices.c.status_at,
            devices.c.last_seen_at,
            devices.c.current_epoch,
            devices.c.created_at,
            devices.c.revoked_at,
        )
        .join(warehouses, warehouses.c.id == devices.c.warehouse_id)
        .where(devices.c.tenant_id == tenant_id)
        .order_by(devices.c.code)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def create_service_account(
    engine: Engine, username: str, role: str, mqtt_password_hash: str
) -> None:
    with atomic(engine) as conn:
        existing = conn.execute(
            sa.select(service_accounts.c.id).where(service_accounts.c.username == username)
        ).first()
        values = {"role": role, "mqtt_password_hash": mqtt_password_hash}
        if existing:
            conn.execute(
                service_accounts.update()
                .where(service_accounts.c.username == username)
                .values(**values)
            )
        else:
            conn.execute(
                service_accounts.insert().values(username=username, created_at=utcnow(), **values)
            )


@dataclass(frozen=True)
class BrokerAccount:
    username: str
    password_hash: str
    # (access, topic filter) pairs, access being "read", "write" or "readwrite".
    grants: tuple[tuple[str, str], ...]


def broker_accounts(engine: Engine) -> list[BrokerAccount]:
    """Every MQTT account the broker must know, with exactly the topics each may use."""
    from cangyun import wire

    accounts: list[BrokerAccount] = []
    with engine.connect() as conn:
        for row in conn.execute(sa.select(service_accounts).order_by(service_accounts.c.username)):
            if row.role == "ingest":
                accounts.append(
                    BrokerAccount(row.username, row.mqtt_password_hash, wire.ingest_grants())
                )
        query = _DEVICE_REF.add_columns(devices.c.mqtt_password_hash).order_by(devices.c.code)
        for row in conn.execute(query):
            if row.revoked_at is not None or not row.mqtt_password_hash:
                continue
            address = wire.DeviceAddress(row.tenant, row.warehouse, row.code)
            accounts.append(
                BrokerAccount(row.code, row.mqtt_password_hash, wire.device_grants(address))
            )
    return accounts
