"""Dock gate camera media with ground truth: pallets carrying SSCC labels crossing a frame.

A ``GateScene`` is a fixed camera looking at a dock door: a concrete floor, uneven light, and
one pallet load after another (a cardboard stack with a GS1 logistic label from
``tests.support.labels``) crossing the frame left to right, with empty gaps between them. It
renders frames on demand, so tests can write them as an MP4 (``write_mp4``), serve them as an
MJPEG stream (``MediaServer``) or push single snapshots (``snapshot_jpeg``).

``MediaServer`` is a small threaded HTTP server standing in for a camera: ``/clip.mp4`` with
byte ranges (FFmpeg seeks to the index at the end of the file), ``/stream.mjpg`` as
``multipart/x-mixed-replace`` paced in real time, optionally cutting the connection after N
frames once, the way a camera drops off Wi-Fi. A reconnect continues where the stream was,
as a live camera would; once the scene has been played, it answers 404.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from cangyun.identifiers import gs1_check_digit
from tests.support import camera, labels

FRAME_SIZE = (1280, 720)  # width, height: a 720p dock camera
LABEL_WIDTH = 520  # pixels of the label across the frame: a pallet label seen from ~2 m
BOX_COLOURS = ((92, 132, 176), (80, 118, 160), (104, 140, 170))  # cardboard, BGR
BOUNDARY = "gateframe"


@dataclass(frozen=True)
class Pallet:
    """One pallet load and the truth a perfect gate reader would report for it."""

    sscc: str
    gtin: str
    lot: str
    quantity: int
    label: np.ndarray = field(compare=False, repr=False)  # BGRA, slightly tilted


def make_sscc(rng: random.Random) -> str:
    body = f"0{rng.randint(690, 699)}" + "".join(str(rng.randint(0, 9)) for _ in range(13))
    return body + str(gs1_check_digit(body))


def make_pallets(count: int, seed: int = 7, *, label_width: int = LABEL_WIDTH) -> list[Pallet]:
    """``count`` different pallets, each with a GS1-128 SSCC label (plus GTIN, lot, count)."""
    rng = random.Random(seed)
    pallets = []
    for _ in range(count):
        spec = labels.random_spec(rng, barcode_kinds=("code128",))
        spec.sscc = make_sscc(rng)
        spec.quantity = spec.quantity or rng.randint(10, 80)
        image, _truth = labels.render(spec, width=label_width)
        tilted = camera.perspective(image.convert("RGBA"), rng, rng.uniform(0.0, 0.03))
        tilted = camera.rotate(tilted, rng.uniform(-4.0, 4.0))
        bgra = cv2.cvtColor(np.asarray(tilted), cv2.COLOR_RGBA2BGRA)
        pallets.append(Pallet(spec.sscc, spec.gtin, spec.lot, spec.quantity, bgra))
    return pallets


class GateScene:
    """Pallets crossing a fixed camera's view, one after another with gaps.

    Timeline: ``lead_s`` of empty dock, then per pallet ``cross_s`` of travel from just off
    the left edge to just off the right edge, then ``gap_s`` of empty dock.
    """

    def __init__(
        self,
        pallets: list[Pallet],
        *,
        fps: float = 10.0,
        cross_s: float = 2.4,
        gap_s: float = 1.2,
        lead_s: float = 0.6,
        size: tuple[int, int] = FRAME_SIZE,
        seed: int = 11,
    ) -> None:
        self.pallets = pallets
        self.fps = fps
        self.cross_s = cross_s
        self.gap_s = gap_s
        self.lead_s = lead_s
        self.size = size
        rng = random.Random(seed)
        self._gen = np.random.default_rng(rng.getrandbits(64))
        self._background = self._floor()
        self._boxes = [self._box(p, rng) for p in pallets]
        self._noise = [
            self._gen.normal(0, 3.0, (size[1], size[0], 1)).astype(np.float32) for _ in range(4)
        ]

    @property
    def duration_s(self) -> float:
        return self.lead_s + len(self.pallets) * (self.cross_s + self.gap_s)

    @property
    def frame_count(self) -> int:
        return int(self.duration_s * self.fps)

    def frames(self) -> Iterator[np.ndarray]:
        for index in range(self.frame_count):
            yield self.frame(index)

    def box_x(self, pallet: int, t: float) -> float | None:
        """Left edge of pallet ``pallet``'s box at time ``t``, None when it is not moving."""
        start = self.lead_s + pallet * (self.cross_s + self.gap_s)
        if not start <= t < start + self.cross_s:
            return None
        width = self._boxes[pallet].shape[1]
        travel = self.size[0] + width
        return -width + travel * (t - start) / self.cross_s

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as a BGR image."""
        t = index / self.fps
        width, height = self.size
        image = self._background.copy()
        speed_px = 0.0
        for number, box in enumerate(self._boxes):
            x = self.box_x(number, t)
            if x is None:
                continue
            speed_px = (width + box.shape[1]) / self.cross_s / self.fps
            _paste(image, box, round(x), height - box.shape[0] - 40)
        if speed_px:
            # Motion blur of a short exposure (about a tenth of the travel between frames).
            length = max(1, round(speed_px * 0.02))
            if length > 1:
                image = cv2.blur(image, (length, 1))
        noisy = image.astype(np.float32) + self._noise[index % len(self._noise)]
        return np.clip(noisy, 0, 255).astype(np.uint8)

    def visible_sscc(self, index: int) -> list[str]:
        """SSCCs whose labels are wholly inside frame ``index`` (what a reader could read)."""
        t = index / self.fps
        found = []
        for number, pallet in enumerate(self.pallets):
            x = self.box_x(number, t)
            if x is not None and x >= 0 and x + self._boxes[number].shape[1] <= self.size[0]:
                found.append(pallet.sscc)
        return found

    def _floor(self) -> np.ndarray:
        width, height = self.size
        coarse = self._gen.normal(0, 10, (8, 12)).astype(np.float32)
        shade = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        lamp = 1.0 - 0.35 * np.hypot(xs - width * 0.45, ys - height * 0.2) / width
        floor = (118 + shade) * lamp
        return np.clip(np.dstack([floor, floor, floor * 0.97]), 0, 255).astype(np.uint8)

    def _box(self, pallet: Pallet, rng: random.Random) -> np.ndarray:
        label = pallet.label
        margin_x = rng.randint(40, 90)
        margin_top = rng.randint(20, 50)
        box_h = min(label.shape[0] + margin_top + rng.randint(10, 40), self.size[1] - 60)
        box_w = label.shape[1] + 2 * margin_x
        colour = np.array(rng.choice(BOX_COLOURS), dtype=np.float32)
        grain = self._gen.normal(0, 6, (box_h, box_w, 1)).astype(np.float32)
        box = np.clip(colour + grain, 0, 255).astype(np.uint8)
        cv2.rectangle(box, (0, 0), (box_w - 1, box_h - 1), (50, 70, 95), 3)
        _paste(box, label, margin_x, margin_top)
        return box


def _paste(target: np.ndarray, source: np.ndarray, x: int, y: int) -> None:
    """Draw ``source`` (BGR or BGRA) onto ``target`` at (x, y), clipped to the target."""
    height, width = target.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + source.shape[1], width), min(y + source.shape[0], height)
    if x0 >= x1 or y0 >= y1:
        return
    part = source[y0 - y : y1 - y, x0 - x : x1 - x]
    if part.shape[2] == 4:
        alpha = part[:, :, 3:4].astype(np.float32) / 255
        region = target[y0:y1, x0:x1].astype(np.float32)
        blended = region * (1 - alpha) + part[:, :, :3].astype(np.float32) * alpha
        target[y0:y1, x0:x1] = blended.astype(np.uint8)
    else:
        target[y0:y1, x0:x1] = part


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def snapshot_jpeg(pallet: Pallet, *, seed: int = 3, quality: int = 85) -> bytes:
    """A single camera snapshot with ``pallet``'s label wholly in view."""
    scene = GateScene([pallet], fps=10.0, cross_s=2.0, gap_s=0.0, lead_s=0.0, seed=seed)
    index = scene.frame_count // 2
    return encode_jpeg(scene.frame(index), quality)


def write_mp4(scene: GateScene, path: Path) -> Path:
    """The scene as an MPEG-4 Part 2 (``mp4v``) file, the codec OpenCV's wheel can write."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), scene.fps, scene.size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    try:
        for frame in scene.frames():
            writer.write(frame)
    finally:
        writer.release()
    return path


class MediaServer:
    """A camera on the LAN: serves an MP4 file and a live MJPEG stream over HTTP/1.0.

    ``drop_after``: the first MJPEG connection is cut after this many frames (the camera
    drops off); the next connection resumes at the following frame.
    """

    def __init__(
        self,
        *,
        mp4: Path | None = None,
        mjpeg: list[bytes] | None = None,
        fps: float = 10.0,
        drop_after: int | None = None,
    ) -> None:
        self.mp4 = mp4
        self.mjpeg = mjpeg or []
        self.fps = fps
        self.drop_after = drop_after
        self.position = 0  # next MJPEG frame to send
        self.connections = 0
        self.dropped = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def finished(self) -> bool:
        return self.position >= len(self.mjpeg)

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _next_frame(self, sent: int) -> bytes | None:
        """The next MJPEG frame of this connection, None to end the connection."""
        with self._lock:
            if self._stop.is_set() or self.position >= len(self.mjpeg):
                return None
            if self.drop_after is not None and not self.dropped and sent >= self.drop_after:
                self.dropped = True
                return None
            frame = self.mjpeg[self.position]
            self.position += 1
            return frame

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        media = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: FFmpeg seeks anew

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with media._lock:
                    media.connections += 1
                if self.path.startswith("/clip.mp4") and media.mp4 is not None:
                    self._file(media.mp4.read_bytes())
                elif self.path.startswith("/stream.mjpg") and not media.finished:
                    self._mjpeg()
                else:
                    self.send_error(404)

            def _file(self, data: bytes) -> None:
                start, end = 0, len(data) - 1
                wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if wanted:
                    start = int(wanted.group(1))
                    end = int(wanted.group(2)) if wanted.group(2) else end
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                try:
                    self.wfile.write(data[start : end + 1])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the reader seeks elsewhere by hanging up

            def _mjpeg(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                sent = 0
                next_at = time.monotonic()
                while (frame := media._next_frame(sent)) is not None:
                    head = (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(frame)}\r\n\r\n"
                    )
                    try:
                        self.wfile.write(head.encode() + frame + b"\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    sent += 1
                    next_at += 1 / media.fps
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)

        return Handler
