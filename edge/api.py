"""The edge HTTP API under /api/v1: parse, call the store, respond."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, g, request

from cangyun.httpapi import (
    ApiError,
    bearer_token,
    json_body,
    json_response,
    page,
    query_int,
)
from cangyun.movement import MovementError, parse_movement
from cangyun.timeutil import format_ts, utcnow
from edge import licence, scanning
from edge.openapi import spec
from edge.settings import EdgeSettings
from edge.stock import StockError
from edge.store import EdgeStore, StorageFull
from ocr_service.app import image_from_request
from ocr_service.identify import identify

bp = Blueprint("edge_api", __name__, url_prefix="/api/v1")

MAX_JSON_BYTES = 256 * 1024
MAX_IDEMPOTENCY_KEY = 128
# The sync agent writes a heartbeat every few seconds; three missed beats mean it is gone.
AGENT_TIMEOUT_FACTOR = 3


def store() -> EdgeStore:
    return current_app.extensions["cangyun.edge_store"]


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


@bp.before_request
def authenticate() -> None:
    if request.endpoint == "edge_api.openapi":
        return
    token = bearer_token()
    expected = settings().edge.api_token
    if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
        g.principal = {"kind": "device", "operator": None}
        return
    raise ApiError(
        401,
        "unauthorized",
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@bp.post("/movements")
def create_movement() -> Response:
    data = json_body(MAX_JSON_BYTES)
    if isinstance(data, dict) and "occurred_at" not in data:
        data = data | {"occurred_at": format_ts(utcnow())}
    try:
        movement = parse_movement(data, source="api")
    except MovementError as exc:
        raise ApiError(422, exc.code, exc.message, {"field": exc.field}) from exc
    request_id = request.headers.get("Idempotency-Key") or None
    if request_id is not None and len(request_id) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is too long")
    _admit(movement.type, request_id)
    try:
        recorded = store().record_movement(
            movement, request_id=request_id, operator=g.principal["operator"]
        )
    except StockError as exc:
        raise ApiError(409, exc.code, exc.message) from exc
    except StorageFull as exc:
        raise ApiError(507, "storage_full", str(exc)) from exc
    body = store().get_movement(recorded.id)
    response = json_response(body, 201 if recorded.created else 200)
    response.headers["Location"] = f"/api/v1/movements/{recorded.id}"
    return response


def _admit(movement_type: str, request_id: str | None) -> None:
    """403 for a new movement the licence does not allow. A retry of one already recorded
    goes through: the store answers it with the original, as before the licence lapsed."""
    if not licence.is_gated(movement_type):
        return
    try:
        licence.check_movement(licence.current(store(), settings()), movement_type)
    except licence.LicenceRefused as exc:
        if request_id is not None and store().movement_id_for_request(request_id):
            return
        raise _refused(exc) from exc


def _refused(exc: licence.LicenceRefused) -> ApiError:
    return ApiError(403, exc.code, exc.message, {"licence_state": exc.state})


@bp.get("/movements")
def list_movements() -> Response:
    limit = query_int("limit", 100, 1, 1000)
    cursor = query_int("cursor", 0, 0, 2**62) or None
    filters = {
        k: v
        for k in ("type", "gtin", "sku", "lot", "customer", "operator", "sscc")
        if (v := request.args.get(k))
    }
    total, items, next_seq = store().list_movements(filters, before_seq=cursor, limit=limit)
    return json_response(page(total, items, str(next_seq) if next_seq else None))


@bp.get("/movements/<movement_id>")
def get_movement(movement_id: str) -> Response:
    body = store().get_movement(movement_id)
    if body is None:
        raise ApiError(404, "not_found", f"no movement {movement_id}")
    return json_response(body)


@bp.get("/stock")
def get_stock() -> Response:
    filters = {
        k: v for k in ("customer", "gtin", "sku", "lot", "location") if (v := request.args.get(k))
    }
    items = store().stock(filters)
    return json_response(page(len(items), items, None))


@bp.get("/sync/status")
def sync_status() -> Response:
    timeout = settings().sync.heartbeat_s * AGENT_TIMEOUT_FACTOR
    body = store().sync_status(agent_timeout_s=timeout)
    body["licence"] = licence.current(store(), settings()).summary()
    return json_response(body)


@bp.get("/licence")
def get_licence() -> Response:
    """The licence in force, as this box sees it now (verified offline)."""
    return json_response(licence.current(store(), settings()).to_json())


@bp.post("/scans")
def create_scan() -> Response:
    """Decode a photo or a typed/wedge-scanned code. Records nothing."""
    if request.mimetype in ("application/json", "application/x-www-form-urlencoded"):
        data = json_body(16 * 1024)
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code.strip() or len(code) > 4096:
            raise ApiError(422, "missing_code", 'send {"code": "..."} with the scanned text')
        identified = identify(code)
        return json_response(
            {
                "code": identified.to_json(),
                "barcodes": [],
                "fields": identified.fields,
                "conflicts": [],
            }
        )
    ocr = request.args.get("ocr", "0") in ("1", "true", "yes")
    if ocr:
        try:
            licence.check_ocr(licence.current(store(), settings()))
        except licence.LicenceRefused as exc:
            raise _refused(exc) from exc
    return json_response(scanning.scan(image_from_request(), ocr=ocr))


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(spec())
