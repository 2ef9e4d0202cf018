"""The gate HTTP API under /api/v1/gates: parse, call, respond.

Everything takes the edge's device token. ``POST /gates/{gate}/frames`` also takes that
gate's camera token, so a camera can push without holding the box's own credentials.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Response, current_app, request

from cangyun.box_settings import EdgeSettings
from cangyun.httpapi import (
    ApiError,
    bearer_token,
    error_response,
    json_body,
    json_response,
    page,
    query_int,
    uploaded_image,
)
from edge import licence
from edge.gates.model import GateInputError, check_code, new_camera_token, parse_acceptance
from edge.gates.model import parse_expected as parse_expected_line
from edge.gates.model import parse_gate as parse_gate_config
from edge.gates.outcomes import Refused, accept_hold, reject_hold
from edge.gates.pipeline import Frame, GateHub
from edge.gates.plates import PlateError, compact
from edge.gates.store import (
    EVENT_FILTERS,
    GateExists,
    GateNotFound,
    GateStore,
    HoldNotFound,
    HoldResolved,
)
from edge.store import EdgeStore
from ocr_service.images import MAX_IMAGE_BYTES, ImageError, load_image

MAX_JSON_BYTES = 64 * 1024
PUSH_CAMERA = "push"  # camera name of pushes that do not say which camera they come from


def gate_store() -> GateStore:
    return current_app.extensions["cangyun.gate_store"]


def hub() -> GateHub:
    return current_app.extensions["cangyun.gate_hub"]


def edge_store() -> EdgeStore:
    return current_app.extensions["cangyun.edge_store"]


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


def create_blueprint() -> Blueprint:
    bp = Blueprint("edge_gates", __name__, url_prefix="/api/v1/gates")
    bp.before_request(_authenticate)
    bp.register_error_handler(GateInputError, _input_error)
    bp.register_error_handler(GateNotFound, _gate_not_found)
    bp.register_error_handler(HoldNotFound, _not_found)
    bp.register_error_handler(HoldResolved, _resolved)
    bp.register_error_handler(Refused, _refused)

    @bp.post("")
    def create_gate() -> Response:
        config = parse_gate_config(json_body(MAX_JSON_BYTES))
        token = new_camera_token()
        try:
            gate = gate_store().create_gate(config, token)
        except GateExists as exc:
            raise ApiError(409, "gate_exists", str(exc), {"field": "code"}) from exc
        response = json_response(gate | {"camera_token": token}, 201)
        response.headers["Location"] = f"/api/v1/gates/{config.code}"
        return response

    @bp.get("")
    def list_gates() -> Response:
        gates = gate_store().list_gates()
        return json_response(page(len(gates), gates, None))

    @bp.get("/status")
    def all_status() -> Response:
        return json_response(hub().summary())

    @bp.get("/alerts")
    def list_alerts() -> Response:
        limit, cursor = _paging()
        gate = request.args.get("gate") or None
        total, items, next_id = gate_store().list_alerts(gate=gate, before_id=cursor, limit=limit)
        return json_response(page(total, items, _next(next_id)))

    @bp.post("/<gate>/expected")
    def add_expected(gate: str) -> Response:
        config = gate_store().gate_config(gate)
        line = parse_expected_line(json_body(MAX_JSON_BYTES), config.direction)
        return json_response(gate_store().add_expected(gate, line), 201)

    @bp.get("/<gate>/expected")
    def list_expected(gate: str) -> Response:
        gate_store().gate_config(gate)
        limit, cursor = _paging()
        status = request.args.get("status") or None
        total, items, next_id = gate_store().list_expected(
            gate, status=status, before_id=cursor, limit=limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.post("/<gate>/frames")
    def push_frame(gate: str) -> Response:
        gate_store().gate_config(gate)
        camera = request.args.get("camera") or PUSH_CAMERA
        check_code(camera, "camera")
        try:
            image = load_image(uploaded_image(MAX_IMAGE_BYTES))
        except ImageError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from exc
        queued = hub().submit(
            Frame(gate, camera, image.gray, time.time(), snapshot=True, source="push")
        )
        body = {"gate": gate, "camera": camera, "width": image.width, "height": image.height}
        return json_response(body | queued, 202)

    @bp.get("/<gate>/events")
    def list_events(gate: str) -> Response:
        gate_store().gate_config(gate)
        limit, cursor = _paging()
        filters = {k: v for k in EVENT_FILTERS if (v := request.args.get(k))}
        if "plate" in filters:  # 沪A·12345 finds 沪A12345
            try:
                filters["plate"] = compact(filters["plate"])
            except PlateError:
                pass
        total, items, next_id = gate_store().list_events(
            gate, filters=filters, before_id=cursor, limit=limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.get("/<gate>/held")
    def list_held(gate: str) -> Response:
        gate_store().gate_config(gate)
        limit, cursor = _paging()
        status = request.args.get("status", "open")
        total, items, next_id = gate_store().list_holds(
            gate, status=None if status == "all" else status, before_id=cursor, limit=limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.post("/<gate>/held/<hold_id>/accept")
    def accept(gate: str, hold_id: str) -> Response:
        acceptance = parse_acceptance(_optional_json())
        held = accept_hold(
            gate_store(),
            edge_store(),
            gate,
            _hold_id(hold_id),
            acceptance,
            licence.admission(edge_store(), settings()),
        )
        return json_response(held)

    @bp.post("/<gate>/held/<hold_id>/reject")
    def reject(gate: str, hold_id: str) -> Response:
        note = parse_acceptance(_optional_json()).note
        return json_response(reject_hold(gate_store(), gate, _hold_id(hold_id), note))

    @bp.get("/<gate>/status")
    def gate_status(gate: str) -> Response:
        config = gate_store().gate_config(gate)
        body = hub().gate_status(gate) | {"direction": config.direction}
        return json_response(body)

    return bp


def _authenticate() -> None:
    token = bearer_token()
    expected = settings().edge.api_token
    if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    if token and request.endpoint == "edge_gates.push_frame":
        gate = (request.view_args or {}).get("gate")
        if gate is not None and gate_store().gate_for_token(token) == gate:
            return
    raise ApiError(
        401,
        "unauthorized",
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _paging() -> tuple[int, int | None]:
    return query_int("limit", 100, 1, 1000), query_int("cursor", 0, 0, 2**62) or None


def _hold_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, "not_found", f"no held pallet {text}")
    return int(text)


def _next(next_id: int | None) -> str | None:
    return str(next_id) if next_id else None


def _optional_json() -> object:
    if not request.content_length and not request.data:
        return None
    return json_body(MAX_JSON_BYTES)


def _input_error(exc: GateInputError) -> Response:
    return error_response(422, exc.code, exc.message, {"field": exc.field} if exc.field else None)


def _gate_not_found(exc: GateNotFound) -> Response:
    return error_response(404, "gate_not_found", f"no gate {exc.args[0]}")


def _not_found(exc: HoldNotFound) -> Response:
    return error_response(404, "not_found", str(exc))


def _resolved(exc: HoldResolved) -> Response:
    return error_response(409, "hold_resolved", str(exc))


def _refused(exc: Refused) -> Response:
    return error_response(exc.status, exc.code, exc.message)
