"""Barcode decoding: a fast first pass, then escalating retries within a time budget.

zxing-cpp reads everything a warehouse meets; ZBar (pyzbar) is a second opinion for 1D codes
when libzbar is installed. The first pass looks only upright and non-inverted, which is what
almost every handheld shot needs. Only when it finds fewer symbols than the caller expects do
harder passes run, cheapest first, until the budget is spent:

1. rotation and inverted symbols;
2. contrast normalisation (CLAHE) with a global-histogram binariser, for dim or glared labels;
3. 2x upscaling, for small modules;
4. crops of the 1D symbols OpenCV's detector locates, straightened and upscaled (perspective
   and strong rotation);
5. overlapping tiles of large photos at full resolution;
6. ZBar on the original and normalised image.

Every symbol is returned once (merged across passes by format and content) with its corners
in the original image. A 1D read whose check digit fails is dropped, never returned: EAN/UPC
and ITF-14 by their mod-10 digit, GS1 data by the check digits of its keys (GTIN, SSCC...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import zxingcpp

from cangyun.identifiers import has_valid_check_digit
from ocr_service import gs1

log = logging.getLogger(__name__)

F = zxingcpp.BarcodeFormat
WAREHOUSE_FORMATS = (
    F.Code128, F.EAN13, F.EAN8, F.UPCA, F.UPCE, F.ITF, F.Code39, F.Code93, F.Codabar,
    F.DataBar, F.DataBarExp, F.DataBarLtd, F.QRCode, F.MicroQRCode, F.DataMatrix, F.PDF417,
    F.Aztec,
)  # fmt: skip
LINEAR_FORMATS = tuple(f for f in WAREHOUSE_FORMATS if f not in (
    F.QRCode, F.MicroQRCode, F.DataMatrix, F.PDF417, F.Aztec))  # fmt: skip
LINEAR = {"code128", "ean13", "ean8", "upca", "upce", "itf", "code39", "code93", "codabar",
          "databar", "databarexpanded", "databarlimited"}  # fmt: skip
FORMAT_NAMES = {"DataBarExp": "databarexpanded", "DataBarLtd": "databarlimited",
                "DataBarOmni": "databar", "ITF14": "itf"}  # fmt: skip
# ZBar is trusted only where a check digit can confirm it: it also returns partial reads.
ZBAR_FORMATS = {"EAN13": "ean13", "EAN8": "ean8", "UPCA": "upca", "I25": "itf"}
GS1_SYMBOLOGIES = {"]C1", "]e0", "]d2", "]Q3", "]J1"}

DEFAULT_BUDGET_MS = 30.0  # camera frames: the next frame is a better retry than a deep search
UPSCALE_MAX_SIDE = 1600  # upscaling larger images costs more than it finds
ZBAR_MAX_SIDE = 1600  # ZBar reads EAN/ITF modules fine at this size and is slow above it
TILE_MIN_SIDE = 2400  # below this, zxing's own downscaling loses nothing worth a tile pass
STRIP_MAX_PX = 1600  # a straightened strip through a detected 1D symbol is at most this long

try:  # libzbar is a system library; without it the second opinion is simply absent
    from pyzbar import pyzbar as _zbar

    _ZBAR_SYMBOLS = [_zbar.ZBarSymbol.EAN13, _zbar.ZBarSymbol.EAN8, _zbar.ZBarSymbol.UPCA,
                     _zbar.ZBarSymbol.I25]  # fmt: skip
    _zbar.decode(np.full((8, 8), 255, dtype=np.uint8), symbols=_ZBAR_SYMBOLS)
except Exception:  # noqa: BLE001 - ImportError, or OSError when libzbar0 is missing
    _zbar = None


@dataclass(frozen=True)
class Symbol:
    """One decoded barcode."""

    format: str  # lowercase: code128, ean13, qrcode, datamatrix, ...
    text: str  # as printed: GS1 in (AI) form, binary as <hex>
    content: str  # raw data; GS1 separators are U+001D
    symbology: str  # ISO/IEC 15424 identifier, e.g. ]C1
    position: tuple[tuple[int, int], ...]  # corners in the original image
    decoder: str  # "zxing" or "zbar"
    gs1: dict[str, str] | None = None
    binary: bool = False
    gs1_error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.format, self.content)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": self.format,
            "text": self.text,
            "content": self.content,
            "symbology": self.symbology,
            "position": [list(p) for p in self.position],
            "decoder": self.decoder,
        }
        if self.gs1 is not None:
            data["gs1"] = self.gs1
        if self.gs1_error:
            data["gs1_error"] = self.gs1_error
        if self.binary:
            data["binary"] = True
        return data


@dataclass
class DecodeReport:
    symbols: list[Symbol]
    passes: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    rejected: int = 0  # reads dropped by a failing check digit


# A pass decodes some view of the image and returns (symbol, 2x3 affine back to original).
Transform = np.ndarray


def decode(
    gray: np.ndarray,
    *,
    expected: int = 1,
    budget_ms: float = DEFAULT_BUDGET_MS,
    escalate: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> DecodeReport:
    """Decode every barcode in an 8-bit grayscale image."""
    started = clock()
    found: dict[tuple[str, str], Symbol] = {}
    report = DecodeReport(symbols=[])

    def run(name: str, reads: Iterable[Symbol | None]) -> None:
        report.passes.append(name)
        for symbol in reads:
            if symbol is None:
                report.rejected += 1
            elif symbol.key not in found:
                found[symbol.key] = symbol

    run("fast", _zxing(gray, rotate=False, invert=False))
    if escalate:
        for name, attempt in _escalations(gray):
            if len(found) >= expected:
                break
            if (clock() - started) * 1000 >= budget_ms:
                report.passes.append(f"budget:{name}")
                break
            run(name, attempt())
    report.symbols = list(found.values())
    report.elapsed_ms = round((clock() - started) * 1000, 2)
    return report


def _escalations(gray: np.ndarray) -> list[tuple[str, Callable[[], Iterable[Symbol | None]]]]:
    # Ordered by what each step finds per millisecond on handheld label photos
    # (bench/scan.py): straightened 1D strips first, blind retries last.
    height, width = gray.shape[:2]
    steps: list[tuple[str, Callable[[], Iterable[Symbol | None]]]] = [
        ("detected_crops", lambda: _detected_crops(gray)),
        ("rotate", lambda: _zxing(gray, rotate=True, invert=False)),
    ]
    if _zbar is not None:
        steps.append(("zbar", lambda: _zbar_reads(gray)))
    if max(height, width) <= UPSCALE_MAX_SIDE:
        steps.append(("upscale", lambda: _scaled(gray, 2.0)))
    steps.append(
        ("contrast", lambda: _zxing(_clahe(gray), rotate=True, invert=True, global_hist=True))
    )
    if max(height, width) >= TILE_MIN_SIDE:
        steps.append(("tiles", lambda: _tiles(gray)))
    return steps


# --- zxing passes --------------------------------------------------------------------


def _zxing(
    image: np.ndarray,
    *,
    rotate: bool,
    invert: bool,
    global_hist: bool = False,
    transform: Transform | None = None,
    downscale: bool = True,
) -> list[Symbol | None]:
    image = np.ascontiguousarray(image)
    results = zxingcpp.read_barcodes(
        image,
        formats=WAREHOUSE_FORMATS,
        try_rotate=rotate,
        try_invert=invert,
        try_downscale=downscale,
        text_mode=zxingcpp.TextMode.Plain,
        binarizer=zxingcpp.Binarizer.GlobalHistogram
        if global_hist
        else zxingcpp.Binarizer.LocalAverage,
    )
    return [_from_zxing(r, transform) for r in results]


def _from_zxing(result: Any, transform: Transform | None) -> Symbol | None:
    name = result.format.name
    fmt = FORMAT_NAMES.get(name, name.lower())
    corners = [
        (p.x, p.y)
        for p in (
            result.position.top_left,
            result.position.top_right,
            result.position.bottom_right,
            result.position.bottom_left,
        )
    ]
    binary = str(result.content_type) == "ContentType.Binary"
    raw = bytes(result.bytes)
    if binary:
        content = raw.hex()
        text = f"<{len(raw)} bytes>"
    else:
        content = result.text
        text = content
    return _checked(
        fmt, text, content, result.symbology_identifier, corners, transform, "zxing", binary
    )


def _checked(
    fmt: str,
    text: str,
    content: str,
    symbology: str,
    corners: list[tuple[float, float]],
    transform: Transform | None,
    decoder: str,
    binary: bool = False,
) -> Symbol | None:
    """Build a Symbol, or None when a check digit proves the read wrong."""
    if fmt in ("ean13", "ean8", "upca") and not has_valid_check_digit(content):
        return None
    if fmt == "itf" and len(content) == 14 and not has_valid_check_digit(content):
        return None
    gs1_data: dict[str, str] | None = None
    gs1_error: str | None = None
    if symbology in GS1_SYMBOLOGIES and not binary:
        try:
            message = gs1.parse(symbology + content)
            gs1_data = message.as_dict()
            text = message.hri()
        except gs1.GS1Error as exc:
            # A 1D symbol's own checksum is weak against multiple errors; GS1 data that fails
            # its check digits, dates or lengths means a misread far more often than a
            # misprint. 2D symbols carry Reed-Solomon, so there the label itself is wrong.
            if fmt in LINEAR:
                return None
            gs1_error = f"{exc.code}: {exc.message}"
    position = tuple(_map_point(x, y, transform) for x, y in corners)
    return Symbol(fmt, text, content, symbology, position, decoder, gs1_data, binary, gs1_error)


def _map_point(x: float, y: float, transform: Transform | None) -> tuple[int, int]:
    if transform is None:
        return (int(round(x)), int(round(y)))
    mapped = transform @ np.array([x, y, 1.0])
    return (int(round(mapped[0])), int(round(mapped[1])))


# --- image views ---------------------------------------------------------------------


def _clahe(gray: np.ndarray) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)


def _scaled(gray: np.ndarray, factor: float) -> list[Symbol | None]:
    big = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    back = np.array([[1 / factor, 0, 0], [0, 1 / factor, 0]])
    return _zxing(big, rotate=True, invert=False, transform=back, downscale=False)


def _tiles(gray: np.ndarray) -> list[Symbol | None]:
    """2x2 overlapping tiles at full resolution: small codes in a big photo survive."""
    height, width = gray.shape[:2]
    reads: list[Symbol | None] = []
    tile_h, tile_w = int(height * 0.6), int(width * 0.6)
    for top in (0, height - tile_h):
        for left in (0, width - tile_w):
            tile = gray[top : top + tile_h, left : left + tile_w]
            back = np.array([[1.0, 0, left], [0, 1.0, top]])
            reads += _zxing(tile, rotate=True, invert=False, transform=back, downscale=False)
    return reads


_detector: Any = None


def _detected_crops(gray: np.ndarray) -> list[Symbol | None]:
    """Straighten the strip through each 1D symbol OpenCV finds and decode it, upscaled."""
    global _detector
    if _detector is None:
        _detector = cv2.barcode.BarcodeDetector()
    try:
        ok, corners = _detector.detect(gray)
    except cv2.error:
        return []
    if not ok or corners is None:
        return []
    reads: list[Symbol | None] = []
    strips: list[tuple[np.ndarray, np.ndarray, float]] = []
    for quad in np.asarray(corners, dtype=np.float32).reshape(-1, 4, 2)[:8]:
        strip = _strip(quad, gray.shape[1], gray.shape[0])
        if strip is None or any(_same_strip(strip, seen) for seen in strips):
            continue  # the detector often cuts one long symbol into several boxes
        strips.append(strip)
        reads += _decode_strip(gray, *strip)
    return reads


def _strip(
    quad: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(centre, unit vector along the bars' row, half-height) of a detected box."""
    edge_a = np.linalg.norm(quad[1] - quad[0])
    edge_b = np.linalg.norm(quad[2] - quad[1])
    if edge_b > edge_a:
        quad = np.roll(quad, -1, axis=0)
        edge_a, edge_b = edge_b, edge_a
    if edge_a < 20 or edge_b < 5:
        return None
    along = (quad[1] - quad[0]) / edge_a
    return quad.mean(axis=0), along, float(edge_b) * 0.8


def _same_strip(
    a: tuple[np.ndarray, np.ndarray, float], b: tuple[np.ndarray, np.ndarray, float]
) -> bool:
    centre_a, along_a, half_a = a
    centre_b, along_b, half_b = b
    if abs(float(along_a @ along_b)) < 0.97:  # more than ~14 degrees apart
        return False
    offset = centre_a - centre_b
    distance = abs(float(offset[0] * along_b[1] - offset[1] * along_b[0]))
    return distance < max(half_a, half_b)


def _decode_strip(
    gray: np.ndarray, centre: np.ndarray, along: np.ndarray, half: float
) -> list[Symbol | None]:
    """Cut the whole row of the image through ``centre`` along ``along``, level it, decode."""
    height, width = gray.shape[:2]
    # Where the centre line leaves the image on both sides.
    limits = []
    for axis, size in ((0, width), (1, height)):
        if abs(along[axis]) > 1e-6:
            limits += sorted(
                ((0 - centre[axis]) / along[axis], (size - centre[axis]) / along[axis])
            )
    t_min = max(limits[0::2]) if limits else -width
    t_max = min(limits[1::2]) if limits else width
    across = np.array([-along[1], along[0]], dtype=np.float32)
    half = max(half, 12.0)
    length = t_max - t_min
    scale = min(3.0, max(1.0, STRIP_MAX_PX / max(length, 1.0), 60.0 / (2 * half)))
    out_w, out_h = int(length * scale), int(2 * half * scale)
    if out_w < 40 or out_h < 10:
        return []
    start, end = centre + along * t_min, centre + along * t_max
    source = np.array([start - across * half, end - across * half, end + across * half,
                       start + across * half], dtype=np.float32)  # fmt: skip
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    crop = cv2.warpPerspective(gray, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderValue=255)
    inverse = np.linalg.inv(matrix)
    reads: list[Symbol | None] = []
    for view in (crop, cv2.rotate(crop, cv2.ROTATE_180)):
        results = zxingcpp.read_barcodes(
            np.ascontiguousarray(view),
            formats=LINEAR_FORMATS,
            try_rotate=False,
            try_invert=False,
            try_downscale=False,
            text_mode=zxingcpp.TextMode.Plain,
        )
        flipped = view is not crop
        for result in results:
            symbol = _from_zxing(result, None)
            if symbol is None:
                reads.append(None)
                continue
            points = [_unwarp(x, y, inverse, out_w, out_h, flipped) for x, y in symbol.position]
            reads.append(
                Symbol(
                    symbol.format,
                    symbol.text,
                    symbol.content,
                    symbol.symbology,
                    tuple(points),
                    symbol.decoder,
                    symbol.gs1,
                    symbol.binary,
                    symbol.gs1_error,
                )
            )
        if results:
            break
    return reads


def _unwarp(
    x: float, y: float, inverse: np.ndarray, w: int, h: int, flipped: bool
) -> tuple[int, int]:
    if flipped:
        x, y = w - x, h - y
    point = inverse @ np.array([x, y, 1.0])
    return (int(round(point[0] / point[2])), int(round(point[1] / point[2])))


# --- ZBar, the second opinion ---------------------------------------------------------


def _zbar_reads(gray: np.ndarray) -> list[Symbol | None]:
    assert _zbar is not None
    reads: list[Symbol | None] = []
    factor = min(1.0, ZBAR_MAX_SIDE / max(gray.shape[:2]))
    view = (
        gray
        if factor == 1.0
        else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    )
    back = None if factor == 1.0 else np.array([[1 / factor, 0, 0], [0, 1 / factor, 0]])
    for result in _zbar.decode(view, symbols=_ZBAR_SYMBOLS):
        fmt = ZBAR_FORMATS.get(result.type)
        if fmt is None:
            continue
        content = result.data.decode("ascii", "replace")
        if fmt == "itf" and len(content) != 14:
            continue  # only ITF-14 has a check digit
        symbology = {"ean13": "]E0", "ean8": "]E4", "upca": "]E0", "itf": "]I0"}[fmt]
        rect = result.rect
        corners = [(rect.left, rect.top), (rect.left + rect.width, rect.top),
                   (rect.left + rect.width, rect.top + rect.height),
                   (rect.left, rect.top + rect.height)]  # fmt: skip
        reads.append(_checked(fmt, content, content, symbology, corners, back, "zbar"))
    return reads


def zbar_available() -> bool:
    return _zbar is not None
