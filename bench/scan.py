"""Scanning engine benchmark: barcode recall and speed, OCR speed, label field accuracy.

- real phone photos (../shared/data/phone-photos, when present): recall per printed code
  (matched by content and position, so a code printed twice counts twice) and ms/image for
  one plain ``zxingcpp.read_barcodes(gray)`` call and for the engine in still mode, with
  what each still pass finds and costs;
- rendered 12 MP sheets of ~30 small DataMatrix/QR codes in perspective
  (tests/support/code_sheets.py): plain call vs still mode;
- camera frames cut from rendered labels (1280 px, as the PDA sends): frame mode;
- labels rendered by the test-set generator (normal and hard handheld photos): raw zxing vs
  the engine (still mode), RapidOCR defaults vs the engine's OCR, label field accuracy;
- zxing-cpp's samples (../shared/data/barcode-samples, when present): recall and false reads
  on the images without codes, plain call vs still and frame mode.

    python bench/scan.py [--labels 40] [--no-ocr] [--sheets 8] [--samples DIR] [--photos DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import random
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
from tests.support.code_sheets import score, sheet  # noqa: E402
from tests.support.labels import label_set  # noqa: E402

DEFAULT_SAMPLES = ROOT.parent / "shared" / "data" / "barcode-samples"
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "phone-photos"


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
        report = decode(loaded.gray, mode="still", budget_ms=engine.still_budget_ms)
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


def bench_samples(folder: Path, engine: ScanEngine) -> dict[str, Any]:
    stats: Counter[str] = Counter()
    times: dict[str, list[float]] = {"raw": [], "still": [], "frame": []}
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
        reports = {
            "still": decode(loaded.gray, mode="still", budget_ms=engine.still_budget_ms),
            "frame": decode(loaded.gray, mode="frame", budget_ms=engine.budget_ms),
        }
        for mode, report in reports.items():
            times[mode].append(report.elapsed_ms)
        if negative:
            stats["negatives"] += 1
            stats["raw_false"] += len(raw)
            for mode, report in reports.items():
                stats[f"{mode}_false"] += len(report.symbols)
        else:
            stats["positives"] += 1
            stats["raw_found"] += any(r.text == want for r in raw)
            for mode, report in reports.items():
                stats[f"{mode}_found"] += any(s.content == want for s in report.symbols)
        progress("real samples", index + 1, len(images))
    return {"stats": stats, "times": times}


# --- real phone photos ------------------------------------------------------------------


def _photo_text(text: str) -> str:
    """Annotations and readers write the same code differently: FNC1/GS as {GS} or U+001D,
    UPC-A as 12 digits or as EAN-13 with a leading 0."""
    text = text.replace("{GS}", "").replace("\x1d", "")
    return text[1:] if len(text) == 13 and text.isdigit() and text.startswith("0") else text


def _matched(codes: list[dict[str, Any]], reads: list[tuple[str, np.ndarray]]) -> tuple[int, int]:
    """(annotated codes read, reads matching no code): a read answers for one code with its
    text whose outline holds the read's centre, within half the code's size."""
    import cv2

    used: set[int] = set()
    found = 0
    for code in codes:
        quad = np.asarray(code["points"], dtype=np.float32)
        margin = 0.5 * float(max(np.ptp(quad[:, 0]), np.ptp(quad[:, 1])))
        for index, (text, centre) in enumerate(reads):
            if index in used or text != _photo_text(code["text"]):
                continue
            point = (float(centre[0]), float(centre[1]))
            if cv2.pointPolygonTest(quad.reshape(-1, 1, 2), point, True) >= -margin:
                used.add(index)
                found += 1
                break
    return found, len(reads) - len(used)


def bench_photos(folder: Path, engine: ScanEngine) -> dict[str, Any]:
    listing = json.loads((folder / "annotations.json").read_text())
    images = [i for i in listing["images"] if (folder / i["file"]).exists()]
    stats: Counter[str] = Counter()
    times: dict[str, list[float]] = {"raw": [], "still": []}
    pass_ms: Counter[str] = Counter()
    pass_new: Counter[str] = Counter()
    for index, image in enumerate(images):
        gray = load_image((folder / image["file"]).read_bytes()).gray
        started = time.perf_counter()
        raw = zxingcpp.read_barcodes(gray)
        times["raw"].append((time.perf_counter() - started) * 1000)
        raw_reads = [
            (_photo_text(r.text), _centre([(p.x, p.y) for p in _corners(r.position)])) for r in raw
        ]
        report = decode(gray, mode="still", budget_ms=engine.still_budget_ms)
        times["still"].append(report.elapsed_ms)
        still_reads = [(_photo_text(s.content), _centre(s.position)) for s in report.symbols]
        codes = image["barcodes"]
        stats["codes"] += len(codes)
        for name, reads in (("raw", raw_reads), ("still", still_reads)):
            found, stray = _matched(codes, reads)
            stats[f"{name}_found"] += found
            stats[f"{name}_unmatched"] += stray
        pass_ms.update(report.pass_ms)
        pass_new.update(report.added)
        stats["budget_hit"] += any(p.startswith("budget:") for p in report.passes)
        progress("phone photos", index + 1, len(images))
    stats["images"] = len(images)
    return {"stats": stats, "times": times, "pass_ms": pass_ms, "pass_new": pass_new}


def _corners(position: Any) -> list[Any]:
    return [position.top_left, position.top_right, position.bottom_right, position.bottom_left]


def _centre(points: Any) -> np.ndarray:
    return np.asarray(points, dtype=np.float32).mean(axis=0)


def bench_sheets(count: int, engine: ScanEngine) -> dict[str, Any]:
    """12 MP sheets of ~30 small codes at an angle: half DataMatrix only, half mixed."""
    stats: Counter[str] = Counter()
    times: dict[str, list[float]] = {"raw": [], "still": []}
    for seed in range(count):
        formats = ("datamatrix",) if seed % 2 == 0 else ("datamatrix", "qrcode")
        photo = sheet(100 + seed, formats=formats, angle=35.0, tilt=0.15)
        gray = load_image(photo.jpeg).gray
        started = time.perf_counter()
        raw = zxingcpp.read_barcodes(gray, text_mode=zxingcpp.TextMode.Plain)
        times["raw"].append((time.perf_counter() - started) * 1000)
        report = decode(gray, mode="still", budget_ms=engine.still_budget_ms)
        times["still"].append(report.elapsed_ms)
        stats["codes"] += len(photo.codes)
        raw_symbols = [_Read(r.text, [(p.x, p.y) for p in _corners(r.position)]) for r in raw]
        for name, symbols in (("raw", raw_symbols), ("still", report.symbols)):
            found, stray = score(photo.codes, symbols)
            stats[f"{name}_found"] += found
            stats[f"{name}_stray"] += stray
        progress("code sheets", seed + 1, count)
    return {"stats": stats, "times": times}


class _Read:
    def __init__(self, content: str, position: list[tuple[float, float]]) -> None:
        self.content, self.position = content, position


def bench_frames(count: int, engine: ScanEngine) -> dict[str, Any]:
    """Camera frames as the PDA sends them (1280 px JPEG aimed at the label's barcodes)."""
    from tests.browser.video import aim_at_barcodes, camera_picture
    from tests.support.camera import photograph
    from tests.support.labels import random_spec, render, require_fonts

    require_fonts()
    rng = random.Random(31)
    stats: Counter[str] = Counter()
    times: dict[str, list[float]] = {"frame": []}
    for index in range(count):
        spec = random_spec(rng, barcode_kinds=rng.choice((("code128",), ("datamatrix",))))
        image, truth = render(spec)
        shot = photograph(camera_picture(aim_at_barcodes(image)), random.Random(index))
        shot = shot.convert("RGB")
        shot.thumbnail((1280, 1280))
        gray = load_image(jpeg_bytes(shot)).gray
        report = decode(gray, mode="frame", budget_ms=engine.budget_ms)
        times["frame"].append(report.elapsed_ms)
        want = {b.content for b in truth.barcodes}
        stats["frames"] += 1
        stats["frame_read"] += bool(want & {s.content for s in report.symbols})
        progress("camera frames", index + 1, count)
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
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--sheets", type=int, default=8, help="rendered 12 MP code sheets")
    parser.add_argument("--frames", type=int, default=40, help="camera frames for frame mode")
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        help="frame mode's retry budget (default: the engine's, for camera frames)",
    )
    parser.add_argument("--still-budget-ms", type=float, default=None, help="still budget")
    args = parser.parse_args()

    budgets: dict[str, float] = {}
    if args.budget_ms is not None:
        budgets["budget_ms"] = args.budget_ms
    if args.still_budget_ms is not None:
        budgets["still_budget_ms"] = args.still_budget_ms
    engine = ScanEngine(**budgets)
    if args.photos.is_dir():
        result = bench_photos(args.photos, engine)
        s, t = result["stats"], result["times"]
        ratio = statistics.fmean(t["still"]) / max(statistics.fmean(t["raw"]), 1e-6)
        print(
            f"[phone photos] images={s['images']} codes={s['codes']}"
            f" plain_zxing recall={s['raw_found'] / s['codes']:.3f} ({ms(t['raw'])})"
            f" still recall={s['still_found'] / s['codes']:.3f} ({ms(t['still'])})"
            f" time={ratio:.2f}x plain; unmatched reads raw={s['raw_unmatched']}"
            f" still={s['still_unmatched']}; budget hit on {s['budget_hit']} images"
        )
        for name, spent in result["pass_ms"].most_common():
            new = result["pass_new"].get(name, 0)
            print(
                f"[phone photos] pass {name:<8} {spent / s['images']:6.1f} ms/image"
                f" new symbols={new:3d} ({1000 * new / max(spent, 1e-6):.2f} per second)"
            )
    else:
        print(f"[phone photos] {args.photos} not present: skipped")
    if args.sheets:
        result = bench_sheets(args.sheets, engine)
        s, t = result["stats"], result["times"]
        print(
            f"[code sheets 12 MP] sheets={args.sheets} codes={s['codes']}"
            f" plain_zxing recall={s['raw_found'] / s['codes']:.3f} ({ms(t['raw'])})"
            f" still recall={s['still_found'] / s['codes']:.3f} ({ms(t['still'])})"
            f" stray reads raw={s['raw_stray']} still={s['still_stray']}"
        )
    if args.frames:
        result = bench_frames(args.frames, engine)
        s, t = result["stats"], result["times"]
        print(
            f"[camera frames] frames={s['frames']} frame mode read"
            f" {s['frame_read'] / s['frames']:.3f} ({ms(t['frame'])})"
        )
    defaults = None if args.no_ocr else RapidOcrEngine(library_defaults=True)
    if defaults is not None:
        engine.ocr  # load both models before timing  # noqa: B018
    for severity in ("normal", "hard") if args.labels else ():
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
        result = bench_samples(args.samples, engine)
        s, t = result["stats"], result["times"]
        positives = max(s["positives"], 1)
        print(
            f"[real samples] images={s['positives']} raw_zxing_recall="
            f"{s['raw_found'] / positives:.3f} ({ms(t['raw'])})"
            f" still_recall={s['still_found'] / positives:.3f} ({ms(t['still'])})"
            f" frame_recall={s['frame_found'] / positives:.3f} ({ms(t['frame'])})"
            f" false_reads raw={s['raw_false']} still={s['still_false']}"
            f" frame={s['frame_false']} on {s['negatives']} images without codes"
        )
    else:
        print(f"[real samples] {args.samples} not present: skipped")


if __name__ == "__main__":
    main()
