"""仓库管理 over HTTP: warehouses, 库区 zones, 库位 locations and their labels, devices.

Routes parse, call ``TenantSites`` (which scopes every query to the caller's tenant and
audits every change) and respond. A path naming a warehouse or device of another tenant
answers 404 before the request body is judged, so a stranger learns nothing from either.
Store errors map to HTTP in one place: the blueprint's error handlers at the end.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, current_app, request

from cangyun.errors import AlreadyExists, NotFound
from cangyun.httpapi import (
    ApiError,
    decode_cursor,
    encode_cursor,
    error_response,
    json_body,
    json_response,
    page,
    query_int,
)
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
    GridError,
    Label,
    LabelError,
    grid_codes,
    render_labels,
)
from cloud_api.sites.store import (
    CODE,
    DEVICE_KINDS,
    EXISTING_SHOWN,
    ZONE_KINDS,
    LocationsExist,
    TenantSites,
    UnknownZone,
)

bp = Blueprint("sites", __name__)

MAX_BODY = 64 * 1024
MAX_AREA_M2 = Decimal(1_000_000)
CENT = Decimal("0.01")
GRID_AXES = ("aisles", "racks", "levels", "positions")  # slowest first
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def sites() -> TenantSites:
    return TenantSites(engine(), caller().tenant_id)


def in_warehouse(code: str) -> TenantSites:
    """The caller's sites, once the warehouse in the path is known to be theirs."""
    store = sites()
    store.require_warehouse(code)
    return store


def settings() -> CloudSettings:
    return current_app.extensions["cangyun.settings"]


# --- request parsing --------------------------------------------------------------------


def body(allowed: set[str], *required: str) -> dict[str, Any]:
    data = json_body(MAX_BODY)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field {unknown[0]!r}", {"field": unknown[0]})
    for name in required:
        if data.get(name) is None:
            raise ApiError(422, "missing_field", f"{name} is required", {"field": name})
    return data


def text(data: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
        raise ApiError(
            422,
            "invalid_field",
            f"{name} must be text of at most {limit} characters, without control characters",
            {"field": name},
        )
    value = value.strip()
    if required and not value:
        raise ApiError(422, "missing_field", f"{name} must not be blank", {"field": name})
    return value


def code_field(data: dict[str, Any], name: str, pattern: re.Pattern[str] = CODE) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        longest = 64 if pattern is LOCATION_CODE else 63
        raise ApiError(
            422,
            "invalid_code",
            f"{name} must be 1-{longest} ASCII letters, digits, '_', '.' or '-',"
            " starting with a letter or digit",
            {"field": name},
        )
    return value


def choice(data: dict[str, Any], name: str, options: tuple[str, ...], default: str) -> str:
    value = data.get(name)
    if value is None:
        return default
    if value not in options:
        raise ApiError(
            422,
            "invalid_field",
            f"{name} must be one of {', '.join(repr(o) for o in options)}",
            {"field": name},
        )
    return value


def area(value: Any) -> Decimal | None:
    """Business area in m²: it decides the traceability edition's period price."""
    if value is None:
        return None
    problem = "area_m2 must be a number of m² above 0 and at most 1,000,000, in 0.01 steps"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(422, "invalid_area", problem, {"field": "area_m2"})
    try:
        exact = Decimal(str(value))
        rounded = exact.quantize(CENT)
    except InvalidOperation as exc:
        raise ApiError(422, "invalid_area", problem, {"field": "area_m2"}) from exc
    # Binary floats (0.1 + 0.2) may carry noise beyond the cent; anything more is a typo.
    if not math.isfinite(value) or abs(exact - rounded) > Decimal("1e-9"):
        raise ApiError(422, "invalid_area", problem, {"field": "area_m2"})
    if not 0 < rounded <= MAX_AREA_M2:
        raise ApiError(422, "invalid_area", problem, {"field": "area_m2"})
    return rounded


def location_filters() -> tuple[str | None, str | None]:
    zone = request.args.get("zone") or None
    prefix = request.args.get("prefix") or None
    if zone is not None and not CODE.fullmatch(zone):
        raise ApiError(400, "invalid_parameter", "zone must be a zone code")
    if prefix is not None and not _PREFIX.fullmatch(prefix):
        raise ApiError(400, "invalid_parameter", "prefix must be the start of a location code")
    return zone, prefix


# --- warehouses ---------------------------------------------------------------------------

WAREHOUSE_FIELDS = {"code", "name", "address", "area_m2"}


@bp.get("/warehouses")
@requires("warehouses:read")
def list_warehouses() -> Response:
    items = sites().warehouses()
    return json_response(page(len(items), items, None))


@bp.post("/warehouses")
@requires("warehouses:write")
def create_warehouse() -> Response:
    data = body(WAREHOUSE_FIELDS, "code", "name")
    warehouse = sites().create_warehouse(
        code=code_field(data, "code") or "",
        name=text(data, "name", 200, required=True),
        address=text(data, "address", 300),
        area_m2=area(data.get("area_m2")),
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(warehouse, 201)


@bp.get("/warehouses/<code>")
@requires("warehouses:read")
def get_warehouse(code: str) -> Response:
    return json_response(sites().warehouse(code))


@bp.patch("/warehouses/<code>")
@requires("warehouses:write")
def update_warehouse(code: str) -> Response:
    store = in_warehouse(code)
    data = body(WAREHOUSE_FIELDS - {"code"})
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = text(data, "name", 200, required=True)
    if "address" in data:
        changes["address"] = text(data, "address", 300)
    if "area_m2" in data:
        changes["area_m2"] = area(data["area_m2"])
    return json_response(store.update_warehouse(code, changes, caller(), client_ip()))


# --- 库区 zones -----------------------------------------------------------------------------


@bp.get("/warehouses/<code>/zones")
@requires("warehouses:read")
def list_zones(code: str) -> Response:
    items = sites().zones(code)
    return json_response(page(len(items), items, None))


@bp.post("/warehouses/<code>/zones")
@requires("warehouses:write")
def create_zone(code: str) -> Response:
    store = in_warehouse(code)
    data = body({"code", "name", "kind"}, "code", "name")
    zone = store.create_zone(
        code,
        code=code_field(data, "code") or "",
        name=text(data, "name", 200, required=True),
        kind=choice(data, "kind", ZONE_KINDS, "storage"),
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(zone, 201)


# --- 库位 locations -------------------------------------------------------------------------


@bp.get("/warehouses/<code>/locations")
@requires("warehouses:read")
def list_locations(code: str) -> Response:
    store = in_warehouse(code)
    zone, prefix = location_filters()
    limit = query_int("limit", 100, 1, 1000)
    cursor = request.args.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    if after is not None and not (isinstance(after, str) and LOCATION_CODE.fullmatch(after)):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, last = store.locations(code, zone=zone, prefix=prefix, after=after, limit=limit)
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/warehouses/<code>/locations")
@requires("warehouses:write")
def create_location(code: str) -> Response:
    store = in_warehouse(code)
    data = body({"code", "name", "zone"}, "code")
    location = store.create_location(
        code,
        code=code_field(data, "code", LOCATION_CODE) or "",
        name=text(data, "name", 200),
        zone=code_field(data, "zone"),
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(location, 201)


@bp.post("/warehouses/<code>/locations/bulk")
@requires("warehouses:write")
def generate_locations(code: str) -> Response:
    store = in_warehouse(code)
    data = body({*GRID_AXES, "zone", "prefix", "separator"}, *GRID_AXES[:3])
    axes = [axis(data, name) for name in GRID_AXES if data.get(name) is not None]
    try:
        codes = grid_codes(
            axes,
            prefix=text(data, "prefix", 60),
            separator=choice(data, "separator", SEPARATORS, "-"),
        )
    except GridError as exc:
        raise ApiError(422, "invalid_grid", exc.message, {"field": exc.field}) from exc
    zone = code_field(data, "zone")
    created = store.create_locations(code, codes, zone=zone, caller=caller(), ip=client_ip())
    return json_response({"created": created, "first": codes[0], "last": codes[-1]}, 201)


def axis(data: dict[str, Any], name: str) -> Axis:
    value = data[name]
    if (
        not isinstance(value, dict)
        or set(value) != {"from", "to"}
        or not all(isinstance(v, str) for v in value.values())
    ):
        raise ApiError(
            422,
            "invalid_grid",
            f'{name} must be {{"from": ..., "to": ...}} with two letters or two numbers',
            {"field": name},
        )
    return Axis(name, value["from"], value["to"])


@bp.delete("/warehouses/<code>/locations/<location>")
@requires("warehouses:write")
def delete_location(code: str, location: str) -> Response:
    sites().delete_location(code, location, caller(), client_ip())
    return Response(status=204)


@bp.get("/warehouses/<code>/locations/labels.pdf")
@requires("warehouses:read")
def location_labels(code: str) -> Response:
    store = in_warehouse(code)
    symbology = request.args.get("symbology") or "code128"
    if symbology not in SYMBOLOGIES:
        raise ApiError(400, "invalid_parameter", f"symbology must be one of {SYMBOLOGIES}")
    zone, prefix = location_filters()
    warehouse, rows, total = store.label_rows(code, zone=zone, prefix=prefix, limit=MAX_LABELS)
    if total > MAX_LABELS:
        raise ApiError(
            422,
            "too_many_labels",
            f"{total} locations match; one PDF holds at most {MAX_LABELS} labels:"
            " filter by zone or prefix",
            {"field": "prefix", "count": total, "limit": MAX_LABELS},
        )
    if not rows:
        raise ApiError(404, "no_locations", "no locations match; nothing to print")
    labels = [Label(r["code"], warehouse["name"], r["zone_name"]) for r in rows]
    try:
        sheet = render_labels(labels, symbology, title=f"库位标签 {warehouse['name']}")
    except LabelError as exc:
        raise ApiError(422, "unprintable", str(exc), {"field": "symbology"}) from exc
    return Response(
        sheet.pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{code}-locations.pdf"'},
    )


# --- devices ------------------------------------------------------------------------------


@bp.post("/devices")
@requires("devices:write")
def create_device() -> Response:
    data = body({"warehouse", "code", "kind", "name"}, "warehouse", "code", "kind")
    warehouse = code_field(data, "warehouse") or ""
    store = in_warehouse(warehouse)
    code = code_field(data, "code") or ""
    kind = choice(data, "kind", DEVICE_KINDS, "edge")
    name = text(data, "name", 200) or code
    # The broker's own accounts (ingest) share the username space with devices.
    if store.is_broker_account(code) or code == settings().mqtt.username:
        raise _code_taken(code)
    try:
        if kind == "edge":
            device = register_edge(store, warehouse, code, name)
        else:
            device = store.register_device(
                warehouse=warehouse,
                code=code,
                kind=kind,
                name=name,
                caller=caller(),
                ip=client_ip(),
            )
    except AlreadyExists as exc:
        raise _code_taken(code) from exc
    return json_response(device, 201)


def register_edge(store: TenantSites, warehouse: str, code: str, name: str) -> dict[str, Any]:
    """An edge box gets a broker account: its credentials are shown here and never again."""
    try:
        created = provisioning.create_device(
            settings(), engine(), tenant=caller().tenant, warehouse=warehouse, code=code, name=name
        )
    except OSError as exc:
        raise ApiError(
            503,
            "broker_files_unwritable",
            f"the broker's password and ACL files could not be written: {exc}",
        ) from exc
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
def get_device(code: str) -> Response:
    return json_response(sites().device(code))


@bp.patch("/devices/<code>")
@requires("devices:write")
def update_device(code: str) -> Response:
    store = sites()
    current = store.device(code)
    data = body({"name"})
    name = text(data, "name", 200, required=True) if "name" in data else current["name"]
    return json_response(store.update_device(code, name, caller(), client_ip()))


@bp.delete("/devices/<code>")
@requires("devices:write")
def revoke_device(code: str) -> Response:
    sites().revoke_device(code, caller(), client_ip())
    # Rewritten on every call, so repeating a DELETE heals a rewrite that failed.
    try:
        broker_files.write_broker_files(settings(), engine())
    except OSError as exc:
        raise ApiError(
            503,
            "broker_files_unwritable",
            f"revoked, but the broker files could not be rewritten ({exc}); repeat the DELETE",
        ) from exc
    return Response(status=204)


# --- errors -------------------------------------------------------------------------------


def _code_taken(code: str) -> ApiError:
    # Device codes are global (MQTT usernames); whose it is stays unsaid.
    return ApiError(
        409, "code_taken", f"device code {code!r} is taken; choose another", {"field": "code"}
    )


@bp.errorhandler(UnknownZone)
def _unknown_zone(exc: UnknownZone) -> Response:
    return error_response(422, "unknown_zone", str(exc), {"field": "zone"})


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return error_response(404, "not_found", str(exc))


@bp.errorhandler(LocationsExist)
def _locations_exist(exc: LocationsExist) -> Response:
    return error_response(
        409,
        "locations_exist",
        f"{exc}; nothing was created",
        {"existing": exc.existing[:EXISTING_SHOWN], "count": len(exc.existing)},
    )


@bp.errorhandler(AlreadyExists)
def _already_exists(exc: AlreadyExists) -> Response:
    return error_response(409, "already_exists", str(exc), {"field": "code"})


# --- OpenAPI ------------------------------------------------------------------------------


def paths() -> dict[str, Any]:
    from cangyun.openapi import PAGE_PARAMS, operation, path_param, query

    tags = ["warehouses"]
    line = "^[^\\x00-\\x1f\\x7f]*$"
    nonblank = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"

    def text_schema(limit: int, *, blank: bool = True) -> dict[str, Any]:
        # Optional text may be null, meaning the same as leaving it out.
        if blank:
            return {"type": "string", "maxLength": limit, "pattern": line, "nullable": True}
        return {"type": "string", "maxLength": limit, "pattern": nonblank}

    def code_schema(longest: int = 63, *, nullable: bool = False) -> dict[str, Any]:
        pattern = f"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{longest - 1}}}$"
        return {"type": "string", "pattern": pattern} | ({"nullable": True} if nullable else {})

    def obj(required: list[str], **props: Any) -> dict[str, Any]:
        schema = {"type": "object", "additionalProperties": False, "properties": props}
        return schema | ({"required": required} if required else {})

    name = text_schema(200, blank=False)
    area_schema = {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1_000_000,
        "multipleOf": 0.01,
        "nullable": True,
        "description": "business area in m²; decides the traceability edition's period price",
    }
    span = obj(
        ["from", "to"],
        **{
            "from": {"type": "string", "pattern": "^([A-Za-z]|[0-9]{1,4})$"},
            "to": {"type": "string", "pattern": "^([A-Za-z]|[0-9]{1,4})$"},
        },
    )
    warehouse = path_param("code", "warehouse code")
    device = path_param("code", "device code")
    read = {401: "no, expired or invalid token", 403: "forbidden"}
    write = read | {400: "malformed body", 422: "invalid field (details.field)"}
    # Empty filters are ignored, as if left out.
    filters = [
        query(
            "zone",
            "only this zone (code)",
            {"type": "string", "pattern": "^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})?$"},
        ),
        query(
            "prefix",
            "only codes starting with this",
            {"type": "string", "pattern": "^[A-Za-z0-9_.-]{0,64}$"},
        ),
    ]

    def no_body(op: dict[str, Any], status: str) -> dict[str, Any]:
        op["responses"][status].pop("content", None)
        return op

    labels = operation(
        f"Printable labels of the locations (A4 PDF, at most {MAX_LABELS} labels)",
        params=[
            warehouse,
            query(
                "symbology",
                "code128 (default) or datamatrix; the symbol holds the location code",
                {"type": "string", "enum": list(SYMBOLOGIES)},
            ),
            *filters,
        ],
        responses={
            200: "application/pdf",
            400: "bad parameter",
            404: "warehouse not in this tenant, or no location matches",
            422: f"more than {MAX_LABELS} locations match, or a code too long to print",
        }
        | read,
        tags=tags,
    )
    labels["responses"]["200"]["content"] = {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}
    }
    return {
        "/api/v1/warehouses": {
            "get": operation(
                "Warehouses of this tenant with zone, location and device counts",
                responses={200: "page {total, items, next}"} | read,
                tags=tags,
            ),
            "post": operation(
                "Add a warehouse",
                body=obj(
                    ["code", "name"],
                    code=code_schema(),
                    name=name,
                    address=text_schema(300),
                    area_m2=area_schema,
                ),
                responses={201: "warehouse", 409: "code taken"} | write,
                tags=tags,
            ),
        },
        "/api/v1/warehouses/{code}": {
            "get": operation(
                "One warehouse",
                params=[warehouse],
                responses={200: "warehouse", 404: "not in this tenant"} | read,
                tags=tags,
            ),
            "patch": operation(
                "Change a warehouse's name, address or business area (null clears it)",
                params=[warehouse],
                body=obj([], name=name, address=text_schema(300), area_m2=area_schema),
                responses={200: "warehouse", 404: "not in this tenant"} | write,
                tags=tags,
            ),
        },
        "/api/v1/warehouses/{code}/zones": {
            "get": operation(
                "Zones (库区) of a warehouse",
                params=[warehouse],
                responses={200: "page {total, items, next}", 404: "not in this tenant"} | read,
                tags=tags,
            ),
            "post": operation(
                "Add a zone",
                params=[warehouse],
                body=obj(
                    ["code", "name"],
                    code=code_schema(),
                    name=name,
                    kind={
                        "type": "string",
                        "enum": list(ZONE_KINDS),
                        "default": "storage",
                        "nullable": True,
                    },
                ),
                responses={201: "zone", 404: "not in this tenant", 409: "code taken"} | write,
                tags=tags,
            ),
        },
        "/api/v1/warehouses/{code}/locations": {
            "get": operation(
                "Locations (库位) of a warehouse in code order",
                params=[warehouse, *filters, *PAGE_PARAMS],
                responses={
                    200: "page {total, items, next}",
                    400: "bad parameter",
                    404: "not in this tenant",
                }
                | read,
                tags=tags,
            ),
            "post": operation(
                "Add one location",
                params=[warehouse],
                body=obj(
                    ["code"],
                    code=code_schema(64),
                    name=text_schema(200),
                    zone=code_schema(nullable=True),
                ),
                responses={201: "location", 404: "not in this tenant", 409: "code taken"} | write,
                tags=tags,
            ),
        },
        "/api/v1/warehouses/{code}/locations/bulk": {
            "post": operation(
                f"Generate a grid of locations, e.g. aisles A-C × racks 01-20 × levels 1-4 →"
                f" A-01-1 … C-20-4; all or nothing, at most {MAX_GRID}",
                params=[warehouse],
                body=obj(
                    ["aisles", "racks", "levels"],
                    aisles=span,
                    racks=span,
                    levels=span,
                    positions=span | {"nullable": True},
                    zone=code_schema(nullable=True),
                    prefix={
                        "type": "string",
                        "pattern": "^([A-Za-z0-9][A-Za-z0-9_.-]{0,59})?$",
                        "nullable": True,
                    },
                    separator={
                        "type": "string",
                        "enum": list(SEPARATORS),
                        "default": "-",
                        "nullable": True,
                    },
                ),
                responses={
                    201: "{created, first, last}",
                    404: "not in this tenant",
                    409: "some codes exist (details.existing); nothing was created",
                }
                | write,
                tags=tags,
            )
        },
        "/api/v1/warehouses/{code}/locations/labels.pdf": {"get": labels},
        "/api/v1/warehouses/{code}/locations/{location}": {
            "delete": no_body(
                operation(
                    "Delete a location (the cloud keeps stock per warehouse, not per bin)",
                    params=[warehouse, path_param("location", "location code")],
                    responses={204: "deleted", 404: "not in this tenant"} | read,
                    tags=tags,
                ),
                "204",
            )
        },
        "/api/v1/devices": {
            "post": operation(
                "Register a device; an edge box gets its broker credentials, edge API token"
                " and settings file in this answer only",
                body=obj(
                    ["warehouse", "code", "kind"],
                    warehouse=code_schema(),
                    code=code_schema(),
                    kind={"type": "string", "enum": list(DEVICE_KINDS)},
                    name=text_schema(200),
                ),
                responses={
                    201: "device (+ credentials, edge_settings for an edge box)",
                    404: "warehouse not in this tenant",
                    409: "device code taken (codes are global: MQTT usernames)",
                    503: "broker files could not be written",
                }
                | write,
                tags=["devices"],
            )
        },
        "/api/v1/devices/{code}": {
            "get": operation(
                "One device (never its secrets)",
                params=[device],
                responses={200: "device", 404: "not in this tenant"} | read,
                tags=["devices"],
            ),
            "patch": operation(
                "Rename a device",
                params=[device],
                body=obj([], name=name),
                responses={200: "device", 404: "not in this tenant"} | write,
                tags=["devices"],
            ),
            "delete": no_body(
                operation(
                    "Revoke a device: the broker drops its account at once",
                    params=[device],
                    responses={
                        204: "revoked",
                        404: "not in this tenant",
                        503: "broker files could not be rewritten; repeat",
                    }
                    | read,
                    tags=["devices"],
                ),
                "204",
            ),
        },
    }
