"""The edge's scanning: the in-process engine by default, or a shared OCR service."""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app

from cangyun.box_settings import EdgeSettings
from cangyun.httpapi import ApiError
from ocr_service.client import RemoteScanError, scan_remote
from ocr_service.engine import ScanEngine
from ocr_service.images import ImageError
from ocr_service.ocr import OcrUnavailable

_lock = threading.Lock()


def engine() -> ScanEngine:
    app = current_app
    found = app.extensions.get("cangyun.scan_engine")
    if found is None:
        with _lock:
            found = app.extensions.get("cangyun.scan_engine")
            if found is None:
                scan = settings().scan
                found = ScanEngine(
                    ocr_engine=scan.ocr_engine,
                    ocr_options={"threads": scan.ocr_threads},
                    budget_ms=scan.budget_ms,
                    still_budget_ms=scan.still_budget_ms,
                )
                app.extensions["cangyun.scan_engine"] = found
    return found


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


def scan(data: bytes, *, ocr: bool, mode: str = "frame") -> dict[str, Any]:
    """Scan an uploaded image (``mode`` "frame" or "still", see ocr_service.barcodes.decode);
    every failure becomes an ApiError with a clear message."""
    try:
        remote = settings().scan
        if remote.ocr_url:
            return scan_remote(remote.ocr_url, data, ocr=ocr, token=remote.ocr_token, mode=mode)
        return engine().scan(data, ocr=ocr, mode=mode).to_json()
    except ImageError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except OcrUnavailable as exc:
        raise ApiError(503, "ocr_unavailable", str(exc)) from exc
    except RemoteScanError as exc:
        raise ApiError(502, "ocr_service_unavailable", str(exc)) from exc
