"""Stills: a photo someone waits on comes back complete, each physical symbol once.

Every image is made here (tests/support/code_sheets.py, zxing-cpp's writer): 12 MP sheets
of small DataMatrix and QR codes, turned and in perspective; the same content at two places;
1D symbols whose check digit fails. The budget is lifted: tests must not depend on load
(bench/scan.py measures the still budget's trade-off)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from ocr_service import barcodes
from ocr_service.app import create_app
from ocr_service.engine import ScanEngine
from ocr_service.images import load_image
from tests.support.code_sheets import score, sheet

NO_BUDGET_MS = 60_000.0


def _still(data: bytes) -> barcodes.DecodeReport:
    return barcodes.decode(load_image(data).gray, mode="still", budget_ms=NO_BUDGET_MS)


@pytest.mark.parametrize(
    ("seed", "formats", "angle"),
    [(1, ("datamatrix",), 20.0), (2, ("datamatrix", "qrcode"), 35.0), (5, ("qrcode",), 30.0)],
)
def test_a_12_mp_sheet_of_small_codes_in_perspective_comes_back_complete(seed, formats, angle):
    photo = sheet(seed, formats=formats, angle=angle)
    assert (photo.width, photo.height) == (4032, 3024)
    report = _still(photo.jpeg)
    found, stray = score(photo.codes, report.symbols)
    assert (found, stray) == (len(photo.codes), 0)


def test_the_same_content_at_two_places_is_two_symbols():
    photo = sheet(1, duplicates=3)
    twice = {c.content for c in photo.codes if sum(o.content == c.content for o in photo.codes) > 1}
    assert len(twice) >= 2
    report = _still(photo.jpeg)
    for content in twice:
        printed = sum(c.content == content for c in photo.codes)
        assert sum(s.content == content for s in report.symbols) == printed


def _linear(content: str, fmt: zxingcpp.BarcodeFormat, scale: int = 3) -> np.ndarray:
    art = np.asarray(zxingcpp.create_barcode(content, fmt).to_image(scale=scale))
    return np.repeat(art[:1], 120, axis=0) if art.shape[0] < 40 else art


def _page(*arts: np.ndarray) -> bytes:
    width = max(a.shape[1] for a in arts) + 200
    rows = [
        np.pad(a, ((60, 60), (100, width - 100 - a.shape[1])), constant_values=255) for a in arts
    ]
    buffer = io.BytesIO()
    Image.fromarray(np.vstack(rows)).convert("RGB").save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_an_sscc_printed_twice_is_two_symbols_and_one_field():
    sscc = "00" + "106141411234567897"  # (00) SSCC with its check digit
    art = _linear(sscc, zxingcpp.BarcodeFormat.Code128)
    data = _page(art, art)
    engine = ScanEngine(still_budget_ms=NO_BUDGET_MS)
    result = engine.scan(data, ocr=False, mode="still")
    reads = [s for s in result.barcodes if s.content == sscc]
    assert len(reads) == 2
    ys = sorted(np.mean([p[1] for p in s.position]) for s in reads)
    assert ys[1] - ys[0] > 100  # two places, not one symbol read twice
    frame = engine.scan(data, ocr=False, mode="frame")
    assert all(s.content == sscc for s in frame.barcodes)


def test_a_1d_read_whose_check_digit_fails_is_never_reported_in_a_still():
    # ITF-14 carrying a wrong mod-10 digit, and Code 128 holding a GTIN with one; zxing's
    # writer checks neither, a reader must.
    bad_itf = _linear("10614141000416", zxingcpp.BarcodeFormat.ITF)
    good_itf = _linear("10614141000415", zxingcpp.BarcodeFormat.ITF)
    report = _still(_page(bad_itf, good_itf))
    assert [s.content for s in report.symbols] == ["10614141000415"]
    assert report.rejected >= 1


def test_a_blank_still_finds_nothing_and_stops_early():
    rng = np.random.default_rng(3)
    paper = np.clip(rng.normal(200, 4, (3024, 4032)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, "JPEG", quality=85)
    report = _still(buffer.getvalue())
    assert report.symbols == []
    assert "tiles" not in report.passes  # nothing read: no sign of small symbols to tile for


def test_modes_are_checked():
    with pytest.raises(ValueError, match="mode"):
        barcodes.decode(np.full((50, 50), 255, np.uint8), mode="video")


def test_the_ocr_service_reads_stills_by_default_and_frames_when_asked():
    photo = sheet(1)
    client = create_app(ScanEngine(still_budget_ms=NO_BUDGET_MS)).test_client()
    still = client.post(
        "/v1/scan?ocr=0", data=photo.jpeg, headers={"Content-Type": "image/jpeg"}
    ).get_json()
    assert len(still["barcodes"]) == len(photo.codes)
    frame = client.post(
        "/v1/scan?ocr=0&mode=frame", data=photo.jpeg, headers={"Content-Type": "image/jpeg"}
    )
    assert frame.status_code == 200
    wrong = client.post(
        "/v1/scan?ocr=0&mode=video", data=photo.jpeg, headers={"Content-Type": "image/jpeg"}
    )
    assert wrong.status_code == 400
    assert wrong.get_json()["error"]["code"] == "invalid_parameter"
