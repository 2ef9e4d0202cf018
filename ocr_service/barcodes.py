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
import math
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
STILL_BUDGET_MS = 1000.0  # a still someone waits on: about a second on a 2-core box
MODES = ("frame", "still")
SAME_PLACE_MARGIN = 0.1  # of a symbol's extent: reads closer than this are one symbol
SAME_PLACE_MIN_PX = 6.0
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
    added: dict[str, int] = field(default_factory=dict)  # still mode: new symbols per pass
    pass_ms: dict[str, float] = field(default_factory=dict)  # still mode: time per pass


# A pass decodes some view of the image and returns (symbol, 2x3 affine back to original).
Transform = np.ndarray


def decode(
    gray: np.ndarray,
    *,
    expected: int = 1,
    budget_ms: float | None = None,
    escalate: bool = True,
    mode: str = "frame",
    clock: Callable[[], float] = time.perf_counter,
) -> DecodeReport:
    """Decode every barcode in an 8-bit grayscale image.

    ``mode`` is "frame" (a live camera frame: stop at ``expected`` symbols or a small
    budget, the next frame is the retry) or "still" (a photo someone waits on: every symbol
    in it, within a budget of about a second). ``budget_ms`` defaults to the mode's."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if budget_ms is None:
        budget_ms = DEFAULT_BUDGET_MS if mode == "frame" else STILL_BUDGET_MS
    if mode == "still":
        return _decode_still(gray, budget_ms=budget_ms, escalate=escalate, clock=clock)
    started = clock()
    found = _Found()
    report = DecodeReport(symbols=[])

    def run(name: str, reads: Iterable[Symbol | None]) -> None:
        report.passes.append(name)
        for symbol in reads:
            if symbol is None:
                report.rejected += 1
            else:
                found.add(symbol)

    run("fast", _zxing(gray, rotate=False, invert=False))
    if escalate:
        for name, attempt in _escalations(gray):
            if len(found.symbols) >= expected:
                break
            if (clock() - started) * 1000 >= budget_ms:
                report.passes.append(f"budget:{name}")
                break
            run(name, attempt())
    report.symbols = list(found.symbols)
    report.elapsed_ms = round((clock() - started) * 1000, 2)
    return report


class _Found:
    """Symbols so far, each physical symbol once: the same content at another place is
    another symbol (a tray of identical drug codes, an SSCC printed twice on a label)."""

    def __init__(self) -> None:
        self.symbols: list[Symbol] = []

    def add(self, symbol: Symbol) -> bool:
        for index, old in enumerate(self.symbols):
            if old.key == symbol.key and _same_place(old.position, symbol.position):
                if _extent(symbol.position) > _extent(old.position):
                    self.symbols[index] = symbol  # keep the fuller outline
                return False
        self.symbols.append(symbol)
        return True

    def covers(self, region: _Region) -> bool:
        """Whether a found symbol explains a candidate region."""
        quad = region.quad.reshape(-1, 1, 2)
        margin = 0.15 * _extent(region.quad)
        centre = region.quad.mean(axis=0)
        for symbol in self.symbols:
            points = np.asarray(symbol.position, dtype=np.float32)
            middle = points.mean(axis=0)
            if cv2.pointPolygonTest(quad, (float(middle[0]), float(middle[1])), True) >= -margin:
                return True
            if _distance_inside(points, centre) >= -0.15 * _extent(points):
                return True
        return False


def _extent(points: Any) -> float:
    points = np.asarray(points, dtype=np.float32)
    return float(max(np.ptp(points[:, 0]), np.ptp(points[:, 1]), 1.0))


def _distance_inside(points: np.ndarray, point: np.ndarray) -> float:
    """Signed distance of ``point`` into the outline ``points`` (negative: outside)."""
    hull = cv2.convexHull(points.astype(np.float32))
    return float(cv2.pointPolygonTest(hull, (float(point[0]), float(point[1])), True))


def _same_place(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> bool:
    """Two reads of one symbol: the centre of either lies in (or within a little of) the
    other's outline. A 1D read's outline may be one scan line, hence the margin."""
    pa, pb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    for one, other in ((pa, pb), (pb, pa)):
        margin = max(SAME_PLACE_MIN_PX, SAME_PLACE_MARGIN * _extent(other))
        if _distance_inside(other, one.mean(axis=0)) >= -margin:
            return True
    return False


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


def _scaled(gray: np.ndarray, factor: float, *, invert: bool = False) -> list[Symbol | None]:
    big = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    back = np.array([[1 / factor, 0, 0], [0, 1 / factor, 0]])
    return _zxing(big, rotate=True, invert=invert, transform=back, downscale=False)


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


# --- stills: every symbol in a photo someone waits on ------------------------------------

REGION_SIDE = 1600  # candidate regions are looked for at this size (and mapped back)
REGION_MIN_PX = 10  # a candidate's shorter side at that size, pixels
CROP_MIN_SIDE = 320  # a crop of a small region is enlarged to at least this (small modules)
CROP_MAX_SIDE = 900
SQUARE_MAX_PX = 400  # a region this big is a whole symbol, not a piece of one
MAX_REGIONS = 60  # crops tried per still, largest first
TEXT_ASPECT = 1.6  # a 2D candidate longer than this (in its own frame) is a line of text
ENERGY_FLOOR = 110  # of 255 = the 99.5th percentile: below it is paper grain and noise
LINEAR_COHERENCE = 0.55  # gradients this aligned (0..1) are bars, not 2D modules or text
TILE_SYMBOL_MAX_PX = 200  # a 2D symbol seen but unread, this small, in a big photo
HALF_MIN_SIDE = 500  # below this a half-size pass only loses modules
UPSCALE_2X_MAX_SIDE = 1600
UPSCALE_15X_MAX_SIDE = 2200


@dataclass(frozen=True)
class _Region:
    """Where a symbol probably is and was not read: a quad in the original image."""

    quad: np.ndarray  # 4x2 float32
    linear: bool
    along: np.ndarray | None = None  # 1D: unit vector across the bars (the scan direction)
    hinted: bool = False  # zxing located a symbol here and could not decode it


def _decode_still(
    gray: np.ndarray, *, budget_ms: float, escalate: bool, clock: Callable[[], float]
) -> DecodeReport:
    """Plain passes at full and half size, then crops of every place that looks like a
    symbol and was not read, then whole-image retries while such places remain; a retry that
    adds nothing ends the search, and so does the budget."""
    started = clock()
    found = _Found()
    report = DecodeReport(symbols=[])
    hints: list[_Region] = []
    added: dict[str, int] = {}

    def spent() -> float:
        return (clock() - started) * 1000

    def run(name: str, reads: Callable[[], Iterable[Symbol | None]]) -> int:
        new = 0
        begun = clock()
        for symbol in reads():
            if symbol is None:
                report.rejected += 1
            elif found.add(symbol):
                new += 1
        report.passes.append(name)
        added[name] = added.get(name, 0) + new
        report.pass_ms[name] = round((clock() - begun) * 1000, 2)
        return new

    height, width = gray.shape[:2]
    run("full", lambda: _zxing_hinted(gray, None, hints))
    if escalate and min(height, width) >= HALF_MIN_SIDE and spent() < budget_ms:
        half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        run("half", lambda: _zxing_hinted(half, np.array([[2.0, 0, 0], [0, 2.0, 0]]), hints))
    if escalate:
        begun = clock()
        regions = [r for r in hints + _regions(gray) if not found.covers(r)]
        report.pass_ms["regions"] = round((clock() - begun) * 1000, 2)
        open_regions = _distinct(regions)[:MAX_REGIONS]
        crops_new = 0
        for region in open_regions:
            if spent() >= budget_ms:
                report.passes.append("budget:crops")
                break
            if found.covers(region):
                continue  # read meanwhile, from a neighbouring crop
            for symbol in _crop_reads(gray, region):
                if symbol is None:
                    report.rejected += 1
                elif found.add(symbol):
                    crops_new += 1
        if open_regions:
            report.passes.append("crops")
            added["crops"] = crops_new
            report.pass_ms["crops"] = round((clock() - begun) * 1000 - report.pass_ms["regions"], 2)
        # Whole-image retries only where zxing saw a symbol or bars stand out: mixed
        # gradients alone are as often text, and text would buy every photo the full search.
        still_open = [r for r in open_regions if (r.linear or r.hinted) and not found.covers(r)]
        for name, attempt in _still_escalations(gray):
            if not still_open:
                break
            if name == "tiles" and not (
                found.symbols
                and any(
                    r.hinted and not r.linear and _extent(r.quad) <= TILE_SYMBOL_MAX_PX
                    for r in still_open
                )
            ):
                continue  # tiles: for more small 2D symbols like those read in a big photo
            if spent() >= budget_ms:
                report.passes.append(f"budget:{name}")
                break
            if run(name, attempt) == 0:
                break
            still_open = [r for r in still_open if not found.covers(r)]
        if not found.symbols:
            # Nothing read at all: every retry the camera pipeline knows (ZBar, CLAHE with a
            # global binariser, ...), until one reads something.
            for name, attempt in _escalations(gray):
                if spent() >= budget_ms:
                    report.passes.append(f"budget:{name}")
                    break
                if run(f"empty:{name}", attempt):
                    break
    report.symbols = [part for symbol in found.symbols for part in _split_stacked(gray, symbol)]
    report.elapsed_ms = round(spent(), 2)
    report.added = added
    return report


def _split_stacked(gray: np.ndarray, symbol: Symbol) -> list[Symbol]:
    """zxing merges identical 1D reads on neighbouring scan lines into one outline, so the
    same SSCC printed twice, one above the other, comes back once. Look across the
    outline: bands of bars with blank rows between them are separate symbols, each kept
    only when it decodes to the same content on its own."""
    if symbol.format not in LINEAR:
        return [symbol]
    points = np.asarray(symbol.position, dtype=np.float32)
    along = points[1] - points[0]
    length = float(np.linalg.norm(along))
    if length < 20:
        return [symbol]
    along /= length
    across = np.array([-along[1], along[0]], dtype=np.float32)
    spread = (points - points[0]) @ across
    top, bottom = float(spread.min()), float(spread.max())
    if bottom - top < 40:
        return [symbol]
    margin = 0.1 * length  # the quiet zones, outside zxing's outline
    out_w, out_h = int(length + 2 * margin), int(bottom - top)
    origin = points[0] + across * top - along * margin
    end = origin + along * out_w
    source = np.float32([origin, end, end + across * out_h, origin + across * out_h])
    target = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
    matrix = cv2.getPerspectiveTransform(source, target)
    view = cv2.warpPerspective(
        gray, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    activity = np.abs(np.diff(view.astype(np.int16), axis=1)).mean(axis=1)
    busy = activity > 0.3 * float(activity.max())
    bands, start = [], None
    for row, on in enumerate([*busy, False]):
        if on and start is None:
            start = row
        elif not on and start is not None:
            if row - start >= 8:
                bands.append((start, row))
            start = None
    if len(bands) < 2:
        return [symbol]
    inverse = np.linalg.inv(matrix)
    parts: list[Symbol] = []
    for first, last in bands:
        pad = 6
        crop = view[max(first - pad, 0) : min(last + pad, out_h)]
        reads = zxingcpp.read_barcodes(
            np.ascontiguousarray(crop), formats=LINEAR_FORMATS, try_rotate=False,
            try_downscale=False, text_mode=zxingcpp.TextMode.Plain)  # fmt: skip
        if not any(r.text == symbol.content for r in reads):
            continue
        y0, y1 = float(first), float(last)
        x0, x1 = margin, out_w - margin
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        parts.append(_moved(symbol, tuple(_unwarp(x, y, inverse, 0, 0, False) for x, y in corners)))
    return parts if len(parts) >= 2 else [symbol]


def _still_escalations(
    gray: np.ndarray,
) -> list[tuple[str, Callable[[], Iterable[Symbol | None]]]]:
    # Ordered by what each finds per millisecond on real phone photos (bench/scan.py).
    side = max(gray.shape[:2])
    steps: list[tuple[str, Callable[[], Iterable[Symbol | None]]]] = []
    if side <= UPSCALE_2X_MAX_SIDE:
        steps.append(("upscale", lambda: _scaled(gray, 2.0, invert=True)))
    elif side <= UPSCALE_15X_MAX_SIDE:
        steps.append(("upscale", lambda: _scaled(gray, 1.5, invert=True)))
    if side >= TILE_MIN_SIDE:
        steps.append(("tiles", lambda: _tiles(gray)))
    return steps


def _zxing_hinted(
    image: np.ndarray, transform: Transform | None, hints: list[_Region]
) -> list[Symbol | None]:
    """A plain pass (rotation, inversion, zxing's own downscaling) that also keeps where
    zxing saw a symbol it could not decode: those places get a crop of their own."""
    results = zxingcpp.read_barcodes(
        np.ascontiguousarray(image),
        formats=WAREHOUSE_FORMATS,
        try_rotate=True,
        try_invert=True,
        try_downscale=True,
        text_mode=zxingcpp.TextMode.Plain,
        return_errors=True,
    )
    reads: list[Symbol | None] = []
    for result in results:
        if not result.error:
            reads.append(_from_zxing(result, transform))
            continue
        p = result.position
        corners = [(q.x, q.y) for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]
        quad = np.array([_map_point(x, y, transform) for x, y in corners], dtype=np.float32)
        name = FORMAT_NAMES.get(result.format.name, result.format.name.lower())
        if name in LINEAR:
            hints.append(_region_of_line(quad))
        elif _extent(quad) >= 8:
            hints.append(_Region(quad, linear=False, hinted=True))
    return reads


def _region_of_line(quad: np.ndarray) -> _Region:
    """A 1D symbol zxing located but could not read: its scan line, given some height."""
    along = quad[1] - quad[0]
    length = float(np.linalg.norm(along))
    along = along / length if length > 1 else np.array([1.0, 0.0], dtype=np.float32)
    return _Region(quad, linear=True, along=along.astype(np.float32), hinted=True)


def _distinct(regions: list[_Region]) -> list[_Region]:
    """Largest first, without regions whose centre lies inside one already listed."""
    ordered = sorted(regions, key=lambda r: -_extent(r.quad))
    kept: list[_Region] = []
    for region in ordered:
        centre = region.quad.mean(axis=0)
        if any(_distance_inside(k.quad, centre) >= 0 and k.linear == region.linear for k in kept):
            continue
        kept.append(region)
    return kept


def _regions(gray: np.ndarray) -> list[_Region]:
    """Places that look like a barcode: dense, strong gradients. Aligned gradients are
    bars (a 1D symbol, with its scan direction); mixed ones are 2D modules (or text, which
    simply reads as nothing). Found on a downscaled copy, returned in original pixels."""
    height, width = gray.shape[:2]
    factor = min(1.0, REGION_SIDE / max(height, width))
    small = (
        gray
        if factor == 1.0
        else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    )
    image = small.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    window = (7, 7)
    jxx = cv2.boxFilter(gx * gx, -1, window)
    jyy = cv2.boxFilter(gy * gy, -1, window)
    jxy = cv2.boxFilter(gx * gy, -1, window)
    energy = np.sqrt(jxx + jyy)
    peak = float(np.percentile(energy[::3, ::3], 99.5))
    if peak < 40:  # nothing with the contrast of a printed symbol
        return []
    level = np.clip(energy * (255.0 / peak), 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(level, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = (level > max(threshold, ENERGY_FLOOR)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # Every component's outer boundary, also those inside another's hole (codes on a sheet
    # whose edge is a ring of gradient around them).
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    regions: list[_Region] = []
    outer = [c for c, h in zip(contours, hierarchy[0], strict=True) if h[3] < 0] if contours else []
    for contour in outer:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < REGION_MIN_PX or max(w, h) > 0.9 * max(small.shape):
            continue
        area = cv2.contourArea(contour)
        if area < 0.45 * w * h:
            continue
        x, y, bw, bh = cv2.boundingRect(contour)
        inside = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(inside, [contour - [x, y]], -1, 1, -1)
        a, b, c = (cv2.mean(j[y : y + bh, x : x + bw], mask=inside)[0] for j in (jxx, jyy, jxy))
        coherence = math.sqrt((a - b) ** 2 + 4 * c * c) / max(a + b, 1e-6)
        box = cv2.boxPoints(((cx, cy), (w, h), angle)).astype(np.float32) / factor
        if coherence >= LINEAR_COHERENCE:
            theta = 0.5 * math.atan2(2 * c, a - b)
            along = np.array([math.cos(theta), math.sin(theta)], dtype=np.float32)
            regions.append(_Region(box, linear=True, along=along))
        elif max(w, h) <= TEXT_ASPECT * min(w, h):  # longer than that: a line of text
            regions.append(_Region(_corners(contour, box * factor) / factor, linear=False))
    return regions


def _corners(contour: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Four corners of a 2D symbol's outline, in perspective when the outline shows them,
    else its rotated bounding box."""
    hull = cv2.convexHull(contour)
    perimeter = cv2.arcLength(hull, True)
    for epsilon in (0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, epsilon * perimeter, True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            return approx.reshape(4, 2).astype(np.float32)
    return box.astype(np.float32)


def _crop_reads(gray: np.ndarray, region: _Region) -> list[Symbol | None]:
    if region.linear and region.along is not None:
        across = np.array([-region.along[1], region.along[0]], dtype=np.float32)
        spread = region.quad @ across
        half = float(np.ptp(spread)) / 2 * 0.8
        reads = _decode_strip(gray, region.quad.mean(axis=0), region.along, half)
        if any(r is not None for r in reads):
            return reads
        # not a 1D symbol after all, or the strip missed: as a 2D crop
    quad = region.quad
    reads = _decode_quad(gray, quad)
    if any(r is not None for r in reads) or region.linear or _extent(quad) > SQUARE_MAX_PX:
        return reads
    # The outline may be a piece of the symbol (a finder pattern, a dense corner): an
    # upright square twice its size around it, enlarged.
    centre = quad.mean(axis=0)
    half = max(_extent(quad), 32.0)
    square = np.array(
        [centre + (-half, -half), centre + (half, -half), centre + (half, half),
         centre + (-half, half)], dtype=np.float32)  # fmt: skip
    return _decode_quad(gray, square, grow=1.0)


def _decode_quad(gray: np.ndarray, quad: np.ndarray, grow: float = 1.35) -> list[Symbol | None]:
    """Warp the quad (grown by a quiet zone) to an upright square-ish crop, enlarged when
    small, and decode it; positions are mapped back through the inverse warp."""
    centre = quad.mean(axis=0)
    grown = centre + (quad - centre) * grow
    edge_a = float(np.linalg.norm(grown[1] - grown[0]))
    edge_b = float(np.linalg.norm(grown[2] - grown[1]))
    longest = max(edge_a, edge_b, 1.0)
    scale = min(max(1.0, CROP_MIN_SIDE / longest), CROP_MAX_SIDE / longest, 4.0)
    out_w, out_h = max(int(edge_a * scale), 24), max(int(edge_b * scale), 24)
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(grown.astype(np.float32), target)
    crop = cv2.warpPerspective(
        gray, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    inverse = np.linalg.inv(matrix)
    results = zxingcpp.read_barcodes(
        np.ascontiguousarray(crop),
        formats=WAREHOUSE_FORMATS,
        try_rotate=True,
        try_invert=True,
        try_downscale=True,
        text_mode=zxingcpp.TextMode.Plain,
    )
    reads: list[Symbol | None] = []
    for result in results:
        symbol = _from_zxing(result, None)
        if symbol is None:
            reads.append(None)
            continue
        points = tuple(_unwarp(x, y, inverse, out_w, out_h, False) for x, y in symbol.position)
        reads.append(_moved(symbol, points))
    return reads


def _moved(symbol: Symbol, points: tuple[tuple[int, int], ...]) -> Symbol:
    return Symbol(
        symbol.format,
        symbol.text,
        symbol.content,
        symbol.symbology,
        points,
        symbol.decoder,
        symbol.gs1,
        symbol.binary,
        symbol.gs1_error,
    )
