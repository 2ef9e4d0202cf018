"""Scanning over HTTP (edge /api/v1/scans, the shared OCR service) and from the CLI."""

from __future__ import annotations

import io
import json
import random

import pytest
from click.testing import CliRunner
from PIL import Image

from cangyun.cli import main
from ocr_service.app import create_app as create_ocr
from ocr_service.engine import ScanEngine
from tests.integration.test_scan_engine import BAD_UPLOADS, jpeg
from tests.support import licences
from tests.support.labels import random_spec, render, require_fonts


@pytest.fixture(scope="module")
def shared_engine() -> ScanEngine:
    return ScanEngine(budget_ms=60_000.0)  # no time budget: tests must not depend on load


@pytest.fixture(scope="module")
def label_jpeg() -> tuple[bytes, object]:
    require_fonts()
    image, truth = render(random_spec(random.Random(3), lang="zh", barcode_kinds=("code128",)))
    return jpeg(image), truth


@pytest.fixture
def edge_settings(edge_settings):
    """The box licensed with the OCR add-on: an unlicensed one is on trial, without OCR."""
    box = licences.trusting(edge_settings)
    licences.install(box)
    return box


@pytest.fixture
def edge_app(make_edge_app, shared_engine):
    """The shared edge box, scanning with the module's engine (its models load once)."""
    app = make_edge_app()
    app.extensions["cangyun.scan_engine"] = shared_engine
    return app


def test_edge_scans_a_photo_without_recording_anything(edge_client, label_jpeg):
    data, truth = label_jpeg
    response = edge_client.post("/api/v1/scans", data=data, content_type="image/jpeg")
    assert response.status_code == 200
    body = response.get_json()
    assert {b["content"] for b in body["barcodes"]} == {b.content for b in truth.barcodes}
    assert body["fields"]["gtin"] == truth.fields["gtin"]
    assert "ocr" not in body["timings_ms"]  # camera frames: barcodes only by default
    with_ocr = edge_client.post(
        "/api/v1/scans?ocr=1",
        data={"image": (io.BytesIO(data), "l.jpg")},
        content_type="multipart/form-data",
    ).get_json()
    assert with_ocr["fields"]["product_name"]
    assert edge_client.get("/api/v1/movements").get_json()["total"] == 0


def test_edge_identifies_a_wedge_scan(edge_client):
    body = edge_client.post(
        "/api/v1/scans", json={"code": "]C1010690123456789210L1\x1d17270131"}
    ).get_json()
    assert body["code"]["kind"] == "gs1"
    assert body["fields"] == {"gtin": "06901234567892", "lot": "L1", "expiry_date": "2027-01-31"}
    assert edge_client.post("/api/v1/scans", json={"code": ""}).status_code == 422


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_uploads_are_4xx_on_the_edge_and_the_ocr_service(edge_client, shared_engine, name):
    make, status, code = BAD_UPLOADS[name]
    data = make()
    response = edge_client.post("/api/v1/scans", data=data, content_type="application/octet-stream")
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    with create_ocr(shared_engine).test_client() as ocr:
        response = ocr.post("/v1/scan", data=data, content_type="application/octet-stream")
        assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_a_30_mb_photo_is_refused_before_decoding(edge_client):
    response = edge_client.post(
        "/api/v1/scans", data=b"\xff\xd8" + b"\x00" * (33 * 1024 * 1024), content_type="image/jpeg"
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] in ("image_too_large", "payload_too_large")


def test_ocr_service_scans(shared_engine, label_jpeg):
    data, truth = label_jpeg
    with create_ocr(shared_engine).test_client() as ocr:
        body = ocr.post("/v1/scan?ocr=0", data=data, content_type="image/jpeg").get_json()
    assert body["fields"]["lot"] == truth.fields["lot"]


def test_cli_prints_one_json_object_per_image(tmp_path, label_jpeg):
    data, truth = label_jpeg
    good = tmp_path / "label.jpg"
    good.write_bytes(data)
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    result = CliRunner().invoke(main, ["scan", "--no-ocr", "--json", str(good), str(bad)])
    assert result.exit_code == 1  # one file was not an image
    first, second = (json.loads(line) for line in result.output.strip().splitlines())
    assert first["file"] == str(good)
    assert {"barcodes", "fields", "conflicts", "timings_ms"} <= set(first)
    gtins = {b["gs1"].get("01") or b["gs1"].get("02") for b in first["barcodes"]}
    assert truth.fields["gtin"] in gtins
    for barcode in first["barcodes"]:
        assert barcode["format"] == "code128" and barcode["symbology"] == "]C1"
        assert barcode["text"].startswith("(") and not barcode["content"].startswith("]")
    assert first["fields"]["gtin"] == truth.fields["gtin"]
    assert second["error"]["code"] == "not_an_image"


def test_cli_scan_of_a_blank_image_finds_nothing_and_succeeds(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (300, 200), 255).save(path)
    result = CliRunner().invoke(main, ["scan", "--no-ocr", "--json", str(path)])
    assert result.exit_code == 0
    assert json.loads(result.output)["barcodes"] == []
