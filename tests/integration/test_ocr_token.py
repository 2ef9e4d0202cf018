"""`cangyun ocr serve` answers only callers with its token, and the edge box sends it.

A real OCR service (cheroot on a free port, the real engine, barcode-only scans so no OCR
model has to load) and a real edge app configured with its URL and token.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest
from click.testing import CliRunner
from PIL import Image

from cangyun.cli import main
from ocr_service.app import create_app as create_ocr
from ocr_service.engine import ScanEngine
from tests.support.serving import serving

TOKEN = "ocr-test-token-5f1c2a"


def blank_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), "white").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def ocr_url() -> Iterator[str]:
    with serving(create_ocr(ScanEngine(), token=TOKEN)) as url:
        yield url


def post_scan(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/v1/scan?ocr=0",
        data=blank_jpeg(),
        method="POST",
        headers={"Content-Type": "image/jpeg", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_service_needs_its_token(ocr_url):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, body = post_scan(ocr_url, headers)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), headers
    status, body = post_scan(ocr_url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    assert body["barcodes"] == []
    with urllib.request.urlopen(f"{ocr_url}/healthz", timeout=10) as health:
        assert health.status == 200  # monitoring needs no token, and learns nothing


def test_the_edge_sends_its_token(make_edge_app, edge_settings, ocr_url):
    def box_client(token: str):
        box = replace(edge_settings, scan=replace(edge_settings.scan, ocr_url=ocr_url))
        box = replace(box, scan=replace(box.scan, ocr_token=token))
        client = make_edge_app(box).test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {box.edge.api_token}"
        return client

    scanned = box_client(TOKEN).post("/api/v1/scans", data=blank_jpeg(), content_type="image/jpeg")
    assert scanned.status_code == 200, scanned.get_json()
    assert scanned.get_json()["barcodes"] == []
    # A box with the wrong token hears that the service refused it, not that its photo is bad.
    refused = box_client("not-it").post(
        "/api/v1/scans", data=blank_jpeg(), content_type="image/jpeg"
    )
    assert refused.status_code == 502
    assert refused.get_json()["error"]["code"] == "ocr_service_unavailable"
    assert "scan.ocr_token" in refused.get_json()["error"]["message"]


def test_serving_beyond_loopback_without_a_token_is_refused(monkeypatch):
    monkeypatch.delenv("CANGYUN_OCR_TOKEN", raising=False)
    refused = CliRunner().invoke(main, ["ocr", "serve", "--host", "0.0.0.0", "--port", "1"])
    assert refused.exit_code == 2
    assert "CANGYUN_OCR_TOKEN" in refused.output
