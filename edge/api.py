"""The edge HTTP API under /api/v1: parse, call the store, respond."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, g, request

from cangyun.box_settings import EdgeSettings
from cangyun.httpapi import (
    ApiError,
    bearer_token,
    json_body,
    json_response,
    page,
    query_int,
    uploaded_image,
)
from cangyun.movement import MovementError, parse_movement
from cangyun.timeutil import format_ts, utcnow
from edge import licence, scanning
from edge.openapi import spec
from edge.operators import OperatorError, OperatorStore
from edge.pda.undo import compensation
from edge.stock import StockError
from edge.store import EdgeStore, StorageFull
from ocr_service.identify import identify
from ocr_service.images import MAX_IMAGE_BYTES

bp = Blueprint("edge_api", __name__, url_prefix="/api/v1")

MAX_JSON_BYTES = 256 * 1024
MAX_IDEMPOTENCY_KEY = 128
# The sync agent writes a heartbeat every few seconds; three missed beats mean it is gone.
AGENT_TIMEOUT_FACTOR = 3
# AI 00 (SSCC) or 01/02 (GTIN) with their fixed lengths, then the next AI's digits.
SESSION_COOKIE = "cangyun_pda_session"
CSRF_HEADER = "X-Requested-With"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"edge_api.openapi", "edge_api.login", "edge_api.logout"})


def store() -> EdgeStore:
    return current_app.extensions["cangyun.edge_store"]


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


def operators() -> OperatorStore:
    return current_app.extensions["cangyun.operators"]


@bp.before_request
def authenticate() -> None:
    """The device's bearer token (integrations), or an operator's PDA session cookie."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.method not in SAFE_METHODS:
            _require_csrf_header()
        return
    token = bearer_token()
    expected = settings().edge.api_token
    if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
        g.principal = {"kind": "device", "operator": None}
        return
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and token is None:
        found = operators().session(cookie)
        if found is None:
            raise ApiError(401, "session_expired", "your session has ended; log in again")
        # A cookie rides along on cross-site requests; a custom header cannot without CORS,
        # which this API does not grant. So writes by cookie must carry one.
        if request.method not in SAFE_METHODS:
            _require_csrf_header()
        operator, expires_at = found
        g.principal = {
            "kind": "operator",
            "operator": operator.username,
            "name": operator.name,
            "expires_at": expires_at,
        }
        return
    raise ApiError(
        401,
        "unauthorized",
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _require_csrf_header() -> None:
    if not request.headers.get(CSRF_HEADER):
        raise ApiError(
            403,
            "csrf_header_missing",
            f"requests with a session cookie need the {CSRF_HEADER} header",
        )


@bp.post("/auth/login")
def login() -> Response:
    """Operator login for the PDA: sets the HttpOnly session cookie. Works offline."""
    data = json_body(4096)
    if not isinstance(data, dict):
        raise ApiError(422, "missing_credentials", 'send {"username": ..., "password": ...}')
    try:
        session = operators().login(data.get("username"), data.get("password"))
    except OperatorError as exc:
        headers = {}
        if "retry_after_s" in exc.details:
            headers["Retry-After"] = str(exc.details["retry_after_s"])
        raise ApiError(exc.status, exc.code, exc.message, exc.details, headers) from exc
    body = {"operator": session.operator.to_json(), "expires_at": _epoch_ts(session.expires_at)}
    response = json_response(body)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(session.expires_at - operators().clock()),
        httponly=True,
        secure=request.is_secure,
        samesite="Strict",
        path="/",
    )
    return response


@bp.post("/auth/logout")
def logout() -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        operators().logout(cookie)
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return response


@bp.get("/auth/session")
def current_session() -> Response:
    """Who is logged in: the PDA asks on every page load."""
    principal = g.principal
    if principal["kind"] != "operator":
        return json_response({"operator": None, "expires_at": None})
    return json_response(
        {
            "operator": {"username": principal["operator"], "name": principal["name"]},
            "expires_at": _epoch_ts(principal["expires_at"]),
        }
    )


def _epoch_ts(seconds: float) -> str:
    return format_ts(datetime.fromtimestamp(seconds, UTC))


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
        raise ApiError(409, exc.code, exc.message, exc.details) from exc
    except StorageFull as exc:
        raise ApiError(507, "storage_full", str(exc)) from exc
    body = store().get_movement(recorded.id)
    response = json_response(body, 201 if recorded.created else 200)
    response.headers["Location"] = f"/api/v1/movements/{recorded.id}"
    return response


@bp.post("/movements/<movement_id>/undo")
def undo_movement(movement_id: str) -> Response:
    """Undo by compensating movements (never a delete). An operator undoes only their own;
    a repeated undo answers 200 with what the first one recorded."""
    original = store().get_movement(movement_id)
    if original is None:
        raise ApiError(404, "not_found", f"no movement {movement_id}")
    operator = g.principal["operator"]
    if operator is not None and original["operator"] != operator:
        raise ApiError(403, "not_your_movement", "operators undo only their own movements")
    try:
        planned = compensation(original, now=utcnow(), operator=operator)
        recorded = store().record_movements(planned, operator=operator)
    except StockError as exc:  # CannotUndo included
        raise ApiError(409, exc.code, exc.message, exc.details) from exc
    except StorageFull as exc:
        raise ApiError(507, "storage_full", str(exc)) from exc
    items = [store().get_movement(r.id) for r in recorded]
    return json_response(
        {"reverses": movement_id, "items": items}, 201 if recorded[0].created else 200
    )


@bp.get("/customers")
def list_customers() -> Response:
    """Cargo owners this box has seen, latest first: the PDA's choice list when receiving."""
    names = store().recent_customers(query_int("limit", 50, 1, 500))
    return json_response(page(len(names), [{"customer": n} for n in names], None))


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
    return json_response(scanning.scan(uploaded_image(MAX_IMAGE_BYTES), ocr=ocr))


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(spec())
