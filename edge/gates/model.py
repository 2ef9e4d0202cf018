"""Gate values and the validation of what operators and integrations send. Pure: no SQL, no Flask.

A gate is a dock door with a direction; its cameras deliver frames by push, from a drop
folder or as a stream. Expected goods are ASN lines (inbound) or shipment lines (outbound),
one per pallet, named by SSCC or by GTIN (and lot), entered on the edge or sent down by the
cloud. The cloud checks its lines with these same rules (``parse_ordered_line``), and the
edge checks them again when they arrive (``parse_cloud_line``), so both sides agree.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cangyun.identifiers import IdentifierError, normalize_gtin, validate_sscc
from cangyun.movement import MAX_LOT, MAX_QTY, MAX_TEXT, MAX_WEIGHT_KG

DIRECTIONS = ("in", "out", "both")
SOURCE_KINDS = ("push", "stream", "folder")
AFTER_TAKING = ("archive", "delete")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
RESERVED_CODES = frozenset({"alerts", "status"})  # path segments of /api/v1/gates/...
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
TOKEN_PREFIX = "cyc_"  # camera tokens; device tokens are cy_
DEFAULT_WINDOW_S = 60.0
MAX_WINDOW_S = 24 * 3600.0
MAX_FPS = 30.0
DEFAULT_FPS = 2.0
DEFAULT_POLL_S = 1.0
EXPECTED_FIELDS = frozenset(
    {"direction", "sscc", "gtin", "lot", "qty", "weight_kg", "customer", "reference"}
)
# Cloud lines: open until received or shipped (the cloud ledger says so) or cancelled.
CLOUD_STATUSES = ("open", "cancelled", "received", "shipped")
MAX_CLOUD_ID = 2**62
CLOUD_LINE_FIELDS = EXPECTED_FIELDS | {"gate", "id", "version", "status"}
MAX_COMMAND_LINES = 5000  # the cloud sends 500 a command; more is not from the cloud


class GateInputError(ValueError):
    """Input that cannot be used; ``code`` is stable, ``field`` names the culprit."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class GateConfig:
    code: str
    direction: str
    window_s: float = DEFAULT_WINDOW_S  # repeated sightings within this make one event
    ocr_containers: bool = False  # read container numbers by OCR too (slow: ~0.7 s a frame)
    ocr_plates: bool = False  # read truck plates by OCR too (the same OCR pass)


@dataclass(frozen=True)
class CameraConfig:
    gate: str
    code: str
    kind: str  # push | stream | folder
    url: str | None = None  # stream
    fps: float = DEFAULT_FPS  # stream: frames sampled per second
    folder: str | None = None  # folder: where the camera's FTP uploads land
    after: str = "archive"  # folder: archive or delete a file once taken
    poll_s: float = DEFAULT_POLL_S  # folder: a file is taken when unchanged over one poll


@dataclass(frozen=True)
class ExpectedLine:
    """One expected pallet: an ASN line (``in``) or a shipment line (``out``)."""

    direction: str
    qty: int
    sscc: str | None = None
    gtin: str | None = None
    lot: str | None = None
    weight_g: int | None = None
    customer: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Acceptance:
    """What an operator confirms for a held pallet; missing values come from the event."""

    qty: int | None = None
    direction: str | None = None
    gtin: str | None = None
    lot: str | None = None
    weight_g: int | None = None
    customer: str | None = None
    note: str | None = None


def new_camera_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # 256 random bits need no slow KDF: SHA-256 of the token is enough to store it safely.
    return hashlib.sha256(token.encode()).hexdigest()


def check_code(value: Any, field: str) -> str:
    if not isinstance(value, str) or not CODE_PATTERN.fullmatch(value):
        raise GateInputError(
            "invalid_code",
            f"{field} must be 1-32 letters, digits, '.', '_' or '-', got {value!r}",
            field,
        )
    if value.lower() in RESERVED_CODES:
        raise GateInputError("invalid_code", f"{value!r} is reserved; choose another", field)
    return value


def check_direction(value: Any, *, allowed: tuple[str, ...] = DIRECTIONS) -> str:
    if value not in allowed:
        raise GateInputError(
            "invalid_direction", f"direction must be one of {', '.join(allowed)}", "direction"
        )
    return value


def parse_gate(data: Any) -> GateConfig:
    data = _object(data, {"code", "direction", "window_s", "ocr_containers", "ocr_plates"})
    window = _number(data.get("window_s", DEFAULT_WINDOW_S), "window_s", 1.0, MAX_WINDOW_S)
    flags = {}
    for name in ("ocr_containers", "ocr_plates"):
        flags[name] = data.get(name, False)
        if not isinstance(flags[name], bool):
            raise GateInputError("invalid_field", f"{name} must be true or false", name)
    return GateConfig(
        code=check_code(data.get("code"), "code"),
        direction=check_direction(data.get("direction")),
        window_s=window,
        **flags,
    )


def stream_camera(gate: str, code: str, url: str, fps: float) -> CameraConfig:
    if not isinstance(url, str) or not url.lower().startswith(STREAM_SCHEMES):
        raise GateInputError(
            "invalid_url", "a stream URL starts with rtsp://, rtsps://, http:// or https://", "url"
        )
    return CameraConfig(
        gate, check_code(code, "camera"), "stream", url=url, fps=_number(fps, "fps", 0.1, MAX_FPS)
    )


def folder_camera(
    gate: str, code: str, folder: str, after: str = "archive", poll_s: float = DEFAULT_POLL_S
) -> CameraConfig:
    if not isinstance(folder, str) or not folder.strip():
        raise GateInputError("invalid_folder", "give the drop folder's path", "folder")
    if after not in AFTER_TAKING:
        raise GateInputError("invalid_field", "after must be archive or delete", "after")
    return CameraConfig(
        gate,
        check_code(code, "camera"),
        "folder",
        folder=folder,
        after=after,
        poll_s=_number(poll_s, "poll_s", 0.05, 3600.0),
    )


def parse_expected(data: Any, gate_direction: str) -> ExpectedLine:
    """An expected line from the edge API; ``gate_direction`` "both" makes direction required."""
    data = _object(data, EXPECTED_FIELDS)
    direction = data.get("direction")
    if direction is None:
        if gate_direction == "both":
            raise GateInputError(
                "missing_field", "a gate for both directions needs direction in or out", "direction"
            )
        direction = gate_direction
    direction = check_direction(direction, allowed=("in", "out"))
    if gate_direction != "both" and direction != gate_direction:
        raise GateInputError(
            "invalid_direction", f"this gate handles direction {gate_direction} only", "direction"
        )
    sscc = _optional_text(data, "sscc", MAX_TEXT)
    if sscc is not None:
        try:
            sscc = validate_sscc(sscc)
        except IdentifierError as exc:
            raise GateInputError("invalid_sscc", str(exc), "sscc") from exc
    gtin = _gtin(data.get("gtin"))
    if sscc is None and gtin is None:
        raise GateInputError("missing_item", "give the pallet as sscc or gtin", "sscc")
    qty = data.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
        raise GateInputError("invalid_quantity", f"qty must be whole pieces, 1..{MAX_QTY}", "qty")
    return ExpectedLine(
        direction=direction,
        qty=qty,
        sscc=sscc,
        gtin=gtin,
        lot=_optional_text(data, "lot", MAX_LOT),
        weight_g=_weight_g(data.get("weight_kg")),
        customer=_optional_text(data, "customer", MAX_TEXT),
        reference=_optional_text(data, "reference", MAX_TEXT),
    )


@dataclass(frozen=True)
class CloudLine:
    """An expected line as the cloud sends it down: its id there, the warehouse's change
    stamp when it last changed, its status, and the gate it is meant for (None: any gate)."""

    id: int
    version: int
    status: str
    gate: str | None
    line: ExpectedLine


def parse_ordered_line(data: Any) -> tuple[ExpectedLine, str | None]:
    """A line ordered through the cloud API: direction required (the cloud does not know the
    gates' directions), and optionally the gate it is for."""
    data = _object(data, EXPECTED_FIELDS | {"gate"})
    gate = data.get("gate")
    if gate is not None:
        gate = check_code(gate, "gate")
    return parse_expected({k: v for k, v in data.items() if k != "gate"}, "both"), gate


@dataclass(frozen=True)
class ExpectedUpdate:
    """One ``expected`` command: lines that changed (``span`` None), or the part of the full
    set of open lines whose cloud ids lie in ``span`` = (after_id, through_id or None)."""

    version: int
    span: tuple[int, int | None] | None
    lines: tuple[CloudLine, ...]


def parse_expected_command(data: Any, *, warehouse: str) -> ExpectedUpdate:
    """The ``data`` of a down/cmd ``expected`` for this box's ``warehouse``; every line is
    checked and one bad line refuses the whole command (nothing half-applied)."""
    if not isinstance(data, Mapping):
        raise GateInputError("invalid_body", "expected goods must be an object")
    if data.get("warehouse") != warehouse:
        raise GateInputError(
            "wrong_warehouse", f"lines for warehouse {data.get('warehouse')!r}", "warehouse"
        )
    version = _cloud_number(data.get("version"), "version")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or len(raw_lines) > MAX_COMMAND_LINES:
        raise GateInputError(
            "invalid_field", f"lines must be a list of at most {MAX_COMMAND_LINES}", "lines"
        )
    lines = []
    for index, raw in enumerate(raw_lines):
        try:
            lines.append(parse_cloud_line(raw))
        except GateInputError as exc:
            raise GateInputError(exc.code, f"line {index}: {exc.message}", exc.field) from exc
    if len({line.id for line in lines}) != len(lines):
        raise GateInputError("invalid_field", "a line id appears twice", "lines")
    span = None
    if data.get("full") is True:
        after = data.get("after_id")
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < MAX_CLOUD_ID:
            raise GateInputError("invalid_field", "after_id must be 0 or more", "after_id")
        through = data.get("through_id")
        if through is not None:
            through = _cloud_number(through, "through_id")
            if through <= after:
                raise GateInputError("invalid_field", "through_id must follow after_id", "span")
        span = (after, through)
        if any(
            line.status != "open" or line.id <= after or (through is not None and line.id > through)
            for line in lines
        ):
            raise GateInputError("invalid_field", "a full set holds open lines of its span")
    elif data.get("full") is not False:
        raise GateInputError("invalid_field", "full must be true or false", "full")
    return ExpectedUpdate(version, span, tuple(lines))


def _cloud_number(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_CLOUD_ID:
        raise GateInputError("invalid_field", f"{name} must be a positive integer", name)
    return value


def parse_cloud_line(data: Any) -> CloudLine:
    """A line from the cloud's ``expected`` command, checked again: the downlink is input too.
    Fields this version does not know are left aside, so the cloud may add some."""
    if isinstance(data, Mapping):
        data = {k: v for k, v in data.items() if k in CLOUD_LINE_FIELDS}
    data = _object(data, CLOUD_LINE_FIELDS)
    numbers = {name: _cloud_number(data.get(name), name) for name in ("id", "version")}
    status = data.get("status")
    if status not in CLOUD_STATUSES:
        raise GateInputError(
            "invalid_field", f"status must be one of {', '.join(CLOUD_STATUSES)}", "status"
        )
    line, gate = parse_ordered_line(
        {k: v for k, v in data.items() if k not in ("id", "version", "status")}
    )
    return CloudLine(numbers["id"], numbers["version"], status, gate, line)


def parse_acceptance(data: Any) -> Acceptance:
    data = _object(data, {"qty", "direction", "gtin", "lot", "weight_kg", "customer", "note"})
    qty = data.get("qty")
    if qty is not None and (isinstance(qty, bool) or not isinstance(qty, int) or qty < 1):
        raise GateInputError("invalid_quantity", "qty must be whole pieces, at least 1", "qty")
    direction = data.get("direction")
    if direction is not None:
        direction = check_direction(direction, allowed=("in", "out"))
    return Acceptance(
        qty=qty,
        direction=direction,
        gtin=_gtin(data.get("gtin")),
        lot=_optional_text(data, "lot", MAX_LOT),
        weight_g=_weight_g(data.get("weight_kg")),
        customer=_optional_text(data, "customer", MAX_TEXT),
        note=_optional_text(data, "note", 500),
    )


def _object(data: Any, allowed: Collection[str]) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise GateInputError("invalid_body", "send a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise GateInputError("unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
    return data


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GateInputError("invalid_field", f"{field} must be a number", field)
    if not low <= value <= high:
        raise GateInputError("invalid_field", f"{field} must be between {low} and {high}", field)
    return float(value)


def _optional_text(data: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise GateInputError(
            "invalid_field", f"{field} must be text of 1..{limit} characters", field
        )
    if not value.strip().isprintable():  # as movements: the line becomes one
        raise GateInputError("invalid_field", f"{field} contains control characters", field)
    return value.strip()


def _gtin(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return normalize_gtin(value)
    except IdentifierError as exc:
        raise GateInputError("invalid_gtin", str(exc), "gtin") from exc


def _weight_g(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GateInputError("invalid_weight", "weight_kg must be a number", "weight_kg")
    if not 0 <= value <= MAX_WEIGHT_KG:
        raise GateInputError(
            "invalid_weight", f"weight_kg must be between 0 and {MAX_WEIGHT_KG}", "weight_kg"
        )
    return round(value * 1000)
