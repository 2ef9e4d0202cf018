"""The cloud HTTP API under /api/v1: parse, call the store, respond.

Every store call takes the caller's tenant id, so no query can cross tenants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.engine import Engine

from cangyun.httpapi import (
    ApiError,
    bearer_token,
    decode_cursor,
    encode_cursor,
    json_body,
    json_response,
    page,
    query_int,
)
from cangyun.identifiers import IdentifierError, normalize_gtin
from cangyun.movement import MOVEMENT_TYPES
from cangyun.timeutil import TimestampError, parse_ts, utcnow
from cloud_api.openapi import spec
from cloud_api.store import ledger, registry
from cloud_api.store.registry import Principal

bp = Blueprint("cloud_api", __name__, url_prefix="/api/v1")

PUBLIC_ENDPOINTS = {"cloud_api.login", "cloud_api.openapi"}
SESSION_LIFETIME = timedelta(hours=12)


def engine() -> Engine:
    return current_app.extensions["cangyun.engine"]


def principal() -> Principal:
    return g.principal


@bp.before_request
def authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    token = bearer_token()
    found = registry.principal_for_token(engine(), token) if token else None
    if found is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing, expired or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    g.principal = found


@bp.post("/auth/login")
def login() -> Response:
    data = json_body(16 * 1024)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send {email, password}")
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        raise ApiError(422, "missing_field", "email and password are required")
    user = registry.authenticate_user(engine(), email, password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    expires = utcnow() + SESSION_LIFETIME
    token = registry.create_token(
        engine(),
        user["tenant_id"],
        user["role"],
        name="login",
        user_id=user["id"],
        expires_at=expires,
    )
    return json_response({"token": token, "role": user["role"], "expires_at": expires.isoformat()})


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


@bp.get("/movements")
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


@bp.get("/stock")
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


@bp.get("/devices")
def list_devices() -> Response:
    items = registry.list_devices(engine(), principal().tenant_id)
    for item in items:
        for key in ("status_at", "last_seen_at", "created_at", "revoked_at"):
            if item[key] is not None:
                item[key] = item[key].isoformat(timespec="milliseconds")
    return json_response(page(len(items), items, None))


@bp.get("/devices/<code>/sync")
def device_sync(code: str) -> Response:
    view = ledger.device_sync_view(engine(), principal().tenant_id, code, utcnow())
    if view is None:
        raise ApiError(404, "not_found", f"no device {code!r} in this tenant")
    return json_response(view)


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(spec())
