"""Provisioning: set up the cloud database and create tenants, warehouses and devices.

Used by the ``cangyun cloud`` admin commands and by the demo. Creating a device returns its
credentials once and writes the edge box's settings file; the broker's password and ACL
files are rebuilt so the new device can connect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from cangyun import wire
from cangyun.box_settings import (
    CloudSection,
    DeviceSection,
    EdgeSection,
    EdgeSettings,
    MqttSection,
    SyncSection,
)
from cangyun.settings import dump_settings
from cloud_api.accounts import credentials
from cloud_api.accounts import store as accounts
from cloud_api.billing import signing
from cloud_api.platform.db import make_engine, upgrade
from cloud_api.settings import CloudSettings
from cloud_api.sites import broker_files, registry

INGEST_ROLE = "ingest"


class ProvisioningError(ValueError):
    pass


def init(settings: CloudSettings) -> Engine:
    """Create or upgrade the database, the signing key, the ingest account and broker files."""
    if not settings.mqtt.password:
        raise ProvisioningError("mqtt.password (the ingest workers' broker password) is not set")
    settings.cloud.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    signing.load_or_create(settings.signing_key_file)
    registry.create_service_account(
        engine,
        settings.mqtt.username,
        INGEST_ROLE,
        credentials.mosquitto_hash(settings.mqtt.password),
    )
    broker_files.write_broker_files(settings, engine)
    return engine


def _check_code(kind: str, code: str) -> None:
    if not wire.is_valid_code(code):
        raise ProvisioningError(
            f"{kind} code {code!r} must be 1-63 ASCII letters, digits, '_', '.' or '-'"
        )


@dataclass(frozen=True)
class TenantCreated:
    tenant: str
    token: str
    admin_email: str | None


def create_tenant(
    engine: Engine,
    code: str,
    name: str,
    *,
    timezone: str = "Asia/Shanghai",
    admin_email: str | None = None,
    admin_password: str | None = None,
) -> TenantCreated:
    _check_code("tenant", code)
    tenant_id = registry.create_tenant(engine, code, name, timezone)
    if admin_email:
        if not admin_password:
            raise ProvisioningError("an admin user needs a password")
        accounts.create_owner(engine, tenant_id, admin_email, admin_password)
    token = accounts.create_api_key(
        engine, tenant_id, "admin", name="provisioning", actor="provisioning"
    )
    return TenantCreated(code, token, admin_email)


def create_warehouse(engine: Engine, tenant: str, code: str, name: str) -> None:
    _check_code("warehouse", code)
    tenant_row = registry.tenant_by_code(engine, tenant)
    registry.create_warehouse(engine, tenant_row["id"], code, name)


@dataclass(frozen=True)
class DeviceCreated:
    device: str
    mqtt_username: str
    mqtt_password: str
    api_token: str
    settings: EdgeSettings


def create_device(
    settings: CloudSettings,
    engine: Engine,
    *,
    tenant: str,
    warehouse: str,
    code: str,
    name: str = "",
    edge_port: int = 8080,
    edge_data_dir: Path | None = None,
    out: Path | None = None,
) -> DeviceCreated:
    """Register an edge box and write its settings file (credentials are shown only here)."""
    _check_code("device", code)
    if code == settings.mqtt.username:
        # The broker files would then grant this device the ingest account's rights.
        raise ProvisioningError(f"device code {code!r} is the ingest account's name")
    tenant_row = registry.tenant_by_code(engine, tenant)
    warehouse_row = registry.warehouse_by_code(engine, tenant_row["id"], warehouse)
    mqtt_password = credentials.new_password()
    registry.create_device(
        engine,
        tenant_row["id"],
        warehouse_row["id"],
        code,
        kind="edge",
        name=name or code,
        mqtt_password_hash=credentials.mosquitto_hash(mqtt_password),
    )
    broker_files.write_broker_files(settings, engine)
    api_token = credentials.new_token()
    public_key = signing.public_key_b64(signing.load_or_create(settings.signing_key_file))
    edge_settings = EdgeSettings(
        device=DeviceSection(tenant=tenant, warehouse=warehouse, device=code),
        edge=EdgeSection(
            port=edge_port,
            data_dir=edge_data_dir or Path("edge-data"),
            api_token=api_token,
        ),
        mqtt=MqttSection(
            url=settings.mqtt.public_url or settings.mqtt.url,
            username=code,
            password=mqtt_password,
            protocol=settings.mqtt.protocol,
        ),
        sync=SyncSection(),
        cloud=CloudSection(url=settings.cloud.public_url, public_key=public_key),
    )
    if out is not None:
        write_private(out, dump_settings(edge_settings))
    return DeviceCreated(code, code, mqtt_password, api_token, edge_settings)


def buy_package(
    settings: CloudSettings, engine: Engine, tenant: str, order: dict[str, Any], reference: str
) -> dict[str, Any]:
    """Order and pay a package on a tenant's behalf (the demo, a sales desk), priced and
    recorded exactly as through ``POST /api/v1/orders``; audited as ``provisioning``."""
    from cloud_api.billing import catalog
    from cloud_api.billing.payments import BANK_TRANSFER
    from cloud_api.billing.store import Payer, Received, TenantBilling, settle
    from cloud_api.platform.tenancy import Caller

    tenant_row = registry.tenant_by_code(engine, tenant)
    quote = catalog.quote(order, catalog.PackageSizes.from_settings(settings.billing))
    caller = Caller(
        tenant_id=tenant_row["id"],
        tenant=tenant,
        role="owner",
        token_id=0,
        user_id=None,
        actor="provisioning",
        kind="system",
        scopes=None,
        password_expired=False,
        grant_id=None,
    )
    billing = TenantBilling(engine, tenant_row["id"])
    created = billing.create_order(quote, None, caller, "127.0.0.1")
    # Paid off-line (a transfer the desk saw arrive): settled like a staff confirmation.
    received = Received(
        BANK_TRANSFER, reference, quote.total_yuan, {"confirmed_by": "provisioning"}
    )
    return settle(engine, created["id"], received, Payer("provisioning", None, "127.0.0.1"))


def write_private(path: Path, text: str) -> None:
    """Write a file that holds secrets: readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")
