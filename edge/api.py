"""The edge HTTP API under /api/v1: parse, call the store, respond.

Every route declares its bodies with ``cangyun.apispec.operation``; the same declarations
write this box's OpenAPI document (``spec``). A movement's body is checked by the kernel's
``parse_movement`` (the rules cloud ingest applies again), and documented by its schema.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, current_app, g, request
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from cangyun import __version__, apispec
from cangyun.apispec import Body, Media, Page, Query, Reply, operation
from cangyun.bodies import MovementFacts
from cangyun.box_settings import EdgeSettings
from cangyun.fields import Text
from cangyun.httpapi import (
    ApiError,
    bearer_token,
    json_body,
    json_response,
    page,
    uploaded_image,
)
from cangyun.movement import MAX_TEXT, movement_schema
from cangyun.movement import parse_movement as parse_movement_body
from cangyun.timeutil import format_ts, utcnow
from edge import licence, scanning
from edge.operators import OperatorStore
from edge.pda.undo import compensation
from edge.store import EdgeStore
from ocr_service.identify import identify
from ocr_service.images import MAX_IMAGE_BYTES

bp = Blueprint("edge_api", __name__, url_prefix="/api/v1")

MAX_JSON_BYTES = 256 * 1024
MAX_LOGIN_BYTES = 4096
MAX_CODE_BYTES = 16 * 1024
MAX_CODE = 4096
MAX_IDEMPOTENCY_KEY = 128
MAX_CURSOR = 2**62
# The sync agent writes a heartbeat every few seconds; three missed beats mean it is gone.
AGENT_TIMEOUT_FACTOR = 3
SESSION_COOKIE = "cangyun_pda_session"
CSRF_HEADER = "X-Requested-With"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Sections of the document (and of /api/docs).
AUTH, MOVEMENTS, STOCK, SCANS, BOX = ("auth",), ("movements",), ("stock",), ("scans",), ("box",)
Filter = Text(MAX_TEXT)  # no stored value is longer, so a longer filter can only miss


def store() -> EdgeStore:
    return current_app.extensions["cangyun.edge_store"]


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


def operators() -> OperatorStore:
    return current_app.extensions["cangyun.operators"]


def spec() -> dict[str, Any]:
    return apispec.document(
        current_app,
        title="cangyun edge API",
        version=__version__,
        description="API of the warehouse edge box: PDAs, gate cameras and integrations."
        ' JSON; errors are {"error": {code, message, details}}; lists are {total, items, next}.',
    )


# --- bodies -------------------------------------------------------------------------------


class Credentials(Body):
    """An operator's username and password"""

    username: str = Field(max_length=32)
    password: str = Field(max_length=128)


class Operator(Reply):
    username: str
    name: str


class LoggedIn(Reply):
    """The operator, and when the session ends; Set-Cookie carries the session"""

    operator: Operator
    expires_at: str


class CurrentSession(Reply):
    """Who is logged in: operator null for the device token"""

    operator: Operator | None
    expires_at: str | None


class Movement(MovementFacts):
    """A movement recorded on this box"""

    id: str
    recorded_at: str
    synced: bool = Field(description="the cloud has acknowledged it")
    qty_delta: int | None = Field(None, description="counts only: counted minus book stock")
    weight_delta_kg: float | None = Field(None, description="counts only")
    reverses: str | None = Field(None, description="undo only: the movement it compensates")


class Undone(Reply):
    """The compensating movements of an undo"""

    reverses: str
    items: list[Movement]


class Customer(Reply):
    customer: str


class StockLevel(Reply):
    """Stock of one cargo owner, goods, lot and bin"""

    customer: str | None
    gtin: str | None
    sku: str | None
    lot: str | None
    location: str | None
    qty: int
    weight_kg: float
    expiry_date: str | None
    updated_at: str


LicenceStateName = Literal[
    "trial", "trial_ended", "valid", "grace", "expired", "clock_rollback", "invalid"
]


class LicenceSummary(Reply):
    """The licence in short, as the PDA's status bar shows it"""

    state: LicenceStateName
    message: str
    edition: str | None
    valid_until: str | None
    grace_until: str | None
    days_left: int | None
    inbound_allowed: bool
    ocr_allowed: bool


class LicenceProblem(Reply):
    code: str
    message: str


class LicenceView(LicenceSummary):
    """The licence in force, verified offline with the cloud's public key"""

    enforced: bool
    serial: str | None
    tenant: str | None
    warehouse: str | None
    device: str | None
    features: list[str]
    add_ons: list[str]
    issued_at: str | None
    grace_days: int | None
    installed_at: str | None
    trial_started_at: str | None  # the unlicensed trial's start; null once licensed
    last_seen: str | None
    checked_at: str | None
    problem: LicenceProblem | None
    token: str | None


class SyncStatus(Reply):
    """The link to the cloud, the outbox backlog and a licence summary"""

    device: str
    epoch: str
    online: bool
    link_since: str | None
    offline_since: str | None
    agent_running: bool
    last_seq: int
    acked_through: int
    backlog: int
    oldest_unacked_age_s: float
    last_ack_at: str | None
    rejected: int
    last_error: str | None
    licence: LicenceSummary


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("give the scanned text")
    return value


class CodeToIdentify(Body):
    """A typed or wedge-scanned code"""

    # Kept as sent, control characters included: GS1 data carries the GS separator (0x1D).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    code: Annotated[str, AfterValidator(_not_blank)] = Field(min_length=1, max_length=MAX_CODE)


class Barcode(Reply):
    """One decoded barcode"""

    format: str
    text: str
    content: str
    symbology: str
    position: list[list[int]]
    decoder: str
    gs1: dict[str, str] | None = Field(None, description="GS1 data by application identifier")
    gs1_error: str | None = None
    binary: bool = False


class LabelFields(Reply):
    """Label fields found in barcodes (first) and printed text"""

    gtin: str | None = None
    sscc: str | None = None
    lot: str | None = None
    production_date: str | None = None
    expiry_date: str | None = None
    net_weight_kg: float | None = None
    quantity: int | None = None
    product_name: str | None = None
    owner: str | None = None
    container: str | None = None


class FieldConflict(Reply):
    """A field the barcode and the printed text disagree on (the barcode wins)"""

    field: str
    barcode: str | int | float
    ocr: str | int | float


class ImageSize(Reply):
    width: int
    height: int


class TextLine(Reply):
    text: str
    score: float


class PhotoScan(Reply):
    """What a photo shows: barcodes, label fields, conflicts and timings"""

    barcodes: list[Barcode]
    fields: LabelFields
    field_sources: dict[str, Literal["barcode", "ocr"]]
    conflicts: list[FieldConflict]
    timings_ms: dict[str, float]
    image: ImageSize
    text: list[TextLine] | None = None


class IdentifiedCode(Reply):
    kind: Literal["gs1", "sscc", "gtin", "container", "drug_code", "text"]
    value: str
    fields: LabelFields
    symbology: str | None = None


class CodeScan(Reply):
    """What a scanned code string is"""

    code: IdentifiedCode
    barcodes: list[Barcode]
    fields: LabelFields
    conflicts: list[FieldConflict]


class MovementFilter(Query):
    type: Filter | None = Field(None, description="only movements of this type")
    gtin: Filter | None = Field(None, description="only movements with this GTIN-14")
    sku: Filter | None = Field(None, description="only movements with this sku")
    lot: Filter | None = Field(None, description="only movements with this lot")
    customer: Filter | None = Field(None, description="only movements of this cargo owner")
    operator: Filter | None = Field(None, description="only movements by this operator")
    sscc: Filter | None = Field(None, description="only movements with this SSCC")
    limit: int = Field(100, ge=1, le=1000, description="page size")
    cursor: int = Field(0, ge=0, le=MAX_CURSOR, description="the `next` value of the last page")


class StockFilter(Query):
    customer: Filter | None = Field(None, description="only this cargo owner")
    gtin: Filter | None = Field(None, description="only this GTIN-14")
    sku: Filter | None = Field(None, description="only this sku")
    lot: Filter | None = Field(None, description="only this lot")
    location: Filter | None = Field(None, description="only this bin")


class CustomerQuery(Query):
    limit: int = Field(50, ge=1, le=500, description="at most this many")


def _flag(value: Any) -> Any:
    return value in ("1", "true", "yes") if isinstance(value, str) else value


class ScanOptions(Query):
    ocr: Annotated[bool, BeforeValidator(_flag)] = Field(
        False, description="1 to read label text too (slower)"
    )
    mode: Literal["frame", "still"] = Field(
        "frame",
        description="frame: one frame of a live camera (a quick search, the next frame is the"
        " retry); still: a photo someone waits on (every symbol in it, up to"
        " scan.still_budget_ms)",
    )


MOVEMENT = Media("application/json", "a movement", schema=movement_schema())
IMAGES = (
    Media("image/jpeg"),
    Media("image/png"),
    Media("image/webp"),
    Media(
        "multipart/form-data",
        "the photo in the field `image`",
        schema={"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}},
    ),
)


# --- authentication -----------------------------------------------------------------------


@bp.before_request
def authenticate() -> None:
    """The device's bearer token (integrations), or an operator's PDA session cookie."""
    if _is_public(request.endpoint):
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


def _is_public(endpoint: str | None) -> bool:
    """Public exactly when the route's declaration says so (login, logout, this document)."""
    view = current_app.view_functions.get(endpoint or "")
    declared = getattr(view, "openapi", None)
    return declared is not None and declared.public


def _require_csrf_header() -> None:
    if not request.headers.get(CSRF_HEADER):
        raise ApiError(
            403,
            "csrf_header_missing",
            f"requests with a session cookie need the {CSRF_HEADER} header",
        )


# --- operators ----------------------------------------------------------------------------


@bp.post("/auth/login")
@operation(
    "Operator login for the PDA (works offline): sets the HttpOnly session cookie."
    " Needs the X-Requested-With header.",
    # Documented, not parsed here: the operator store answers missing_credentials itself.
    body=Media("application/json", schema=Credentials.model_json_schema()),
    responses={
        200: LoggedIn,
        401: "invalid_credentials",
        403: "account_disabled, or csrf_header_missing",
        422: "missing_credentials",
        423: "account_locked after repeated failures; Retry-After says how long",
    },
    public=True,
    max_bytes=MAX_LOGIN_BYTES,
    tags=AUTH,
)
def login() -> Response:
    data = json_body(MAX_LOGIN_BYTES)
    if not isinstance(data, dict):
        data = {}
    session = operators().login(data.get("username"), data.get("password"))
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
@operation(
    "End the operator's session and clear its cookie",
    responses={204: "logged out", 403: "csrf_header_missing"},
    public=True,
    tags=AUTH,
)
def logout() -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        operators().logout(cookie)
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return response


@bp.get("/auth/session")
@operation(
    "Who is logged in (operator null for the device token); the PDA asks on every page load",
    responses={200: CurrentSession, 401: "session_expired or no token"},
    tags=AUTH,
)
def current_session() -> Response:
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


# --- movements ----------------------------------------------------------------------------


@bp.post("/movements")
@operation(
    "Record a stock movement (movement, stock effect and outbox row in one commit)",
    description="Send an `Idempotency-Key` header (at most 128 characters) to retry safely:"
    " a repeat with the same key records nothing new and answers 200 with the first movement.",
    body=MOVEMENT,
    max_bytes=MAX_JSON_BYTES,
    responses={
        201: Movement,
        200: Movement,
        400: "malformed JSON, or an Idempotency-Key over 128 characters",
        403: "the licence refuses a new receipt: quota_exhausted, licence_expired"
        " (also after a clock rollback), licence_invalid, licence_required (no licence"
        " and the trial is over)",
        409: "stock does not allow it (insufficient_stock, ambiguous_customer)",
        422: "invalid movement (details.field names the culprit)",
        507: "storage_full: the disk budget is spent",
    },
    tags=MOVEMENTS,
)
def create_movement() -> Response:
    data = json_body(MAX_JSON_BYTES)
    if isinstance(data, dict) and "occurred_at" not in data:
        data = data | {"occurred_at": format_ts(utcnow())}
    movement = parse_movement_body(data, source="api")
    request_id = request.headers.get("Idempotency-Key") or None
    if request_id is not None and len(request_id) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is too long")
    _admit(movement.type, request_id)
    recorded = store().record_movement(
        movement, request_id=request_id, operator=g.principal["operator"]
    )
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
    except licence.LicenceRefused:
        if request_id is not None and store().movement_id_for_request(request_id):
            return
        raise


@bp.post("/movements/<movement_id>/undo")
@operation(
    "Undo a movement by compensating movements that name it in `reverses` (never"
    " a delete). Operators undo only their own; a repeat answers 200.",
    responses={
        201: Undone,
        200: Undone,
        401: "no or bad token, or session_expired",
        403: "not_your_movement, csrf_header_missing",
        404: "unknown id",
        409: "cannot_undo (a count, an undo, a pick across bins) or"
        " insufficient_stock (the goods moved on)",
        507: "storage_full",
    },
    tags=MOVEMENTS,
)
def undo_movement(movement_id: str) -> Response:
    original = _movement(movement_id)
    operator = g.principal["operator"]
    if operator is not None and original["operator"] != operator:
        raise ApiError(403, "not_your_movement", "operators undo only their own movements")
    planned = compensation(original, now=utcnow(), operator=operator)
    recorded = store().record_movements(planned, operator=operator)
    items = [store().get_movement(r.id) for r in recorded]
    return json_response(
        {"reverses": movement_id, "items": items}, 201 if recorded[0].created else 200
    )


@bp.get("/movements")
@operation(
    "List movements, newest first",
    query=MovementFilter,
    responses={200: Page[Movement]},
    tags=MOVEMENTS,
)
def list_movements(query: MovementFilter) -> Response:
    names = ("type", "gtin", "sku", "lot", "customer", "operator", "sscc")
    filters = {name: value for name in names if (value := getattr(query, name))}
    total, items, next_seq = store().list_movements(
        filters, before_seq=query.cursor or None, limit=query.limit
    )
    return json_response(page(total, items, str(next_seq) if next_seq else None))


@bp.get("/movements/<movement_id>")
@operation(
    "One movement",
    responses={200: Movement, 404: "unknown id"},
    tags=MOVEMENTS,
)
def get_movement(movement_id: str) -> Response:
    return json_response(_movement(movement_id))


def _movement(movement_id: str) -> dict[str, Any]:
    found = store().get_movement(movement_id)
    if found is None:
        raise ApiError(404, "not_found", f"no movement {movement_id}")
    return found


@bp.get("/customers")
@operation(
    "Cargo owners of recent movements, latest first (the PDA's choice list)",
    query=CustomerQuery,
    responses={200: Page[Customer]},
    tags=MOVEMENTS,
)
def list_customers(query: CustomerQuery) -> Response:
    names = store().recent_customers(query.limit)
    return json_response(page(len(names), [{"customer": n} for n in names], None))


@bp.get("/stock")
@operation(
    "Stock on hand per cargo owner, goods, lot and location",
    query=StockFilter,
    responses={200: Page[StockLevel]},
    tags=STOCK,
)
def get_stock(query: StockFilter) -> Response:
    names = ("customer", "gtin", "sku", "lot", "location")
    items = store().stock({name: value for name in names if (value := getattr(query, name))})
    return json_response(page(len(items), items, None))


# --- the box ------------------------------------------------------------------------------


@bp.get("/sync/status")
@operation(
    "Link to the cloud, the outbox backlog and a licence summary",
    responses={200: SyncStatus},
    tags=BOX,
)
def sync_status() -> Response:
    timeout = settings().sync.heartbeat_s * AGENT_TIMEOUT_FACTOR
    body = store().sync_status(agent_timeout_s=timeout)
    body["licence"] = licence.current(store(), settings()).summary()
    return json_response(body)


@bp.get("/licence")
@operation(
    "The licence in force, verified offline with the cloud's public key: state"
    " (none, valid, grace, expired, clock_rollback, invalid), features, add-ons,"
    " validity, days left and the token itself",
    responses={200: LicenceView},
    tags=BOX,
)
def get_licence() -> Response:
    return json_response(licence.current(store(), settings()).to_json())


@bp.post("/scans")
@operation(
    "Decode a photo (barcodes, GS1 data, label fields) or a scanned code string;"
    " records nothing. Photos: raw body image/jpeg|png|webp or multipart field"
    ' `image`, `?ocr=1` to read label text too. Codes: JSON {"code": "..."}.',
    body=(*IMAGES, Media("application/json", schema=CodeToIdentify.model_json_schema())),
    query=ScanOptions,
    responses={
        200: PhotoScan | CodeScan,
        400: "empty upload",
        403: "?ocr=1 without the ocr_scanning add-on (feature_not_in_licence, also during"
        " the unlicensed trial) or with a lapsed licence (licence_expired, licence_invalid,"
        " licence_required)",
        413: "image too large or too many pixels",
        415: "not a JPEG, PNG or WebP image",
        422: "corrupt image or missing code",
        502: "the shared OCR service failed",
        503: "OCR engine unavailable",
    },
    tags=SCANS,
)
def create_scan(query: ScanOptions) -> Response:
    if request.mimetype in ("application/json", "application/x-www-form-urlencoded"):
        data = json_body(MAX_CODE_BYTES)
        if not isinstance(data, dict):
            raise ApiError(422, "missing_code", 'send {"code": "..."} with the scanned text')
        identified = identify(apispec.validate(CodeToIdentify, data).code)
        return json_response(
            {
                "code": identified.to_json(),
                "barcodes": [],
                "fields": identified.fields,
                "conflicts": [],
            }
        )
    if query.ocr:
        licence.check_ocr(licence.current(store(), settings()))
    return json_response(
        scanning.scan(uploaded_image(MAX_IMAGE_BYTES), ocr=query.ocr, mode=query.mode)
    )


@bp.get("/openapi.json")
@operation(
    "This document (OpenAPI 3.1)",
    # Free-form on purpose: the document's own shape is OpenAPI's, not ours to declare.
    responses={200: dict[str, Any]},
    public=True,
    tags=BOX,
)
def openapi() -> Response:
    return json_response(spec())
