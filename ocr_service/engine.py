"""The scanning engine: image bytes in; barcodes, label fields and conflicts out.

One ``ScanEngine`` per process: the OCR models load once, on first use, and are shared by
all threads. Barcodes come first; OCR runs only when asked, on the image turned upright by
the first barcode's orientation (so the text-angle classifier can be skipped).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ocr_service import fields as label_fields
from ocr_service import gs1
from ocr_service.barcodes import DEFAULT_BUDGET_MS, MODES, STILL_BUDGET_MS, Symbol, decode
from ocr_service.images import LoadedImage, load_image
from ocr_service.ocr import OcrEngine, TextLine, make_engine

log = logging.getLogger(__name__)

# A camera frame read with OCR costs most of a second anyway: a deeper barcode search.
PHOTO_BARCODE_BUDGET_MS = 250.0
DESKEW_MIN_DEGREES = 4.0  # below this the OCR detector copes on its own
UPRIGHT_KEYS = 3  # a reading with this many label keys is taken as upright


@dataclass
class ScanResult:
    barcodes: list[Symbol]
    fields: dict[str, Any]
    conflicts: list[dict[str, Any]]
    timings_ms: dict[str, float]
    width: int
    height: int
    sources: dict[str, str] = field(default_factory=dict)
    text_lines: list[TextLine] = field(default_factory=list)

    def to_json(self, *, with_text: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "barcodes": [b.to_json() for b in self.barcodes],
            "fields": self.fields,
            "field_sources": self.sources,
            "conflicts": self.conflicts,
            "timings_ms": self.timings_ms,
            "image": {"width": self.width, "height": self.height},
        }
        if with_text:
            data["text"] = [{"text": t.text, "score": round(t.score, 3)} for t in self.text_lines]
        return data


class ScanEngine:
    def __init__(
        self,
        *,
        ocr_engine: str | OcrEngine = "rapidocr",
        ocr_options: dict[str, Any] | None = None,
        budget_ms: float = DEFAULT_BUDGET_MS,
        still_budget_ms: float = STILL_BUDGET_MS,
    ) -> None:
        self.budget_ms = budget_ms  # camera frames
        self.still_budget_ms = still_budget_ms  # stills: photos someone waits on
        self._ocr_spec = ocr_engine
        self._ocr_options = ocr_options or {}
        self._ocr: OcrEngine | None = ocr_engine if not isinstance(ocr_engine, str) else None
        self._ocr_lock = threading.Lock()

    @property
    def ocr(self) -> OcrEngine:
        """The OCR engine, loaded on first use (raises OcrUnavailable when it cannot be)."""
        if self._ocr is None:
            with self._ocr_lock:
                if self._ocr is None:
                    started = time.perf_counter()
                    assert isinstance(self._ocr_spec, str)
                    self._ocr = make_engine(self._ocr_spec, **self._ocr_options)
                    log.info(
                        "OCR engine %s loaded in %.0f ms",
                        self._ocr_spec,
                        (time.perf_counter() - started) * 1000,
                    )
        return self._ocr

    def scan(
        self, data: bytes, *, ocr: bool = True, expected: int = 1, mode: str = "still"
    ) -> ScanResult:
        """Scan one uploaded image; raises ImageError for an unusable upload.

        ``mode`` "still" (a photo, a snapshot: every symbol in it) or "frame" (one frame of a
        live camera: quick, the next frame is the retry)."""
        started = time.perf_counter()
        image = load_image(data)
        loaded_ms = (time.perf_counter() - started) * 1000
        result = self.scan_image(image, ocr=ocr, expected=expected, mode=mode)
        result.timings_ms = {"load": round(loaded_ms, 1), **result.timings_ms}
        result.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
        return result

    def scan_image(
        self, image: LoadedImage, *, ocr: bool = True, expected: int = 1, mode: str = "still"
    ) -> ScanResult:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        timings: dict[str, float] = {}
        if mode == "still":
            budget = self.still_budget_ms
        else:
            budget = max(self.budget_ms, PHOTO_BARCODE_BUDGET_MS) if ocr else self.budget_ms
        report = decode(image.gray, expected=expected, budget_ms=budget, mode=mode)
        timings["barcodes"] = report.elapsed_ms
        barcode_data = _barcode_fields(report.symbols)
        lines: list[TextLine] = []
        ocr_fields: dict[str, Any] = {}
        if ocr:
            started = time.perf_counter()
            lines = self._read_upright(image.gray, report.symbols)
            timings["ocr"] = round((time.perf_counter() - started) * 1000, 1)
            started = time.perf_counter()
            ocr_fields = label_fields.read_fields(lines)
            timings["fields"] = round((time.perf_counter() - started) * 1000, 1)
        merged = label_fields.merge(barcode_data, ocr_fields)
        return ScanResult(
            barcodes=report.symbols,
            fields=merged.fields,
            conflicts=merged.conflicts,
            timings_ms=timings,
            width=image.width,
            height=image.height,
            sources=merged.sources,
            text_lines=lines,
        )

    def _read_upright(self, gray: np.ndarray, symbols: list[Symbol]) -> list[TextLine]:
        """OCR on the photo turned so the label's text is level and upright.

        A decoded barcode says how the label lies. Without one, the text detector's boxes
        level the lines (up to 180°), and the reading that finds more label keys, with more
        confidence, decides between the two ways up.
        """
        angle = _barcode_angle(symbols)
        if angle is not None:
            return self.ocr.read(_rotate(gray, angle) if abs(angle) >= DESKEW_MIN_DEGREES else gray)
        detect = getattr(self.ocr, "detect", None)
        level = gray
        if detect is not None:
            text_angle = _text_angle(detect(gray))
            if text_angle is not None and abs(text_angle) >= DESKEW_MIN_DEGREES:
                level = _rotate(gray, text_angle)
        lines = self.ocr.read(level)
        if _reading_quality(lines)[0] >= UPRIGHT_KEYS:
            return lines
        flipped = self.ocr.read(_rotate(level, 180))
        return max((lines, flipped), key=_reading_quality)


def _reading_quality(lines: list[TextLine]) -> tuple[int, float]:
    keys = sum(1 for line in lines if label_fields.is_key(line.text))
    confidence = sum(line.score for line in lines) / len(lines) if lines else 0.0
    return keys, confidence


def _barcode_angle(symbols: list[Symbol]) -> float | None:
    for symbol in symbols:
        (x0, y0), (x1, y1) = symbol.position[0], symbol.position[1]
        if (x0, y0) != (x1, y1):
            return math.degrees(math.atan2(y1 - y0, x1 - x0))
    return None


def _text_angle(boxes: list[np.ndarray]) -> float | None:
    """Direction of the text lines, -90..90 degrees, from their boxes' long sides."""
    if not boxes:
        return None
    sin_sum = cos_sum = 0.0
    for box in boxes:
        along, across = box[1] - box[0], box[2] - box[1]
        edge = along if np.linalg.norm(along) >= np.linalg.norm(across) else across
        length = float(np.linalg.norm(edge))
        if length < 1:
            continue
        doubled = 2 * math.atan2(float(edge[1]), float(edge[0]))  # lines have no head or tail
        sin_sum += length * math.sin(doubled)
        cos_sum += length * math.cos(doubled)
    if sin_sum == cos_sum == 0:
        return None
    return math.degrees(math.atan2(sin_sum, cos_sum) / 2)


def _barcode_fields(symbols: list[Symbol]) -> dict[str, Any]:
    """Fields from every GS1 symbol (and plain EAN/UPC/ITF-14 as GTINs); first one wins."""
    found: dict[str, Any] = {}
    for symbol in symbols:
        if symbol.gs1 is not None:
            try:
                message = gs1.parse(symbol.symbology + symbol.content)
            except gs1.GS1Error:
                continue
            for name, value in label_fields.gs1_fields(message).items():
                found.setdefault(name, value)
        elif symbol.format in ("ean13", "ean8", "upca", "upce") or (
            symbol.format == "itf" and len(symbol.content) == 14
        ):
            gtin = label_fields.parse_gtin(symbol.content)
            if gtin:
                found.setdefault("gtin", gtin)
    return found


def _rotate(gray: np.ndarray, angle: float) -> np.ndarray:
    height, width = gray.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    return cv2.warpAffine(gray, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=255)
