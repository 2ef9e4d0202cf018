"""The scanning engine as its own HTTP service, for several edge boxes to share.

``POST /v1/scan`` takes the image as the raw body (``Content-Type: image/jpeg`` etc.) or as
a multipart field ``image``; ``?ocr=0`` skips OCR; ``?mode=frame`` marks one frame of a live
camera (a quick search: the next frame is the retry) instead of a still (the default: every
symbol in the photo, within the still budget). It answers the engine's JSON, or the
common error body with a 4xx for an unusable image.

With a token (``cangyun ocr serve`` requires one unless it listens on loopback only), every
request but ``/healthz`` must send ``Authorization: Bearer <token>``; otherwise 401.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from cangyun.errors import Unauthenticated
from cangyun.httpapi import (
    ApiError,
    bearer_token,
    json_response,
    register_error_handlers,
    uploaded_image,
)
from ocr_service.barcodes import MODES
from ocr_service.engine import ScanEngine
from ocr_service.images import MAX_IMAGE_BYTES, ImageError
from ocr_service.ocr import OcrUnavailable

bp = Blueprint("ocr", __name__)


def engine() -> ScanEngine:
    return current_app.extensions["cangyun.scan_engine"]


def image_from_request() -> bytes:
    return uploaded_image(MAX_IMAGE_BYTES)


def scan_response(data: bytes, *, ocr: bool, mode: str = "still") -> dict[str, Any]:
    try:
        return engine().scan(data, ocr=ocr, mode=mode).to_json()
    except ImageError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except OcrUnavailable as exc:
        raise ApiError(503, "ocr_unavailable", str(exc)) from exc


@bp.post("/v1/scan")
def scan() -> Response:
    ocr = request.args.get("ocr", "1") not in ("0", "false", "no")
    mode = request.args.get("mode", "still")
    if mode not in MODES:
        raise ApiError(
            400, "invalid_parameter", f"mode must be one of {', '.join(MODES)}, not {mode!r}"
        )
    return json_response(scan_response(image_from_request(), ocr=ocr, mode=mode))


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"ok": True})


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so the answer's timing tells nothing about the token."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def create_app(scan_engine: ScanEngine | None = None, *, token: str = "") -> Flask:
    """The service; ``token`` empty means no check (only for a loopback-bound service)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_IMAGE_BYTES + 65536
    app.extensions["cangyun.scan_engine"] = scan_engine or ScanEngine()
    register_error_handlers(app)
    app.register_blueprint(bp)

    if token:

        @app.before_request
        def _authenticate() -> None:
            # Before the body is read: an unauthenticated upload is not even decoded.
            if request.endpoint == "ocr.healthz":
                return
            if not token_matches(token, bearer_token()):
                raise Unauthenticated("missing or wrong OCR service token (Bearer)")

    return app
