"""Scanning engine benchmark: barcode recall and speed, OCR speed, label field accuracy.

Over labels rendered by the test-set generator (normal and hard handheld photos), and over
the real barcode samples in ../shared/data/barcode-samples when that folder exists:

- barcode recall and ms/image: raw zxing-cpp single pass (library defaults) vs the engine;
- OCR ms/label: RapidOCR with its library defaults vs the engine's tuned OCR path;
- label field accuracy of the engine (barcode + OCR merged) against the ground truth.

    python bench/scan.py [--labels 40] [--no-ocr] [--samples DIR]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import zxingcpp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocr_service.barcodes import decode  # noqa: E402
from ocr_service.engine import ScanEngine  # noqa: E402
from ocr_service.fields import normalize  # noqa: E402
from ocr_service.images import load_image  # noqa: E402
from ocr_service.ocr import RapidOcrEngine  # noqa: E402
from tests.support.labels import label_set  # noqa: E402

DEFAULT_SAMPLES = ROOT.parent / "shared" / "data" / "barcode-samples"


def jpeg_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def raw_zxing(gray: np.ndarray) -> set[tuple[str, str]]:
    results = zxingcpp.read_barcodes(gray, text_mode=zxingcpp.TextMode.Plain)
    return {(r.format.name.lower(), r.text) for r in results}


def field_ok(name: str, got: Any, want: Any) -> bool:
    """Exact, except free text compared without spaces and after NFKC (OCR of Chinese drops
    spaces and cannot tell full-width from half-width brackets)."""
    if got is None:
        return False
    if name == "net_weight_kg":
        return abs(float(got) - float(want)) < 0.0005
    if name in ("product_name", "owner"):
        return normalize(str(got)).replace(" ", "") == normalize(str(want)).replace(" ", "")
    return str(got) == str(want)


def bench_labels(
    n: int, severity: str, engine: ScanEngine, defaults: RapidOcrEngine | None
) -> dict[str, Any]:
    labels = label_set(n, seed=11 if severity == "normal" else 12, severity=severity)
    stats: Counter[str] = Counter()
    times: dict[str, list[float]] = {"raw": [], "engine": [], "ocr_defaults": [],
                                     "ocr_engine": []}  # fmt: skip
    field_misses: Counter[str] = Counter()
    for index, (photo, truth, _spec) in enumerate(labels):
        data = jpeg_bytes(photo)
        loaded = load_image(data)
        expected = {(b.format, b.content) for b in truth.barcodes}
        started = time.perf_counter()
        raw = raw_zxing(loaded.gray)
        times["raw"].append((time.perf_counter() - started) * 1000)
        report = decode(loaded.gray, expected=len(expected), budget_ms=engine.budget_ms)
        times["engine"].append(report.elapsed_ms)
        got = {(s.format, s.content) for s in report.symbols}
        stats["expected"] += len(expected)
        stats["raw_found"] += len(expected & _norm(raw))
        stats["engine_found"] += len(expected & got)
        stats["engine_false"] += len(got - expected)
        if defaults is not None:
            started = time.perf_counter()
            defaults.read(loaded.gray)
            times["ocr_defaults"].append((time.perf_counter() - started) * 1000)
            result = engine.scan_image(loaded, ocr=True, expected=len(expected))
            times["ocr_engine"].append(result.timings_ms.get("ocr", 0.0))
            for name, want in truth.fields.items():
                stats["fields"] += 1
                if field_ok(name, result.fields.get(name), want):
                    stats["fields_right"] += 1
                else:
                    field_misses[name] += 1
        progress(f"labels/{severity}", index + 1, len(labels))
    return {"stats": stats, "times": times, "misses": field_misses}


def _norm(found: set[tuple[str, str]]) -> set[tuple[str, str]]:
    names = {"databarexp": "databarexpanded", "databarltd": "databarlimited",
             "databaromni": "databar", "itf14": "itf"}  # fmt: skip
    return {(names.get(f, f), c) for f, c in found}


def bench_samples(folder: Path, budget_ms: float) -> dict[str, Any]:
    stats: Counter[str] = Counter()
    times: dict[str, list[float]] = {"raw": [], "engine": []}
    images = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in (".png", ".jpg", ".webp"))
    for index, path in enumerate(images):
        expectation = path.with_suffix(".txt")
        negative = path.parent.name.startswith("falsepositives")
        if not expectation.exists() and not negative:
            continue
        try:
            loaded = load_image(path.read_bytes())
        except Exception:  # noqa: BLE001 - a sample our loader refuses counts as missed
            stats["unloadable"] += 1
            continue
        want = _unescape(expectation.read_text(errors="replace")) if not negative else None
        started = time.perf_counter()
        raw = zxingcpp.read_barcodes(loaded.gray, text_mode=zxingcpp.TextMode.Plain)
        times["raw"].append((time.perf_counter() - started) * 1000)
        report = decode(loaded.gray, budget_ms=budget_ms)
        times["engine"].append(report.elapsed_ms)
        if negative:
            stats["negatives"] += 1
            stats["raw_false"] += len(raw)
            stats["engine_false"] += len(report.symbols)
        else:
            stats["positives"] += 1
            stats["raw_found"] += any(r.text == want for r in raw)
            stats["engine_found"] += any(s.content == want for s in report.symbols)
        progress("real samples", index + 1, len(images))
    return {"stats": stats, "times": times}


def _unescape(text: str) -> str:
    text = text.rstrip("\n") if not text.endswith("<LF>") else text
    return text.replace("<GS>", "\x1d").replace("<LF>", "\n").replace("<CR>", "\r")


def progress(label: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{label:<16} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50={statistics.median(values):.0f}ms mean={statistics.fmean(values):.0f}ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=40, help="rendered labels per severity")
    parser.add_argument("--no-ocr", action="store_true", help="barcodes only")
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        help="barcode retry budget (default: the engine's, for camera frames)",
    )
    args = parser.parse_args()

    engine = ScanEngine() if args.budget_ms is None else ScanEngine(budget_ms=args.budget_ms)
    defaults = None if args.no_ocr else RapidOcrEngine(library_defaults=True)
    if defaults is not None:
        engine.ocr  # load both models before timing  # noqa: B018
    for severity in ("normal", "hard"):
        result = bench_labels(args.labels, severity, engine, defaults)
        s, t = result["stats"], result["times"]
        print(
            f"[labels {severity}] barcodes expected={s['expected']}"
            f" raw_zxing_recall={s['raw_found'] / s['expected']:.3f} ({ms(t['raw'])})"
            f" engine_recall={s['engine_found'] / s['expected']:.3f} ({ms(t['engine'])})"
            f" engine_false_reads={s['engine_false']}"
        )
        if defaults is not None:
            print(
                f"[labels {severity}] ocr rapidocr_defaults {ms(t['ocr_defaults'])};"
                f" engine {ms(t['ocr_engine'])};"
                f" fields_right={s['fields_right']}/{s['fields']}"
                f" = {s['fields_right'] / max(s['fields'], 1):.3f}"
                f" misses={dict(result['misses'])}"
            )
    if args.samples.is_dir():
        result = bench_samples(args.samples, engine.budget_ms)
        s, t = result["stats"], result["times"]
        print(
            f"[real samples] images={s['positives']} raw_zxing_recall="
            f"{s['raw_found'] / max(s['positives'], 1):.3f} ({ms(t['raw'])})"
            f" engine_recall={s['engine_found'] / max(s['positives'], 1):.3f}"
            f" ({ms(t['engine'])}) false_reads raw={s['raw_false']}"
            f" engine={s['engine_false']} on {s['negatives']} images without codes"
        )
    else:
        print(f"[real samples] {args.samples} not present: skipped")


if __name__ == "__main__":
    main()
