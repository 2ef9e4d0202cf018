"""Gate camera benchmark: frames per second one decoding core sustains, and cameras per box.

Frames are 720p and 1080p JPEGs of a dock with a pallet label in view (rendered by
``tests/support/gate_media.py``). Each frame goes through what the gate pipeline does with
it: JPEG to grayscale (a push or a drop-folder file; streams get their frames from FFmpeg
instead), barcode decoding with the 30 ms retry budget, identities from the symbols, the
tracker. Decoding runs on one core, the way the box's single gate worker does; the other
core is left to the PDAs. Cameras per box = sustained fps / 2 (cameras send 2 frames/s).

    python bench/gate.py [--frames 40] [--rounds 3]

The last line is ``cameras_at_2fps=<n>``, for the worse of the two resolutions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from edge.gates.pipeline import codes_from_symbols  # noqa: E402
from edge.gates.tracker import Sighting, Tracker  # noqa: E402
from ocr_service.barcodes import DEFAULT_BUDGET_MS, decode  # noqa: E402
from ocr_service.images import load_image  # noqa: E402
from tests.support.gate_media import GateScene, encode_jpeg, make_pallets  # noqa: E402

CAMERA_FPS = 2.0
RESOLUTIONS = {"720p": ((1280, 720), 520), "1080p": ((1920, 1080), 780)}  # size, label px


def frames_with_labels(size: tuple[int, int], label_width: int, count: int) -> list[bytes]:
    """``count`` JPEG frames in which a pallet label is wholly in view."""
    pallets = make_pallets(max(2, count // 8), seed=31, label_width=label_width)
    scene = GateScene(pallets, fps=10.0, cross_s=3.0, gap_s=0.5, lead_s=0.0, size=size)
    in_view = [i for i in range(scene.frame_count) if scene.visible_sscc(i)]
    step = max(1, len(in_view) // count)
    return [encode_jpeg(scene.frame(i), 85) for i in in_view[::step][:count]]


def run(jpegs: list[bytes], rounds: int, escalate: bool) -> dict[str, float]:
    load_ms: list[float] = []
    decode_ms: list[float] = []
    found = 0
    tracker = Tracker()
    started = time.perf_counter()
    for _ in range(rounds):
        for data in jpegs:
            t0 = time.perf_counter()
            gray = load_image(data).gray
            t1 = time.perf_counter()
            report = decode(gray, budget_ms=DEFAULT_BUDGET_MS, escalate=escalate)
            codes = codes_from_symbols(report.symbols)
            tracker.observe(Sighting("cam-1", time.time(), codes))
            t2 = time.perf_counter()
            load_ms.append((t1 - t0) * 1000)
            decode_ms.append((t2 - t1) * 1000)
            found += any(c.kind == "sscc" for c in codes)
    wall = time.perf_counter() - started
    frames = rounds * len(jpegs)
    return {
        "load_ms": statistics.mean(load_ms),
        "decode_ms": statistics.mean(decode_ms),
        "p95_ms": sorted(a + b for a, b in zip(load_ms, decode_ms, strict=True))[
            int(0.95 * (frames - 1))
        ],
        "fps": frames / wall,
        "read": found / frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="distinct frames per resolution")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the frames")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core, like the gate worker on a 2-core box

    rows = []
    for name, (size, label_width) in RESOLUTIONS.items():
        jpegs = frames_with_labels(size, label_width, args.frames)
        run(jpegs[:3], 1, True)  # warm up
        for escalate in (True, False):
            result = run(jpegs, args.rounds, escalate)
            rows.append((name, "on" if escalate else "off (busy)", result))
            print(f"... {name} escalate={escalate}: {result['fps']:.1f} fps", file=sys.stderr)

    print()
    print("| frames | retries | JPEG→gray ms | barcodes ms | p95 ms | SSCC read | fps, one core |")
    print("|---|---|---|---|---|---|---|")
    for name, retries, r in rows:
        print(
            f"| {name} | {retries} | {r['load_ms']:.1f} | {r['decode_ms']:.1f} | {r['p95_ms']:.1f}"
            f" | {r['read']:.0%} | {r['fps']:.1f} |"
        )
    print()
    sustained = {name: r["fps"] for name, retries, r in rows if retries == "on"}
    for name, fps in sustained.items():
        cameras = int(fps // CAMERA_FPS)
        print(f"{name}: {fps:.1f} frames/s on one core -> {cameras} cameras at 2 frames/s")
    print(f"cameras_at_2fps={int(min(sustained.values()) // CAMERA_FPS)}")


if __name__ == "__main__":
    main()
