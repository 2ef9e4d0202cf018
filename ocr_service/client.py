"""Use a shared ``cangyun ocr serve`` instead of the in-process engine (several edges, one
bigger machine). Same answers, same errors, over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ocr_service.images import ImageError

TIMEOUT_S = 30


class RemoteScanError(RuntimeError):
    """The OCR service could not be reached or failed."""


def scan_remote(
    base_url: str, data: bytes, *, ocr: bool, token: str = "", mode: str = "still"
) -> dict[str, Any]:
    url = f"{base_url.rstrip('/')}/v1/scan?ocr={'1' if ocr else '0'}&mode={mode}"
    headers = {"Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            # Not the image's fault: this box's scan.ocr_token is missing or wrong.
            raise RemoteScanError(
                f"OCR service {base_url} refused this box's token (scan.ocr_token)"
            ) from exc
        try:
            error = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError):
            raise RemoteScanError(f"OCR service answered {exc.code}") from exc
        if 400 <= exc.code < 500:
            raise ImageError(error["code"], error["message"], exc.code) from exc
        raise RemoteScanError(f"OCR service failed: {error.get('message')}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RemoteScanError(f"OCR service {base_url} unreachable: {exc}") from exc
