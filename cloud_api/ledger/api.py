"""The stock ledger over HTTP: movements, stock levels, devices and their sync state.

Every store call takes the caller's tenant id, so no query can cross tenants.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import Field

from cangyun.apispec import Page, Query, Reply, operation
from cangyun.bodies import MovementFacts, MovementType
from cangyun.errors import NotFound
from cangyun.fields import Code, Gtin, Text, Timestamp
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor, json_response, page
from cangyun.timeutil import format_ts, utcnow
from cloud_api.ledger import store as ledger
from cloud_api.platform.auth import caller, engine, requires
from cloud_api.sites import registry

bp = Blueprint("ledger", __name__)


class StockFilter(Query):
    warehouse: Code | None = Field(None, description="warehouse code")
    customer: Code | None = Field(None, description="cargo owner (货主) code")
    gtin: Gtin | None = Field(None, description="GTIN (any length; matched as GTIN-14)")
    sku: Text(64) | None = None
    lot: Text(20) | None = Field(None, description="lot / batch")
    cursor: Text(400) | None = Field(None, description="the `next` value of the previous page")


class StockPage(StockFilter):
    limit: int = Field(1000, ge=1, le=5000, description="page size")


class MovementFilter(StockFilter):
    device: Code | None = Field(None, description="device code")
    type: MovementType | None = Field(None, description="movement type")
    from_: Timestamp | None = Field(None, alias="from", description="occurred at or after")
    to: Timestamp | None = Field(None, description="occurred before")
    order: Literal["asc", "desc"] = Field("asc", description="asc (oldest first) or desc")
    limit: int = Field(100, ge=1, le=1000, description="page size")


class Movement(MovementFacts):
    """A movement filed from an edge box"""

    id: int
    movement_id: str
    warehouse: str
    device: str
    epoch: str
    qty_delta: int
    weight_delta_kg: float
    received_at: str


class StockLevel(Reply):
    """Stock of one warehouse, cargo owner, goods and lot"""

    warehouse: str
    customer: str | None
    gtin: str | None
    sku: str | None
    lot: str | None
    qty: int
    weight_kg: float
    updated_at: str


class Device(Reply):
    """An edge box or gate of the tenant, with its link state"""

    code: str
    kind: str
    name: str
    warehouse: str
    online: bool
    status_at: str | None
    last_seen_at: str | None
    current_epoch: str | None
    created_at: str
    revoked_at: str | None


class DeviceSync(Reply):
    """Sync state of one device: watermark, last seen, lag"""

    device: str
    warehouse: str
    online: bool
    status_at: str | None
    last_seen_at: str | None
    seconds_since_seen: float | None
    epoch: str | None
    watermark: int
    edge_last_seq: int
    lag: int
    filed: int
    duplicates: int
    batches: int
    clock_skew_s: float | None
    last_hello_at: str | None
    dead_letters: int
    quarantined: int


def _filters(query: StockFilter, names: tuple[str, ...]) -> dict[str, Any]:
    values = query.model_dump(by_alias=True)
    return {name: values[name] for name in names if values.get(name) is not None}


def _cursor(text: str | None, valid: Any) -> Any:
    after = decode_cursor(text) if text else None
    if after is not None and not valid(after):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    return after


@bp.get("/movements")
@requires("movements:read")
@operation(
    "The stock ledger: movements filed from every edge of the tenant",
    query=MovementFilter,
    responses={200: Page[Movement]},
)
def list_movements(query: MovementFilter) -> Response:
    names = ("warehouse", "device", "type", "gtin", "sku", "lot", "customer", "from", "to")
    after = _cursor(query.cursor, lambda v: isinstance(v, int) and not isinstance(v, bool))
    total, items, last_id = ledger.list_movements(
        engine(),
        caller().tenant_id,
        _filters(query, names),
        after_id=after,
        limit=query.limit,
        newest_first=query.order == "desc",
    )
    return json_response(page(total, items, encode_cursor(last_id) if last_id else None))


@bp.get("/stock")
@requires("stock:read")
@operation(
    "Stock per warehouse, cargo owner, goods and lot (pieces and kg)",
    query=StockPage,
    responses={200: Page[StockLevel]},
)
def get_stock(query: StockPage) -> Response:
    after = _cursor(query.cursor, lambda v: isinstance(v, list) and len(v) == 5)
    total, items, last = ledger.stock_levels(
        engine(),
        caller().tenant_id,
        _filters(query, ("warehouse", "customer", "gtin", "sku", "lot")),
        after=after,
        limit=query.limit,
    )
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.get("/devices")
@requires("devices:read")
@operation("Devices of the tenant with their link state", responses={200: Page[Device]})
def list_devices() -> Response:
    items = registry.list_devices(engine(), caller().tenant_id)
    for item in items:
        for key in ("status_at", "last_seen_at", "created_at", "revoked_at"):
            if item[key] is not None:
                item[key] = format_ts(item[key])
    return json_response(page(len(items), items, None))


@bp.get("/devices/<code>/sync")
@requires("devices:read")
@operation(
    "Sync state of one device: watermark, last seen, lag",
    responses={200: DeviceSync, 404: "no such device in this tenant"},
)
def device_sync(code: str) -> Response:
    view = ledger.device_sync_view(engine(), caller().tenant_id, code, utcnow())
    if view is None:
        raise NotFound(f"no device {code!r} in this tenant")
    return json_response(view)
