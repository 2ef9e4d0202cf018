"""The gate HTTP API under /api/v1/gates: parse, call, respond.

Everything takes the edge's device token. ``POST /gates/{gate}/frames`` also takes that
gate's camera token, so a camera can push without holding the box's own credentials.

Bodies another door takes too are parsed by that door's grammar and documented by a model:
an expected line by the kernel's ``cangyun.expected.parse_line`` (the cloud's and the
downlink's too, ``GateLine``), a gate by ``edge.gates.model.parse_gate`` (the CLI's too,
``NewGate``), so their refusals keep the grammar's codes (``missing_item``, ``invalid_code``).
Camera codes and directions follow the same grammar. The operator's answer to a held pallet
is the API's alone: its model parses it.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Literal, TypeVar

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, Field

from cangyun.apispec import Body, Media, Page, Query, Reply, operation, validate
from cangyun.bodies import PalletLine
from cangyun.box_settings import EdgeSettings
from cangyun.expected import (
    DIRECTIONS,
    GATE_CODE,
    GATE_CODE_MAX,
    check_direction,
    check_gate_code,
    parse_line,
)
from cangyun.fields import Gtin, Name, Text
from cangyun.httpapi import (
    ApiError,
    bearer_token,
    error_response,
    json_body,
    json_response,
    page,
    uploaded_image,
)
from cangyun.movement import MAX_LOT, MAX_QTY, MAX_TEXT, MAX_WEIGHT_KG
from edge import licence
from edge.gates.model import (
    DEFAULT_WINDOW_S,
    MAX_WINDOW_S,
    Acceptance,
    new_camera_token,
    parse_gate,
)
from edge.gates.model import DIRECTIONS as GATE_DIRECTIONS
from edge.gates.outcomes import accept_hold, reject_hold
from edge.gates.pipeline import Frame, GateHub
from edge.gates.plates import PlateError, compact
from edge.gates.store import EVENT_FILTERS, GateStore
from edge.store import EdgeStore
from ocr_service.images import MAX_IMAGE_BYTES, ImageError, load_image

MAX_JSON_BYTES = 64 * 1024
MAX_NOTE = 500
MAX_CURSOR = 2**62
PUSH_CAMERA = "push"  # camera name of pushes that do not say which camera they come from
TAGS = ("gates",)

M = TypeVar("M", bound=BaseModel)
GateDirection = Literal[GATE_DIRECTIONS]  # type: ignore[valid-type]
LineDirection = Literal[DIRECTIONS]  # type: ignore[valid-type]


def gate_store() -> GateStore:
    return current_app.extensions["cangyun.gate_store"]


def hub() -> GateHub:
    return current_app.extensions["cangyun.gate_hub"]


def edge_store() -> EdgeStore:
    return current_app.extensions["cangyun.edge_store"]


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


# --- bodies -------------------------------------------------------------------------------


def _direction(allowed: tuple[str, ...], description: str, *, optional: bool = False) -> Any:
    # Checked by the kernel's check_direction, which answers invalid_direction.
    if optional:
        return Field(None, description=description, json_schema_extra={"enum": [*allowed, None]})
    return Field(description=description, json_schema_extra={"enum": list(allowed)})


class NewGate(Body):
    """A dock gate"""

    code: str = Field(
        max_length=GATE_CODE_MAX,
        pattern=GATE_CODE.pattern,
        description="gate code, e.g. dock-1 (not alerts or status)",
    )
    direction: GateDirection
    window_s: float = Field(
        DEFAULT_WINDOW_S,
        ge=1.0,
        le=MAX_WINDOW_S,
        description="sightings of one pallet within this many seconds make one event",
    )
    ocr_containers: bool = Field(
        False, description="also read ISO 6346 container numbers by OCR (about 0.7 s a frame)"
    )
    ocr_plates: bool = Field(
        False,
        description="also read Chinese truck plates by OCR: each truck becomes a logged event"
        " of kind plate",
    )


class GateLine(PalletLine):
    """One expected pallet; give sscc or gtin (or both)"""

    direction: str | None = _direction(
        DIRECTIONS, "default: the gate's; required on a gate for both directions", optional=True
    )


def _flat(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    assert "$defs" not in schema, f"{model.__name__} must stay flat to be inlined"
    return schema


# Parsed by the grammar the CLI uses too (parse_gate: invalid_code, invalid_direction, ...).
GATE = Media("application/json", "a dock gate", schema=_flat(NewGate))
# Parsed by the kernel's grammar (missing_item, invalid_sscc, ...), as the cloud's lines are.
LINE = Media("application/json", "one expected pallet", schema=_flat(GateLine))


class Note(Body):
    note: Name(MAX_NOTE) | None = None


class Accept(Note):
    """What the operator confirms; missing values come from the event or its expected line"""

    qty: int | None = Field(None, ge=1, le=MAX_QTY, strict=True, description="pieces")
    direction: str | None = _direction(
        DIRECTIONS, "needed when the gate serves both", optional=True
    )
    gtin: Gtin | None = None
    lot: Name(MAX_LOT) | None = None
    weight_kg: float | None = Field(None, ge=0, le=MAX_WEIGHT_KG, strict=True)
    customer: Name(MAX_TEXT) | None = Field(None, description="cargo owner (货主) code")


# Optional bodies: the route parses them (apispec requires a body it parses).
ACCEPT = Media("application/json", "optional", schema=_flat(Accept))
NOTE = Media("application/json", "optional", schema=_flat(Note))
IMAGES = (
    Media("image/jpeg"),
    Media("image/png"),
    Media("image/webp"),
    Media(
        "multipart/form-data",
        "the frame in the field `image`",
        schema={"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}},
    ),
)


class Camera(Reply):
    code: str
    kind: Literal["push", "stream", "folder"]
    url: str | None = Field(None, description="stream cameras")
    fps: float | None = Field(None, description="stream cameras: frames sampled per second")
    folder: str | None = Field(None, description="folder cameras: the drop folder")
    after: Literal["archive", "delete"] | None = Field(None, description="folder cameras")
    poll_s: float | None = Field(None, description="folder cameras")


class Gate(Reply):
    """A gate and its cameras"""

    code: str
    direction: GateDirection
    window_s: float
    ocr_containers: bool
    ocr_plates: bool
    created_at: str
    cameras: list[Camera]


class CreatedGate(Gate):
    """The new gate with its camera token, shown this once"""

    camera_token: str


class FrameQueue(Reply):
    waiting: int
    capacity: int


class GateTotals(Reply):
    gate: str
    received: int
    decoded: int
    dropped: int


class GatesStatus(Reply):
    """Frames received, decoded and dropped per gate, and the decoding queue"""

    worker_running: bool
    queue: FrameQueue
    dropped: int
    gates: list[GateTotals]
    last_error: str | None


class Alert(Reply):
    """A gate alert (unexpected goods, a shipment stock cannot cover, a lapsed licence)"""

    id: int
    gate: str
    kind: str
    message: str
    event_id: int | None
    hold_id: int | None
    created_at: str


class ExpectedPallet(Reply):
    """An expected pallet: this gate's, or the cloud's for any gate (gate null)"""

    id: int
    gate: str | None
    direction: LineDirection
    sscc: str | None
    gtin: str | None
    lot: str | None
    qty: int
    weight_kg: float | None
    customer: str | None
    reference: str | None
    status: Literal["open", "claimed", "held", "received", "shipped", "cancelled"]
    event_id: int | None
    movement_id: str | None
    created_at: str
    done_at: str | None
    source: Literal["edge", "cloud"]
    cloud_id: int | None


class QueuedFrame(Reply):
    """The frame is queued for decoding"""

    gate: str
    camera: str
    width: int
    height: int
    queued: bool
    waiting: int
    dropped: int = Field(description="older frames dropped to make room")


class GateEvent(Reply):
    """One pallet (or container, or truck) passing a gate"""

    id: int
    gate: str
    direction: GateDirection
    kind: Literal["sscc", "gtin", "container", "plate"]
    identity: str
    sscc: str | None
    gtin: str | None
    lot: str | None
    container: str | None
    plate: str | None
    first_seen: str | None
    last_seen: str | None
    frames: int
    cameras: list[str]
    outcome: Literal[
        "open", "received", "shipped", "held", "accepted", "rejected", "duplicate", "logged"
    ]
    reason: str | None
    expected_id: int | None
    movement_id: str | None
    hold_id: int | None


class Hold(Reply):
    """A pallet held for an operator, with its event and expected line"""

    id: int
    gate: str
    direction: GateDirection
    reason: str
    message: str
    status: Literal["open", "accepted", "rejected"]
    movement_id: str | None
    note: str | None
    created_at: str
    resolved_at: str | None
    event: GateEvent
    expected: ExpectedPallet | None


class CameraStatus(Reply):
    """One camera's counters, and what its source (folder, stream) last reported"""

    camera: str
    kind: Literal["push", "stream", "folder"]
    received: int
    decoded: int
    dropped: int
    codes: int
    decode_ms_mean: float | None
    last_frame_at: str | None
    last_codes_at: str | None
    state: Literal["watching", "connecting", "streaming", "retrying", "stopped", "error"] | None = (
        None
    )
    last_error: str | None = None
    folder: str | None = None
    taken: int | None = None
    rejected: int | None = None
    last_rejected: str | None = None
    url: str | None = None
    connects: int | None = None
    failures: int | None = None
    retry_in_s: float | None = None
    grabbed: int | None = None
    sampled: int | None = None


class GateStatus(Reply):
    """Per camera: frames received, decoded, dropped; source state and last error"""

    gate: str
    direction: GateDirection
    worker_running: bool
    queue: FrameQueue
    cameras: list[CameraStatus]
    received: int
    decoded: int
    dropped: int
    passes_in_view: int
    events: dict[str, int] = Field(description="events so far by outcome")
    last_error: str | None


class Paging(Query):
    limit: int = Field(100, ge=1, le=1000, description="page size")
    cursor: int = Field(0, ge=0, le=MAX_CURSOR, description="the `next` value of the last page")


Filter = Text(MAX_TEXT)


class AlertFilter(Paging):
    gate: Filter | None = Field(None, description="only this gate's alerts")


class ExpectedFilter(Paging):
    status: Filter | None = Field(
        None, description="open, claimed, held, received, shipped or cancelled"
    )


class EventFilter(Paging):
    outcome: Filter | None = Field(None, description="only events with this outcome")
    kind: Filter | None = Field(None, description="sscc, gtin, container or plate")
    sscc: Filter | None = Field(None, description="only events with this SSCC")
    gtin: Filter | None = Field(None, description="only events with this GTIN")
    plate: Filter | None = Field(None, description="truck plate, with or without the ·")


class HeldFilter(Paging):
    status: Filter = Field("open", description="open (default), accepted, rejected or all")


class FrameSource(Query):
    # Checked by the gate-code grammar (invalid_code), as camera codes are everywhere.
    camera: str | None = Field(
        None,
        description="camera code (default: push)",
        json_schema_extra={"pattern": GATE_CODE.pattern, "maxLength": GATE_CODE_MAX},
    )


NO_GATE = {404: "gate_not_found: no such gate"}
NO_HOLD = {404: "gate_not_found, or not_found: no such held pallet"}


def create_blueprint() -> Blueprint:
    bp = Blueprint("edge_gates", __name__, url_prefix="/api/v1/gates")
    bp.before_request(_authenticate)
    bp.register_error_handler(ImageError, _bad_image)

    @bp.post("")
    @operation(
        "Add a gate; the answer holds its camera token, shown this once",
        body=GATE,
        max_bytes=MAX_JSON_BYTES,
        responses={201: CreatedGate, 409: "gate_exists", 422: "invalid gate (details.field)"},
        tags=TAGS,
    )
    def create_gate() -> Response:
        config = parse_gate(json_body(MAX_JSON_BYTES))
        token = new_camera_token()
        gate = gate_store().create_gate(config, token)
        response = json_response(gate | {"camera_token": token}, 201)
        response.headers["Location"] = f"/api/v1/gates/{config.code}"
        return response

    @bp.get("")
    @operation("List gates with their cameras", responses={200: Page[Gate]}, tags=TAGS)
    def list_gates() -> Response:
        gates = gate_store().list_gates()
        return json_response(page(len(gates), gates, None))

    @bp.get("/status")
    @operation(
        "Frames received, decoded and dropped per gate, and the decoding queue",
        responses={200: GatesStatus},
        tags=TAGS,
    )
    def all_status() -> Response:
        return json_response(hub().summary())

    @bp.get("/alerts")
    @operation(
        "Gate alerts, newest first (unexpected goods, shipments stock cannot cover)",
        query=AlertFilter,
        responses={200: Page[Alert]},
        tags=TAGS,
    )
    def list_alerts(query: AlertFilter) -> Response:
        total, items, next_id = gate_store().list_alerts(
            gate=query.gate, before_id=query.cursor or None, limit=query.limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.post("/<gate>/expected")
    @operation(
        "Expect a pallet at this gate (an ASN line inbound, a shipment line outbound)",
        body=LINE,
        max_bytes=MAX_JSON_BYTES,
        responses={201: ExpectedPallet, **NO_GATE, 422: "invalid line (details.field)"},
        tags=TAGS,
    )
    def add_expected(gate: str) -> Response:
        config = gate_store().gate_config(gate)
        line = parse_line(json_body(MAX_JSON_BYTES), config.direction)
        return json_response(gate_store().add_expected(gate, line), 201)

    @bp.get("/<gate>/expected")
    @operation(
        "Expected pallets, newest first: this gate's and the cloud's for any gate",
        query=ExpectedFilter,
        responses={200: Page[ExpectedPallet], **NO_GATE},
        tags=TAGS,
    )
    def list_expected(gate: str, query: ExpectedFilter) -> Response:
        gate_store().gate_config(gate)
        total, items, next_id = gate_store().list_expected(
            gate, status=query.status, before_id=query.cursor or None, limit=query.limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.post("/<gate>/frames")
    @operation(
        "Push one camera frame (raw image body or multipart field `image`); decoded"
        " asynchronously. Takes the gate's camera token or the device token.",
        body=IMAGES,
        query=FrameSource,
        responses={
            202: QueuedFrame,
            400: "empty upload",
            **NO_GATE,
            413: "over 32 MB or too many pixels",
            415: "not a JPEG, PNG or WebP image",
            422: "corrupt image, or an invalid camera code",
        },
        tags=TAGS,
    )
    def push_frame(gate: str, query: FrameSource) -> Response:
        gate_store().gate_config(gate)
        camera = check_gate_code(query.camera or PUSH_CAMERA, "camera")
        image = load_image(uploaded_image(MAX_IMAGE_BYTES))
        queued = hub().submit(
            Frame(gate, camera, image.gray, time.time(), snapshot=True, source="push")
        )
        body = {"gate": gate, "camera": camera, "width": image.width, "height": image.height}
        return json_response(body | queued, 202)

    @bp.get("/<gate>/events")
    @operation(
        "Gate events, one per pallet pass, newest first",
        query=EventFilter,
        responses={200: Page[GateEvent], **NO_GATE},
        tags=TAGS,
    )
    def list_events(gate: str, query: EventFilter) -> Response:
        gate_store().gate_config(gate)
        filters = {name: value for name in EVENT_FILTERS if (value := getattr(query, name))}
        if "plate" in filters:  # 沪A·12345 finds 沪A12345
            try:
                filters["plate"] = compact(filters["plate"])
            except PlateError:
                pass
        total, items, next_id = gate_store().list_events(
            gate, filters=filters, before_id=query.cursor or None, limit=query.limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.get("/<gate>/held")
    @operation(
        "Pallets held for an operator (unexpected, or stock does not allow)",
        query=HeldFilter,
        responses={200: Page[Hold], **NO_GATE},
        tags=TAGS,
    )
    def list_held(gate: str, query: HeldFilter) -> Response:
        gate_store().gate_config(gate)
        status = None if query.status == "all" else query.status
        total, items, next_id = gate_store().list_holds(
            gate, status=status, before_id=query.cursor or None, limit=query.limit
        )
        return json_response(page(total, items, _next(next_id)))

    @bp.post("/<gate>/held/<int:hold_id>/accept")
    @operation(
        "Accept a held pallet: records its receipt or shipment",
        body=ACCEPT,
        max_bytes=MAX_JSON_BYTES,
        responses={
            200: Hold,
            403: "the licence refuses the receipt (quota_exhausted, licence_expired, ...)",
            **NO_HOLD,
            409: "hold_resolved, insufficient_stock, ambiguous_customer",
            422: "missing qty, gtin or direction; invalid movement",
            507: "storage_full",
        },
        tags=TAGS,
    )
    def accept(gate: str, hold_id: int) -> Response:
        body = _optional_body(Accept)
        acceptance = Acceptance(
            qty=body.qty,
            direction=None if body.direction is None else check_direction(body.direction),
            gtin=body.gtin,
            lot=body.lot,
            weight_g=round(body.weight_kg * 1000) if body.weight_kg is not None else None,
            customer=body.customer,
            note=body.note,
        )
        admit = licence.admission(edge_store(), settings())
        return json_response(
            accept_hold(gate_store(), edge_store(), gate, hold_id, acceptance, admit)
        )

    @bp.post("/<gate>/held/<int:hold_id>/reject")
    @operation(
        "Reject a held pallet: nothing is recorded; its expected line stays open",
        body=NOTE,
        max_bytes=MAX_JSON_BYTES,
        responses={200: Hold, **NO_HOLD, 409: "hold_resolved", 422: "invalid note"},
        tags=TAGS,
    )
    def reject(gate: str, hold_id: int) -> Response:
        note = _optional_body(Note).note
        return json_response(reject_hold(gate_store(), gate, hold_id, note))

    @bp.get("/<gate>/status")
    @operation(
        "Per camera: frames received, decoded, dropped; source state and last error",
        responses={200: GateStatus, **NO_GATE},
        tags=TAGS,
    )
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


def _next(next_id: int | None) -> str | None:
    return str(next_id) if next_id else None


def _optional_body(model: type[M]) -> M:
    """``model`` from the JSON body, or from nothing when no body was sent."""
    if not request.content_length and not request.data:
        return model()
    data = json_body(MAX_JSON_BYTES)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_body", "send a JSON object")
    return validate(model, data)


def _bad_image(exc: ImageError) -> Response:
    # The scanning engine's own refusal (ocr_service knows no edge or cloud vocabulary) names
    # its status: 400 empty, 413 too large, 415 not a photo we read, 422 corrupt. 413 and 415
    # are no kind's, so a pushed frame keeps this one translation, as edge.scanning does.
    return error_response(exc.status, exc.code, exc.message)
