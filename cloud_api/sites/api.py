"""仓库管理 over HTTP: warehouses, 库区 zones, 库位 locations and their labels, devices.

Routes parse, call ``TenantSites`` (which scopes every query to the caller's tenant and
audits every change) and respond; its refusals are ``cangyun.errors`` kinds with their own
codes (``locations_exist``, ``unknown_zone``, ``code_taken``, ...), answered by the app's one
error table. A path naming a warehouse or device of another tenant answers 404 before the
request body is judged (``known_warehouse``, ``known_device``), so a stranger learns nothing
from either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from flask import Blueprint, Response, current_app
from pydantic import BeforeValidator, Field, PlainValidator, StringConstraints, WithJsonSchema

from cangyun import identifiers
from cangyun.apispec import Body, Media, Page, Query, Reply, operation
from cangyun.fields import Name, Text
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor, json_response, page
from cangyun.settings import dump_settings
from cloud_api import provisioning
from cloud_api.platform.auth import caller, client_ip, engine, requires
from cloud_api.settings import CloudSettings
from cloud_api.sites import broker_files
from cloud_api.sites.labels import (
    LOCATION_CODE,
    MAX_GRID,
    MAX_LABELS,
    SEPARATORS,
    SYMBOLOGIES,
    Axis,
    Label,
    grid_codes,
    render_labels,
)
from cloud_api.sites.store import DEVICE_KINDS, ZONE_KINDS, TenantSites

bp = Blueprint("sites", __name__)

F = TypeVar("F", bound=Callable[..., Any])
ZoneKind = Literal[ZONE_KINDS]  # type: ignore[valid-type]
DeviceKind = Literal[DEVICE_KINDS]  # type: ignore[valid-type]
Separator = Literal[SEPARATORS]  # type: ignore[valid-type]
Symbology = Literal[SYMBOLOGIES]  # type: ignore[valid-type]


# --- field types ----------------------------------------------------------------------------

# Codes are taken as sent, not stripped (cangyun.fields.Code strips): "sh-02\n" is refused
# rather than read as "sh-02". Warehouse and device codes become MQTT topic levels and
# usernames; location codes are printed in barcodes and scanned back.
ExactCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=False, max_length=identifiers.CODE_MAX, pattern=identifiers.CODE_PATTERN
    ),
    Field(description="1-63 ASCII letters, digits, _ . -, starting with a letter or digit"),
]
ExactLocationCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=False,
        max_length=identifiers.LOCATION_CODE_MAX,
        pattern=identifiers.LOCATION_CODE.pattern,
    ),
    Field(description="1-64 ASCII letters, digits, _ . -, starting with a letter or digit"),
]
# A number (not text, not true); the store holds the rule it documents (store.business_area)
# and refuses a number outside it with invalid_area.
AreaM2 = Annotated[
    float,
    Field(
        strict=True,
        description="business area in m²; decides the traceability edition's period price",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": 1_000_000, "multipleOf": 0.01},
    ),
]
_SPAN_END = {"type": "string", "pattern": "^([A-Za-z]|[0-9]{1,4})$"}


def _span(value: Any) -> dict[str, str]:
    # Judged whole, so a refusal names the axis (details.field "racks"), not "racks.to".
    if (
        not isinstance(value, dict)
        or set(value) != {"from", "to"}
        or not all(isinstance(end, str) for end in value.values())
    ):
        raise ValueError('give {"from": ..., "to": ...} with two letters or two numbers')
    return value


Span = Annotated[
    dict[str, str],
    PlainValidator(_span),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["from", "to"],
            "properties": {"from": _SPAN_END, "to": _SPAN_END},
            "description": "both ends included: two letters (A-C) or two numbers (01-20)",
        }
    ),
]


def _blank_is_none(value: Any) -> Any:
    # An empty parameter counts as left out: a form sends zone= when no zone is picked.
    return value or None


Blank = BeforeValidator(_blank_is_none)


def _never_null(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # may be left out, but not sent as null


# --- bodies ---------------------------------------------------------------------------------


class NewWarehouse(Body):
    code: ExactCode
    name: Name(200)
    address: Text(300) | None = Field(None, description="null: the same as leaving it out")
    area_m2: AreaM2 | None = None


class WarehouseChange(Body):
    """Only the fields sent change; area_m2 null clears it."""

    name: Name(200) = Field(None, json_schema_extra=_never_null)
    address: Text(300) | None = Field(None, description="null: empty")
    area_m2: AreaM2 | None = None


class NewZone(Body):
    code: ExactCode
    name: Name(200)
    kind: ZoneKind | None = Field(None, description="storage when left out")


class NewLocation(Body):
    code: ExactLocationCode
    name: Text(200) | None = None
    zone: ExactCode | None = Field(None, description="a zone of this warehouse")


class LocationGrid(Body):
    """aisles × racks × levels (× positions), first axis slowest"""

    aisles: Span
    racks: Span
    levels: Span
    positions: Span | None = None
    zone: ExactCode | None = Field(None, description="a zone of this warehouse")
    prefix: Text(60) | None = Field(None, description="put before every code")
    separator: Separator | None = Field(None, description="between the parts; - when left out")


class NewDevice(Body):
    warehouse: ExactCode
    code: ExactCode = Field(description="global: it is the device's MQTT username")
    kind: DeviceKind
    name: Text(200) | None = Field(None, description="the code when left out")


class DeviceChange(Body):
    name: Name(200) = Field(None, json_schema_extra=_never_null)


# --- query strings --------------------------------------------------------------------------


class LocationFilter(Query):
    zone: Annotated[ExactCode | None, Blank] = Field(None, description="only this zone (code)")
    prefix: Annotated[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None, Blank
    ] = Field(None, description="only codes starting with this")


class LocationPage(LocationFilter):
    limit: int = Field(100, ge=1, le=1000, description="page size")
    cursor: Text(400) | None = Field(None, description="the `next` value of the previous page")


class LabelFilter(LocationFilter):
    symbology: Annotated[Symbology, BeforeValidator(lambda value: value or "code128")] = Field(
        "code128", description="code128 or datamatrix; the symbol holds the location code"
    )


# --- answers --------------------------------------------------------------------------------


class Warehouse(Reply):
    """A warehouse with its zone, location and (unrevoked) device counts"""

    code: str
    name: str
    address: str
    area_m2: float | None
    zones: int
    locations: int
    devices: int
    created_at: str


class Zone(Reply):
    """A zone (库区) of a warehouse"""

    code: str
    name: str
    kind: ZoneKind
    locations: int
    created_at: str


class Location(Reply):
    """A location (库位): a bin, a dock, anything a label is scanned at"""

    code: str
    name: str
    zone: str | None
    created_at: str


class LocationsCreated(Reply):
    """The block made"""

    created: int
    first: str
    last: str


class RegisteredDevice(Reply):
    """A device as registered (never its secrets); mqtt: it holds a broker account"""

    code: str
    kind: DeviceKind
    name: str
    warehouse: str
    mqtt: bool
    online: bool
    status_at: str | None
    last_seen_at: str | None
    current_epoch: str | None
    created_at: str
    revoked_at: str | None


class EdgeCredentials(Reply):
    mqtt_url: str
    mqtt_username: str
    mqtt_password: str
    edge_api_token: str


class ProvisionedEdge(RegisteredDevice):
    """An edge box just registered: its secrets and settings file, shown this once"""

    credentials: EdgeCredentials
    edge_settings: str = Field(description="the box's settings file (TOML)")


# --- helpers --------------------------------------------------------------------------------


def sites() -> TenantSites:
    return TenantSites(engine(), caller().tenant_id)


def settings() -> CloudSettings:
    return current_app.extensions["cangyun.settings"]


def known_warehouse(view: F) -> F:
    """404 for a warehouse in the path that is not the caller's, before the body is judged."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sites().require_warehouse(kwargs["code"])
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def known_device(view: F) -> F:
    """404 for a device in the path that is not the caller's, before the body is judged."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sites().device(kwargs["code"])
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


UNKNOWN_WAREHOUSE = {404: "warehouse not in this tenant"}
UNKNOWN_DEVICE = {404: "device not in this tenant"}


# --- warehouses -----------------------------------------------------------------------------


@bp.get("/warehouses")
@requires("warehouses:read")
@operation(
    "Warehouses of this tenant with zone, location and device counts",
    responses={200: Page[Warehouse]},
    tags=["warehouses"],
)
def list_warehouses() -> Response:
    items = sites().warehouses()
    return json_response(page(len(items), items, None))


@bp.post("/warehouses")
@requires("warehouses:write")
@operation(
    "Add a warehouse",
    body=NewWarehouse,
    responses={
        201: Warehouse,
        409: "already_exists: the code is taken",
        422: "invalid field (details.field); invalid_area: area_m2 out of range or finer than"
        " cents",
    },
    tags=["warehouses"],
)
def create_warehouse(body: NewWarehouse) -> Response:
    warehouse = sites().create_warehouse(
        code=body.code,
        name=body.name,
        address=body.address or "",
        area_m2=body.area_m2,
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(warehouse, 201)


@bp.get("/warehouses/<code>")
@requires("warehouses:read")
@operation("One warehouse", responses={200: Warehouse, **UNKNOWN_WAREHOUSE}, tags=["warehouses"])
def get_warehouse(code: str) -> Response:
    return json_response(sites().warehouse(code))


@bp.patch("/warehouses/<code>")
@requires("warehouses:write")
@known_warehouse
@operation(
    "Change a warehouse's name, address or business area (null clears it)",
    body=WarehouseChange,
    responses={
        200: Warehouse,
        **UNKNOWN_WAREHOUSE,
        422: "invalid field (details.field); invalid_area: area_m2 out of range",
    },
    tags=["warehouses"],
)
def update_warehouse(code: str, body: WarehouseChange) -> Response:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if "address" in changes:
        changes["address"] = changes["address"] or ""
    return json_response(sites().update_warehouse(code, changes, caller(), client_ip()))


# --- 库区 zones -------------------------------------------------------------------------------


@bp.get("/warehouses/<code>/zones")
@requires("warehouses:read")
@operation(
    "Zones (库区) of a warehouse",
    responses={200: Page[Zone], **UNKNOWN_WAREHOUSE},
    tags=["warehouses"],
)
def list_zones(code: str) -> Response:
    items = sites().zones(code)
    return json_response(page(len(items), items, None))


@bp.post("/warehouses/<code>/zones")
@requires("warehouses:write")
@known_warehouse
@operation(
    "Add a zone",
    body=NewZone,
    responses={201: Zone, **UNKNOWN_WAREHOUSE, 409: "already_exists: the code is taken"},
    tags=["warehouses"],
)
def create_zone(code: str, body: NewZone) -> Response:
    zone = sites().create_zone(
        code,
        code=body.code,
        name=body.name,
        kind=body.kind or "storage",
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(zone, 201)


# --- 库位 locations ---------------------------------------------------------------------------


@bp.get("/warehouses/<code>/locations")
@requires("warehouses:read")
@known_warehouse
@operation(
    "Locations (库位) of a warehouse in code order",
    query=LocationPage,
    responses={200: Page[Location], **UNKNOWN_WAREHOUSE},
    tags=["warehouses"],
)
def list_locations(code: str, query: LocationPage) -> Response:
    after = decode_cursor(query.cursor) if query.cursor else None
    if after is not None and not (isinstance(after, str) and LOCATION_CODE.fullmatch(after)):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, last = sites().locations(
        code, zone=query.zone, prefix=query.prefix, after=after, limit=query.limit
    )
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/warehouses/<code>/locations")
@requires("warehouses:write")
@known_warehouse
@operation(
    "Add one location",
    body=NewLocation,
    responses={
        201: Location,
        **UNKNOWN_WAREHOUSE,
        409: "locations_exist: the code is taken (details.existing)",
        422: "invalid field (details.field); unknown_zone: no such zone here",
    },
    tags=["warehouses"],
)
def create_location(code: str, body: NewLocation) -> Response:
    location = sites().create_location(
        code,
        code=body.code,
        name=body.name or "",
        zone=body.zone,
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(location, 201)


@bp.post("/warehouses/<code>/locations/bulk")
@requires("warehouses:write")
@known_warehouse
@operation(
    f"Generate a grid of locations, e.g. aisles A-C × racks 01-20 × levels 1-4 →"
    f" A-01-1 … C-20-4; all or nothing, at most {MAX_GRID}",
    body=LocationGrid,
    responses={
        201: LocationsCreated,
        **UNKNOWN_WAREHOUSE,
        409: "locations_exist: some codes exist (details.existing, details.count);"
        " nothing was created",
        422: "invalid field (details.field); invalid_grid: a range or the grid's size;"
        " unknown_zone: no such zone here",
    },
    tags=["warehouses"],
)
def generate_locations(code: str, body: LocationGrid) -> Response:
    spans = {"aisles": body.aisles, "racks": body.racks, "levels": body.levels}
    if body.positions is not None:
        spans["positions"] = body.positions
    axes = [Axis(name, span["from"], span["to"]) for name, span in spans.items()]
    separator = "-" if body.separator is None else body.separator  # "" joins them bare
    codes = grid_codes(axes, prefix=body.prefix or "", separator=separator)
    created = sites().create_locations(code, codes, zone=body.zone, caller=caller(), ip=client_ip())
    return json_response({"created": created, "first": codes[0], "last": codes[-1]}, 201)


@bp.delete("/warehouses/<code>/locations/<location>")
@requires("warehouses:write")
@operation(
    "Delete a location (the cloud keeps stock per warehouse, not per bin)",
    responses={204: None, 404: "warehouse or location not in this tenant"},
    tags=["warehouses"],
)
def delete_location(code: str, location: str) -> Response:
    sites().delete_location(code, location, caller(), client_ip())
    return Response(status=204)


@bp.get("/warehouses/<code>/locations/labels.pdf")
@requires("warehouses:read")
@known_warehouse
@operation(
    f"Printable labels of the locations (A4 PDF, at most {MAX_LABELS} labels)",
    query=LabelFilter,
    responses={
        200: Media("application/pdf", "the label sheet"),
        404: "warehouse not in this tenant; no_locations: no location matches",
        422: f"too_many_labels: more than {MAX_LABELS} locations match (details.count);"
        " unprintable: a code too long for the symbology",
    },
    tags=["warehouses"],
)
def location_labels(code: str, query: LabelFilter) -> Response:
    warehouse, rows = sites().printable_locations(code, zone=query.zone, prefix=query.prefix)
    labels = [Label(r["code"], warehouse["name"], r["zone_name"]) for r in rows]
    sheet = render_labels(labels, query.symbology, title=f"库位标签 {warehouse['name']}")
    return Response(
        sheet.pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{code}-locations.pdf"'},
    )


# --- devices --------------------------------------------------------------------------------


@bp.post("/devices")
@requires("devices:write")
@operation(
    "Register a device; an edge box gets its broker credentials, edge API token and settings"
    " file in this answer only",
    body=NewDevice,
    responses={
        201: ProvisionedEdge | RegisteredDevice,
        404: "warehouse not in this tenant",
        409: "code_taken: device codes are global (MQTT usernames)",
        503: "broker_files_unwritable: the broker's files could not be written",
    },
    tags=["devices"],
)
def create_device(body: NewDevice) -> Response:
    store = sites()
    store.require_warehouse(body.warehouse)
    # The broker's own accounts (ingest) share the username space with devices.
    store.require_free_device_code(body.code, reserved={settings().mqtt.username})
    name = body.name or body.code
    if body.kind == "edge":
        device = register_edge(store, body.warehouse, body.code, name)
    else:
        device = store.register_device(
            warehouse=body.warehouse,
            code=body.code,
            kind=body.kind,
            name=name,
            caller=caller(),
            ip=client_ip(),
        )
    return json_response(device, 201)


def register_edge(store: TenantSites, warehouse: str, code: str, name: str) -> dict[str, Any]:
    """An edge box gets a broker account: its credentials are shown here and never again."""
    created = provisioning.create_device(
        settings(), engine(), tenant=caller().tenant, warehouse=warehouse, code=code, name=name
    )
    # provisioning commits on its own, so this entry follows in a second transaction.
    store.record(
        caller(),
        "device.registered",
        f"device:{code}",
        {"warehouse": warehouse, "kind": "edge", "name": name},
        client_ip(),
    )
    return store.device(code) | {
        "credentials": {
            "mqtt_url": created.settings.mqtt.url,
            "mqtt_username": created.mqtt_username,
            "mqtt_password": created.mqtt_password,
            "edge_api_token": created.api_token,
        },
        "edge_settings": dump_settings(created.settings),
    }


@bp.get("/devices/<code>")
@requires("devices:read")
@operation(
    "One device (never its secrets)",
    responses={200: RegisteredDevice, **UNKNOWN_DEVICE},
    tags=["devices"],
)
def get_device(code: str) -> Response:
    return json_response(sites().device(code))


@bp.patch("/devices/<code>")
@requires("devices:write")
@known_device
@operation(
    "Rename a device",
    body=DeviceChange,
    responses={200: RegisteredDevice, **UNKNOWN_DEVICE},
    tags=["devices"],
)
def update_device(code: str, body: DeviceChange) -> Response:
    store = sites()
    name = body.name if "name" in body.model_fields_set else store.device(code)["name"]
    return json_response(store.update_device(code, name, caller(), client_ip()))


@bp.delete("/devices/<code>")
@requires("devices:write")
@operation(
    "Revoke a device: the broker drops its account at once",
    responses={
        204: None,
        **UNKNOWN_DEVICE,
        503: "broker_files_unwritable: revoked, but the broker's files could not be"
        " rewritten; repeat the DELETE",
    },
    tags=["devices"],
)
def revoke_device(code: str) -> Response:
    sites().revoke_device(code, caller(), client_ip())
    # Rewritten on every call, so repeating a DELETE heals a rewrite that failed.
    broker_files.write_broker_files(settings(), engine())
    return Response(status=204)
