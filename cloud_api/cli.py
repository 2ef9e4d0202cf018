"""``cangyun cloud``: serve the API, run ingest workers, provision tenants and devices."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

import click

from cangyun import logs
from cangyun.settings import SettingsError, dump_settings
from cangyun.stopsignal import on_stop_signal

CONFIG_HELP = "cloud settings file (env CANGYUN_CLOUD_CONFIG); defaults apply when absent"


def _settings(config_path: str | None) -> Any:
    from cloud_api import settings as cloud_settings

    try:
        return cloud_settings.load(config_path if config_path else None)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _engine(config_path: str | None) -> Any:
    from cloud_api.platform.db import make_engine

    return make_engine(_settings(config_path).database_url)


def _print(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


config_option = click.option(
    "--config",
    "config_path",
    envvar="CANGYUN_CLOUD_CONFIG",
    type=click.Path(dir_okay=False),
    help=CONFIG_HELP,
)


@click.group()
def cloud() -> None:
    """The cloud: API, ingest, provisioning."""


@cloud.command()
@click.option(
    "--config",
    "config_path",
    envvar="CANGYUN_CLOUD_CONFIG",
    required=True,
    type=click.Path(dir_okay=False),
    help="settings file; created when it does not exist",
)
@click.option("--database-url", default=None, help="SQLAlchemy URL for a new settings file")
@click.option("--broker-url", default=None, help="broker URL for a new settings file")
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="data directory for a new settings file",
)
def init(
    config_path: str, database_url: str | None, broker_url: str | None, data_dir: str | None
) -> None:
    """Create (or upgrade) the cloud database, signing key, ingest account and broker files.

    When the settings file does not exist it is written first, with a generated broker
    password for the ingest workers.

    \b
    Example:
      cangyun cloud init --config cloud.toml --database-url postgresql+psycopg://cangyun@db/cangyun
    """
    from dataclasses import replace

    from cloud_api import provisioning
    from cloud_api.accounts import credentials
    from cloud_api.settings import CloudSettings

    path = Path(config_path)
    if not path.exists():
        base = CloudSettings()
        cloud_section = replace(
            base.cloud,
            database_url=database_url or "",
            data_dir=Path(data_dir) if data_dir else base.cloud.data_dir,
        )
        mqtt_section = replace(
            base.mqtt, url=broker_url or base.mqtt.url, password=credentials.new_password()
        )
        provisioning.write_private(
            path, dump_settings(CloudSettings(cloud_section, mqtt_section, base.broker))
        )
        click.echo(f"wrote {path}", err=True)
    settings = _settings(config_path)
    try:
        provisioning.init(settings)
    except provisioning.ProvisioningError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(
        {
            "database": settings.database_url,
            "passwd_file": str(settings.passwd_file),
            "acl_file": str(settings.acl_file),
        }
    )


@cloud.command()
@config_option
@click.option("--port", type=int, default=None, help="override cloud.port")
def serve(config_path: str | None, port: int | None) -> None:
    """Serve the cloud HTTP API until SIGTERM/Ctrl-C.

    \b
    Example:
      cangyun cloud serve --config cloud.toml --port 8000
    """
    from cangyun.serve import make_server, serve_forever
    from cloud_api.app import create_app
    from cloud_api.billing.scheduler import billing_worker
    from cloud_api.integrations.webhooks import delivery_worker
    from cloud_api.messaging.notify import notification_worker

    logs.configure(name="cloud")
    settings = _settings(config_path)
    try:
        app = create_app(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    server = make_server(
        app,
        settings.cloud.host,
        port or settings.cloud.port,
        threads=settings.cloud.threads,
        name="cangyun-cloud",
    )
    engine = app.extensions["cangyun.engine"]
    workers = [
        delivery_worker(engine, allow_private=settings.cloud.webhooks_allow_private),
        notification_worker(engine, settings),
        billing_worker(engine, settings),
    ]
    for worker in workers:
        worker.start()
    try:
        serve_forever([server])
    finally:
        for worker in workers:
            worker.stop()


@cloud.command()
@config_option
@click.option("--client-id", default=None, help="MQTT client id (default: host and pid)")
def ingest(config_path: str | None, client_id: str | None) -> None:
    """File uplink MQTT messages into the ledger; run several for more throughput.

    Workers join the shared subscription group mqtt.share_group and split the load.

    \b
    Example:
      cangyun cloud ingest --config cloud.toml
    """
    from cloud_api.billing import licensing, signing
    from cloud_api.ledger.ingest import IngestService
    from cloud_api.ledger.worker import IngestWorker
    from cloud_api.platform.db import make_engine

    logs.configure(name="ingest")
    settings = _settings(config_path)
    service = IngestService(
        make_engine(settings.database_url),
        licence_key=signing.load_or_create(settings.signing_key_file),
        licence_terms=licensing.Terms.from_settings(settings.billing),
    )
    worker = IngestWorker(settings, service, client_id=client_id)
    # What start-up allocated (modules, SQLAlchemy's tables) lives as long as the process.
    # Freezing it keeps the cycle collector from walking it again every few batches: ~10%
    # of ingest CPU in bench/sync_throughput.py.
    gc.freeze()

    on_stop_signal(lambda _name: worker.stop())
    worker.run()


@cloud.group()
def tenant() -> None:
    """Tenants (one company using cangyun)."""


@tenant.command("create")
@config_option
@click.argument("code")
@click.option("--name", required=True, help="display name, e.g. 华东冷链")
@click.option(
    "--timezone", default="Asia/Shanghai", show_default=True, help="where business days are cut"
)
@click.option("--admin-email", default=None, help="create an owner user with this email")
@click.option("--admin-password", default=None, help="password of that owner user")
def tenant_create(
    config_path: str | None,
    code: str,
    name: str,
    timezone: str,
    admin_email: str | None,
    admin_password: str | None,
) -> None:
    """Create a tenant; prints an admin API token (shown once).

    \b
    Example:
      cangyun cloud tenant create acme --name "Acme 冷链" \\
          --admin-email ops@acme.cn --admin-password '...'
    """
    from cangyun.errors import AlreadyExists
    from cloud_api import provisioning

    try:
        created = provisioning.create_tenant(
            _engine(config_path),
            code,
            name,
            timezone=timezone,
            admin_email=admin_email,
            admin_password=admin_password,
        )
    except (provisioning.ProvisioningError, AlreadyExists) as exc:
        raise click.ClickException(str(exc)) from exc
    _print({"tenant": created.tenant, "token": created.token, "admin_email": created.admin_email})


@cloud.group()
def staff() -> None:
    """Platform staff (平台运营): the platform's own operators, e.g. who confirm payments."""


def create_staff(
    engine: Any, email: str, password: str | None = None
) -> tuple[int, str | None, bool]:
    """A platform staff account, signing in with the normal login; answers its user id, the
    password when one was generated, and whether it is new. An email a tenant already uses
    is refused; a staff member added again keeps their password."""
    from cloud_api.accounts import credentials, security
    from cloud_api.accounts import store as accounts

    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="--email")
    existing = accounts.user_by_email(engine, email)
    if existing is not None:
        if existing["role"] != security.PLATFORM_STAFF:
            raise click.ClickException(f"{email} is a user of tenant {existing['tenant']}")
        return existing["id"], None, False
    policy = security.SecurityPolicy()
    generated = password is None
    while password is None:  # random text may lack a digit or a lower-case letter
        candidate = credentials.new_password(12)
        try:
            policy.check_password(candidate, email=email)
        except security.PolicyError:
            continue
        password = candidate
    try:
        policy.check_password(password, email=email)
    except security.PolicyError as exc:
        raise click.BadParameter(exc.message, param_hint="--password") from exc
    user_id = accounts.ensure_platform_staff(engine, email, password)
    return user_id, password if generated else None, True


@staff.command("add")
@config_option
@click.option("--email", required=True, help="the staff member's login, e.g. ops@cangyun.cn")
@click.option(
    "--password", default=None, help="their password (default: one is generated and printed)"
)
def staff_add(config_path: str | None, email: str, password: str | None) -> None:
    """Add a platform staff account; they sign in with the normal login (console or
    POST /api/v1/auth/login) and confirm bank transfers, list orders awaiting payment.

    \b
    Example:
      cangyun cloud staff add --email ops@cangyun.cn
      cangyun cloud staff add --email finance@cangyun.cn --password '...'
    """
    user_id, generated, created = create_staff(_engine(config_path), email, password)
    out: dict[str, Any] = {"user_id": user_id, "email": email.strip().lower()}
    if generated is not None:
        out["password"] = generated  # shown once
    if not created:
        out["note"] = "already platform staff; password unchanged"
    _print(out)


@cloud.group()
def warehouse() -> None:
    """Warehouses of a tenant."""


@warehouse.command("create")
@config_option
@click.option("--tenant", "tenant_code", required=True, help="tenant code")
@click.argument("code")
@click.option("--name", required=True, help="display name, e.g. 嘉定一号库")
def warehouse_create(config_path: str | None, tenant_code: str, code: str, name: str) -> None:
    """Create a warehouse in a tenant.

    \b
    Example:
      cangyun cloud warehouse create --tenant acme sh-01 --name 嘉定一号库
    """
    from cangyun.errors import AlreadyExists, NotFound
    from cloud_api import provisioning

    try:
        provisioning.create_warehouse(_engine(config_path), tenant_code, code, name)
    except (provisioning.ProvisioningError, AlreadyExists, NotFound) as exc:
        raise click.ClickException(str(exc)) from exc
    _print({"tenant": tenant_code, "warehouse": code})


@cloud.group()
def device() -> None:
    """Edge boxes and other devices."""


@device.command("create")
@config_option
@click.option("--tenant", "tenant_code", required=True, help="tenant code")
@click.option("--warehouse", "warehouse_code", required=True, help="warehouse code")
@click.argument("code")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="where to write the edge box's settings file (holds its secrets)",
)
@click.option("--edge-port", default=8080, show_default=True, help="edge HTTP port")
@click.option(
    "--edge-data-dir", default="edge-data", show_default=True, help="edge data directory on the box"
)
def device_create(
    config_path: str | None,
    tenant_code: str,
    warehouse_code: str,
    code: str,
    out: str,
    edge_port: int,
    edge_data_dir: str,
) -> None:
    """Register an edge box and write its settings file; broker files are updated.

    \b
    Example:
      cangyun cloud device create --tenant acme --warehouse sh-01 sh-01-edge1 --out edge.toml
    """
    from cangyun.errors import AlreadyExists, NotFound
    from cloud_api import provisioning

    settings = _settings(config_path)
    try:
        created = provisioning.create_device(
            settings,
            _engine(config_path),
            tenant=tenant_code,
            warehouse=warehouse_code,
            code=code,
            edge_port=edge_port,
            edge_data_dir=Path(edge_data_dir),
            out=Path(out),
        )
    except (provisioning.ProvisioningError, AlreadyExists, NotFound) as exc:
        raise click.ClickException(str(exc)) from exc
    _print({"device": created.device, "settings_file": out, "api_token": created.api_token})


@cloud.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@config_option
@click.option("--tenant", "tenant_code", required=True, help="tenant code")
@click.option(
    "--role",
    default="admin",
    show_default=True,
    type=click.Choice(["owner", "admin", "operator", "viewer", "developer"]),
)
@click.option("--name", default="", help="what the token is for")
@click.option(
    "--days",
    type=click.IntRange(1, 730),
    default=90,
    show_default=True,
    help="days until the token expires (as API keys made in the console: 1-730)",
)
def token_create(
    config_path: str | None, tenant_code: str, role: str, name: str, days: int
) -> None:
    """Create an expiring API token for a tenant (shown once).

    A token is an API key (二次开发): the tenant's edition must include
    secondary_development, as for keys made through the API.

    \b
    Example:
      cangyun cloud token create --tenant acme --role viewer --name "BI export" --days 30
    """
    from datetime import timedelta

    from cangyun.timeutil import utcnow
    from cloud_api.accounts import store as accounts
    from cloud_api.billing.store import TenantBilling
    from cloud_api.sites import registry

    engine = _engine(config_path)
    try:
        tenant_row = registry.tenant_by_code(engine, tenant_code)
    except registry.NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    # The gate of POST /api/v1/api-keys (@feature("secondary_development")), so the CLI is
    # no way around the edition.
    held = TenantBilling(engine, tenant_row["id"]).entitlement()
    if "secondary_development" not in held.features:
        raise click.ClickException(
            "feature_not_in_edition: API tokens are secondary_development (二次开发), which is"
            f" not part of {tenant_code}'s {held.edition or 'current (none bought)'} edition"
        )
    expires_at = utcnow() + timedelta(days=days)
    token = accounts.create_api_key(
        engine, tenant_row["id"], role, name=name or "cli", actor="cli", expires_at=expires_at
    )
    _print(
        {
            "tenant": tenant_code,
            "role": role,
            "token": token,
            "expires_at": expires_at.isoformat(timespec="seconds"),
        }
    )


@cloud.command("broker-files")
@config_option
def broker_files_command(config_path: str | None) -> None:
    """Rewrite mosquitto's password and ACL files from the registry and reload the broker.

    \b
    Example:
      cangyun cloud broker-files --config cloud.toml
    """
    from cloud_api.sites import broker_files

    settings = _settings(config_path)
    broker_files.write_broker_files(settings, _engine(config_path))
    _print({"passwd_file": str(settings.passwd_file), "acl_file": str(settings.acl_file)})


@cloud.group()
def customers() -> None:
    """Cargo owners (货主) of a tenant: CSV import and export (columns: docs/crm.md)."""


def _tenant_customers(config_path: str | None, tenant_code: str) -> Any:
    from cloud_api.crm.store import TenantCustomers
    from cloud_api.sites import registry

    engine = _engine(config_path)
    try:
        tenant_row = registry.tenant_by_code(engine, tenant_code)
    except registry.NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    return TenantCustomers(engine, tenant_row["id"])


@customers.command("import")
@config_option
@click.option("--tenant", "tenant_code", required=True, help="tenant code")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def customers_import(config_path: str | None, tenant_code: str, file: str) -> None:
    """Upsert cargo owners by code from a CSV file: every row is written, or none.

    Headers may be English or Chinese (货主编码, 货主名称, ...). Invalid rows are listed
    with their row numbers and nothing is written; otherwise prints what was created and
    updated. One audit entry records the import.

    \b
    Example:
      cangyun cloud customers import --config cloud.toml --tenant acme 货主.csv
    """
    import getpass

    from cangyun.errors import AlreadyExists
    from cloud_api.crm import records as crm_csv
    from cloud_api.crm.store import Actor, ImportRejected

    store = _tenant_customers(config_path, tenant_code)
    try:
        parsed = crm_csv.parse_csv(Path(file).read_bytes())
    except crm_csv.CsvError as exc:
        raise click.ClickException(f"{file}: {exc.message}") from exc
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        who = "unknown"
    try:
        with click.progressbar(
            length=len(parsed.customers), label="writing", file=sys.stderr
        ) as bar:
            outcome = store.import_csv(parsed, Actor(f"cli:{who}"), progress=bar.update)
    except ImportRejected as exc:
        for error in exc.errors[:50]:
            click.echo(f"row {error.row}: {error.field}: {error.reason}", err=True)
        if len(exc.errors) > 50:
            click.echo(f"... and {len(exc.errors) - 50} more", err=True)
        raise click.ClickException(
            f"{len(exc.errors)} invalid rows in {file}; nothing was imported"
        ) from exc
    except AlreadyExists as exc:
        raise click.ClickException(str(exc)) from exc
    _print(
        {
            "tenant": tenant_code,
            "file": file,
            "rows": len(parsed.customers),
            "created": outcome.created,
            "updated": outcome.updated,
        }
    )


@customers.command("export")
@config_option
@click.option("--tenant", "tenant_code", required=True, help="tenant code")
@click.option(
    "--lang", default="zh", show_default=True, type=click.Choice(["zh", "en"]), help="headers"
)
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
def customers_export(
    config_path: str | None, tenant_code: str, lang: str, file: str | None
) -> None:
    """Write every live cargo owner as CSV (UTF-8 with BOM) to FILE, or to stdout.

    \b
    Example:
      cangyun cloud customers export --config cloud.toml --tenant acme 货主.csv
      cangyun cloud customers export --tenant acme --lang en > owners.csv
    """
    from cloud_api.crm import records as crm_csv

    store = _tenant_customers(config_path, tenant_code)
    target = file or "-"
    # A file appears only when complete; stdout cannot be atomic.
    with click.open_file(target, "wb", atomic=target != "-") as out:
        for chunk in crm_csv.format_csv(store.export(), lang=lang):
            out.write(chunk.encode("utf-8"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cloud())
