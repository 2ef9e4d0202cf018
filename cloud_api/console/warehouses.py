"""仓库 warehouses, 库区 zones, 库位 locations and their label sheets.

The forms are read as the JSON API's bodies (``NewWarehouse``, ``NewZone``, ``LocationGrid``)
and the location filters as its ``LocationFilter``: one declaration, the same refusals.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, g, redirect, render_template, request, url_for

from cangyun.apispec import parse_query, validate
from cangyun.errors import AlreadyExists, Invalid, NotFound
from cangyun.httpapi import ApiError
from cangyun.timeutil import utcnow
from cloud_api import console
from cloud_api.console import bp
from cloud_api.console.session import lang, require
from cloud_api.ledger import store as ledger
from cloud_api.platform import i18n
from cloud_api.platform.auth import client_ip, engine
from cloud_api.platform.tenancy import Caller
from cloud_api.sites import registry
from cloud_api.sites.api import LocationFilter, LocationGrid, NewWarehouse, NewZone
from cloud_api.sites.labels import (
    LOCATION_CODE,
    MAX_LABELS,
    SEPARATORS,
    SYMBOLOGIES,
    Axis,
    Label,
    LabelError,
    grid_codes,
    render_labels,
)
from cloud_api.sites.store import ZONE_KINDS, LocationsExist, TenantSites

EXISTING_SHOWN = 10  # clashing location codes named in a refused grid
GRID_AXES = ("aisles", "racks", "levels", "positions")  # slowest first, as the form names them


def _sites() -> TenantSites:
    return TenantSites(engine(), g.console_caller.tenant_id)


def _own_warehouse(code: str) -> TenantSites:
    """The caller's sites, once the warehouse in the path is known to be theirs."""
    store = _sites()
    try:
        store.require_warehouse(code)
    except NotFound:
        abort(404)
    return store


@bp.get("/warehouses")
def warehouses() -> Any:
    require("warehouses:read")
    return _warehouses_page()


@bp.post("/warehouses")
def create_warehouse() -> Any:
    who = require("warehouses:write")
    data: dict[str, Any] = _filled("code", "name", "address", "area_m2")
    if "area_m2" in data:
        data["area_m2"] = _number(data["area_m2"])
    try:
        # The JSON API's NewWarehouse body: the area decides a price tier, so it is as strict.
        new = validate(NewWarehouse, data)
        created = _sites().create_warehouse(
            code=new.code,
            name=new.name,
            address=new.address or "",
            area_m2=new.area_m2,
            caller=who,
            ip=client_ip(),
        )
    except (ApiError, Invalid) as exc:
        return _warehouses_page(error=exc.message, status=422)
    except AlreadyExists as exc:
        return _warehouses_page(error=str(exc), status=409)
    return redirect(url_for("console.warehouse", code=created["code"]))


def _filled(*names: str) -> dict[str, str]:
    """The named form fields that hold something: a blank field counts as left out, so a
    blank area is no area and a blank name is "name is required"."""
    return {name: request.form[name] for name in names if request.form.get(name, "").strip()}


def _number(text: str) -> float | str:
    """Form text as the number the JSON body would carry; text that is no number goes to the
    body model as sent, which refuses it as the API does (area_m2: a valid number)."""
    try:
        return float(text)
    except ValueError:
        return text


def _warehouses_page(*, error: str | None = None, status: int = 200) -> tuple[str, int]:
    who: Caller = g.console_caller
    g.page_url = url_for("console.warehouses")
    online: dict[str, int] = {}
    for device in registry.list_devices(engine(), who.tenant_id):
        if device["online"] and device["revoked_at"] is None:
            online[device["warehouse"]] = online.get(device["warehouse"], 0) + 1
    return render_template(
        "console/warehouses.html",
        items=_sites().warehouses(),
        online=online,
        error=error,
        form=request.form,
    ), status


@bp.get("/warehouses/<code>")
def warehouse(code: str) -> Any:
    require("warehouses:read")
    return _warehouse_page(_own_warehouse(code), code)


@bp.post("/warehouses/<code>/zones")
def create_zone(code: str) -> Any:
    who = require("warehouses:write")
    store = _own_warehouse(code)
    try:
        new = validate(NewZone, _filled("code", "name", "kind"))
        store.create_zone(
            code,
            code=new.code,
            name=new.name,
            kind=new.kind or "storage",
            caller=who,
            ip=client_ip(),
        )
    except ApiError as exc:
        return _warehouse_page(store, code, error=exc.message, status=422)
    except AlreadyExists as exc:
        return _warehouse_page(store, code, error=str(exc), status=409)
    return redirect(url_for("console.warehouse", code=code))


@bp.post("/warehouses/<code>/locations")
def create_locations(code: str) -> Any:
    """A grid of bins, aisles × racks × levels (× positions), all or none."""
    who = require("warehouses:write")
    store = _own_warehouse(code)
    form = request.form
    # The form as the JSON API's LocationGrid body: an axis with both ends blank is left out
    # (positions may be), and a blank separator is sent, since it joins the parts bare.
    data: dict[str, Any] = {}
    for axis in GRID_AXES:
        span = {end: form.get(f"{axis}_{end}", "").strip() for end in ("from", "to")}
        if any(span.values()):
            data[axis] = span
    data |= _filled("zone", "prefix")
    if "separator" in form:
        data["separator"] = form["separator"]
    try:
        grid = validate(LocationGrid, data)
        spans = {name: getattr(grid, name) for name in GRID_AXES}
        axes = [Axis(name, s["from"], s["to"]) for name, s in spans.items() if s is not None]
        separator = "-" if grid.separator is None else grid.separator
        codes = grid_codes(axes, prefix=grid.prefix or "", separator=separator)
        created = store.create_locations(code, codes, zone=grid.zone, caller=who, ip=client_ip())
    except (ApiError, Invalid) as exc:
        # invalid_grid (a range, the grid's size) and unknown_zone are Invalid too
        return _warehouse_page(store, code, error=exc.message, status=422)
    except LocationsExist as exc:
        message = str(exc)
        if len(exc.existing) > 1:
            more = " …" if len(exc.existing) > EXISTING_SHOWN else ""
            message += f": {', '.join(exc.existing[:EXISTING_SHOWN])}{more}"
        return _warehouse_page(store, code, error=message, status=409)
    return redirect(url_for("console.warehouse", code=code, created=created))


@bp.get("/warehouses/<code>/labels.pdf")
def location_labels(code: str) -> Any:
    """The API's label sheet for a browser session (the API route wants a bearer token)."""
    require("warehouses:read")
    store = _own_warehouse(code)
    symbology = request.args.get("symbology") or "code128"
    try:
        if symbology not in SYMBOLOGIES:
            raise LabelError(f"symbology must be one of {', '.join(SYMBOLOGIES)}")
        found = parse_query(LocationFilter)
        warehouse, rows, total = store.label_rows(
            code, zone=found.zone, prefix=found.prefix, limit=MAX_LABELS
        )
        if total > MAX_LABELS:
            raise LabelError(i18n.text("too_many_labels", lang(), count=total, limit=MAX_LABELS))
        if not rows:
            raise LabelError(i18n.text("no_labels", lang()))
        labels = [Label(r["code"], warehouse["name"], r["zone_name"]) for r in rows]
        sheet = render_labels(labels, symbology, title=f"库位标签 {warehouse['name']}")
    except (ApiError, LabelError) as exc:
        return _warehouse_page(store, code, error=exc.message, status=422)
    return Response(
        sheet.pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{code}-locations-{symbology}.pdf"'},
    )


def _warehouse_page(
    store: TenantSites, code: str, *, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    who: Caller = g.console_caller
    try:
        # The JSON API's own filter rules (its 400 invalid_parameter), shown on the page.
        found = parse_query(LocationFilter)
        zone, prefix = found.zone, found.prefix
    except ApiError as exc:
        zone, prefix, error = None, None, error or exc.message
    after = request.args.get("after") or None
    if after is not None and not LOCATION_CODE.fullmatch(after):
        abort(400)
    total, items, last = store.locations(
        code, zone=zone, prefix=prefix, after=after, limit=console.LOCATIONS_PAGE
    )
    # The registry lists a tenant's devices, not one warehouse's: pick ours here.
    devices = [
        d
        for d in registry.list_devices(engine(), who.tenant_id)
        if d["warehouse"] == code and d["revoked_at"] is None
    ]
    now = utcnow()
    views = {
        d["code"]: ledger.device_sync_view(engine(), who.tenant_id, d["code"], now) for d in devices
    }
    g.page_url = url_for("console.warehouse", code=code)
    return render_template(
        "console/warehouse.html",
        w=store.warehouse(code),
        zones=store.zones(code),
        zone_kinds=ZONE_KINDS,
        separators=SEPARATORS,
        symbologies=SYMBOLOGIES,
        locations=items,
        locations_total=total,
        zone_filter=zone or "",
        prefix=prefix or "",
        after=after,
        next=last,
        max_labels=MAX_LABELS,
        devices=devices,
        views=views,
        created=request.args.get("created", type=int),
        error=error,
        form=request.form,
    ), status
