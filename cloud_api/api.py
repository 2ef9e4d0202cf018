"""The cloud HTTP API under /api/v1: parse, call the store, respond.

Every store call takes the caller's tenant id, so no query can cross tenants.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from cangyun.httpapi import (
    ApiError,
    decode_cursor,
    encode_cursor,
    json_response,
    page,
    query_int,
)
from cangyun.identifiers import IdentifierError, normalize_gtin
from cangyun.movement import MOVEMENT_TYPES
from cangyun.timeutil import TimestampError, parse_ts, utcnow
from cloud_api import (
    api_accounts,
    api_billing,
    api_crm,
    api_expected,
    api_integrations,
    api_messages,
    api_sites,
)
from cloud_api.auth import authenticate, caller, engine, requires
from cloud_api.openapi import spec
from cloud_api.store import ledger, registry
from cloud_api.store.accounts import Caller

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)
ledger_bp = Blueprint("ledger", __name__)


def principal() -> Caller:
    return caller()


def _filters(names: tuple[str, ...]) -> dict[str, Any]:
    filters: dict[str, Any] = {k: v for k in names if (v := request.args.get(k))}
    if "gtin" in filters:
        try:
            filters["gtin"] = normalize_gtin(filters["gtin"])
        except IdentifierError as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from exc
    if "type" in filters and filters["type"] not in MOVEMENT_TYPES:
        raise ApiError(400, "invalid_parameter", f"type must be one of {', '.join(MOVEMENT_TYPES)}")
    for name in ("from", "to"):
        if name in filters:
            try:
                filters[name] = parse_ts(filters[name])
            except TimestampError as exc:
                raise ApiError(400, "invalid_parameter", f"{name}: {exc}") from exc
    return filters


@ledger_bp.get("/movements")
@requires("movements:read")
def list_movements() -> Response:
    filters = _filters(
        ("warehouse", "device", "type", "gtin", "sku", "lot", "customer", "from", "to")
    )
    limit = query_int("limit", 100, 1, 1000)
    order = request.args.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "invalid_parameter", "order must be asc or desc")
    cursor = request.args.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, last_id = ledger.list_movements(
        engine(),
        principal().tenant_id,
        filters,
        after_id=after,
        limit=limit,
        newest_first=order == "desc",
    )
    return json_response(page(total, items, encode_cursor(last_id) if last_id else None))


@ledger_bp.get("/stock")
@requires("stock:read")
def get_stock() -> Response:
    filters = _filters(("warehouse", "customer", "gtin", "sku", "lot"))
    limit = query_int("limit", 1000, 1, 5000)
    cursor = request.args.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    if after is not None and (not isinstance(after, list) or len(after) != 5):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, last = ledger.stock_levels(
        engine(), principal().tenant_id, filters, after=after, limit=limit
    )
    return json_response(page(total, items, encode_cursor(last) if last else None))


@ledger_bp.get("/devices")
@requires("devices:read")
def list_devices() -> Response:
    items = registry.list_devices(engine(), principal().tenant_id)
    for item in items:
        for key in ("status_at", "last_seen_at", "created_at", "revoked_at"):
            if item[key] is not None:
                item[key] = item[key].isoformat(timespec="milliseconds")
    return json_response(page(len(items), items, None))


@ledger_bp.get("/devices/<code>/sync")
@requires("devices:read")
def device_sync(code: str) -> Response:
    view = ledger.device_sync_view(engine(), principal().tenant_id, code, utcnow())
    if view is None:
        raise ApiError(404, "not_found", f"no device {code!r} in this tenant")
    return json_response(view)


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(spec())


bp.register_blueprint(ledger_bp)
for module in (
    api_accounts,
    api_crm,
    api_sites,
    api_expected,
    api_integrations,
    api_billing,
    api_messages,
):
    bp.register_blueprint(module.bp)
