"""Label text recognition behind one small interface, so the engine can be swapped.

The default is RapidOCR on ONNX Runtime with the PP-OCR models shipped inside the rapidocr
wheel (no download, works offline). Its library defaults are tuned for general photos: the
detector *upscales* until the short side is 736 px and every line goes through the angle
classifier. A label photo is the opposite case (large, text upright once the label is), so
the engine here limits the long side instead and skips the classifier unless asked; the
scanning engine straightens the image by the barcode's orientation first.

PaddleOCR is an optional engine: selecting it without paddleocr installed raises
``OcrUnavailable`` with what to install.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 1280  # detector input, long side; label text stays ≥ 12 px high
DEFAULT_THREADS = 2


class OcrUnavailable(RuntimeError):
    """The selected OCR engine cannot run here (not installed, model missing)."""


@dataclass(frozen=True)
class TextLine:
    text: str
    box: tuple[tuple[int, int], ...]  # four corners, clockwise from top-left
    score: float

    @property
    def top(self) -> float:
        return min(y for _, y in self.box)

    @property
    def bottom(self) -> float:
        return max(y for _, y in self.box)

    @property
    def left(self) -> float:
        return min(x for x, _ in self.box)

    @property
    def right(self) -> float:
        return max(x for x, _ in self.box)

    @property
    def height(self) -> float:
        return self.bottom - self.top


class OcrEngine(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[TextLine]:
        """Text lines of an 8-bit grayscale or RGB image, top to bottom."""
        ...

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Boxes (4x2 corner arrays) of the text lines, without recognising them."""
        ...


class RapidOcrEngine:
    """RapidOCR (PP-OCR on ONNX Runtime); one instance loads the models once and is shared."""

    name = "rapidocr"

    def __init__(
        self,
        *,
        threads: int = DEFAULT_THREADS,
        max_side: int = DEFAULT_MAX_SIDE,
        use_cls: bool = False,
        library_defaults: bool = False,
    ) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - rapidocr is a core dependency
            raise OcrUnavailable(
                "rapidocr is not installed: pip install rapidocr onnxruntime"
            ) from exc
        params: dict[str, Any] = {
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        if not library_defaults:
            params |= {
                "Global.use_cls": use_cls,
                "Det.limit_type": "max",
                "Det.limit_side_len": max_side,
                "Global.max_side_len": max(max_side, 2000),
            }
        self.library_defaults = library_defaults
        self._use_cls = True if library_defaults else use_cls
        self._ocr = RapidOCR(params=params)
        # RapidOCR keeps per-call parameters on the instance: one call at a time.
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Text line boxes only (no recognition): cheap, for finding the text direction."""
        with self._lock:
            result = self._ocr(image, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(result, "boxes", None)
        return [] if boxes is None else [np.asarray(box, dtype=np.float32) for box in boxes]

    def read(self, image: np.ndarray) -> list[TextLine]:
        with self._lock:
            # Per-call flags stick to the instance, so every call states all of them.
            result = self._ocr(image, use_det=True, use_cls=self._use_cls, use_rec=True)
        boxes = getattr(result, "boxes", None)
        if boxes is None:
            return []
        lines = [
            TextLine(
                text=str(text),
                box=tuple((int(round(x)), int(round(y))) for x, y in box),
                score=float(score),
            )
            for box, text, score in zip(boxes, result.txts, result.scores, strict=False)
        ]
        return sorted(lines, key=lambda line: (line.top, line.left))


class PaddleOcrEngine:
    """PaddleOCR 3.x, when installed (models must already be in its local cache)."""

    name = "paddleocr"

    def __init__(self, *, threads: int = DEFAULT_THREADS) -> None:
        try:
            from paddleocr import PaddleOCR
        except ImportError as exc:
            raise OcrUnavailable(
                "the paddleocr engine was selected but paddleocr is not installed; install"
                " paddleocr and paddlepaddle (x86_64 only) or select engine 'rapidocr'"
            ) from exc
        self._ocr = PaddleOCR(
            use_doc_orientation_classify=False,
            use_doc_unwarping=False,
            use_textline_orientation=False,
            cpu_threads=threads,
        )
        self._lock = threading.Lock()

    def read(self, image: np.ndarray) -> list[TextLine]:  # pragma: no cover - optional engine
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        with self._lock:
            pages = self._ocr.predict(image)
        lines: list[TextLine] = []
        for page in pages:
            for poly, text, score in zip(
                page["rec_polys"], page["rec_texts"], page["rec_scores"], strict=False
            ):
                box = tuple((int(x), int(y)) for x, y in poly)
                lines.append(TextLine(str(text), box, float(score)))
        return sorted(lines, key=lambda line: (line.top, line.left))


ENGINES = {"rapidocr": RapidOcrEngine, "paddleocr": PaddleOcrEngine}


def make_engine(name: str = "rapidocr", **options: Any) -> OcrEngine:
    if name not in ENGINES:
        raise OcrUnavailable(f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINES)}")
    return ENGINES[name](**options)
