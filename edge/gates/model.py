"""Gate values and the validation of what operators and integrations send. Pure: no SQL, no Flask.

A gate is a dock door with a direction; its cameras deliver frames by push, from a drop
folder or as a stream. Expected goods are ASN lines (inbound) or shipment lines (outbound),
one per pallet, named by SSCC or by GTIN (and lot), entered on the edge or sent down by the
cloud. Their grammar is the kernel's (``cangyun.expected.parse_line``): the edge's gate API
and the cloud check a line with it, and ``cangyun.wire.decode_expected`` checks it again
when it arrives, so both sides agree. What an operator confirms for a held pallet is parsed
by the gate API's own model into an ``Acceptance``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cangyun.errors import Invalid
from cangyun.expected import GATE_CODE, RESERVED_GATE_CODES

DIRECTIONS = ("in", "out", "both")
SOURCE_KINDS = ("push", "stream", "folder")
AFTER_TAKING = ("archive", "delete")
CODE_PATTERN = GATE_CODE  # one gate-code grammar, the kernel's
RESERVED_CODES = RESERVED_GATE_CODES  # path segments of /api/v1/gates/...
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
TOKEN_PREFIX = "cyc_"  # camera tokens; device tokens are cy_
DEFAULT_WINDOW_S = 60.0
MAX_WINDOW_S = 24 * 3600.0
MAX_FPS = 30.0
DEFAULT_FPS = 2.0
DEFAULT_POLL_S = 1.0


class GateInputError(Invalid):
    """Input that cannot be used (422); ``code`` is stable, ``field`` names the culprit."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, code=code, field=field)


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
