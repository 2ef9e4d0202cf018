"""Where gate frames come from besides HTTP pushes: drop folders and video streams.

Each source runs in its own thread, puts grayscale frames on the gate hub's queue and
reports its state (connected, retrying, last error, files taken) for the status view. None
of them decodes barcodes: that is the single worker's job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2

from cangyun.mqtt import Backoff
from edge.gates.model import CameraConfig
from edge.gates.pipeline import Frame
from ocr_service.images import MAX_IMAGE_BYTES, ImageError, load_image

log = logging.getLogger(__name__)

# Drop folders
INCOMPLETE_GRACE_S = 30.0  # an image without its end marker is given this long to finish
EMPTY_GRACE_S = 300.0  # an FTP upload may create its file long before the first byte
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".uploading", ".crdownload")
ARCHIVE_DIR = "archive"
REJECTED_DIR = "rejected"
# Streams
OPEN_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
STOP_JOIN_S = 1.0  # stop() waits this long; a capture stuck in FFmpeg ends by its timeout
REPORT_EVERY_S = 1.0
# Both
RELOAD_S = 5.0  # cameras added with `cangyun edge gate camera` start without a restart

Submit = Callable[[Frame], Any]
Report = Callable[..., None]


def looks_complete(path: Path, size: int) -> bool:
    """Whether an image file has its format's end: JPEG EOI, PNG IEND, the RIFF length of
    WebP. Other files count as complete; their stable size and time must do."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            handle.seek(max(0, size - 32))
            tail = handle.read(32)
    except OSError:
        return False
    if head.startswith(b"\xff\xd8"):
        # Cameras sometimes pad after the end-of-image marker.
        return b"\xff\xd9" in tail.rstrip(b"\x00")[-8:]
    if head.startswith(b"\x89PNG"):
        return tail.endswith(b"IEND\xaeB`\x82")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return int.from_bytes(head[4:8], "little") + 8 <= size
    return True


@dataclass
class _Watched:
    signature: tuple[int, int]  # size, mtime in ns
    since: float  # monotonic time the signature was first seen


class FolderWatcher:
    """Takes each picture a camera uploads into ``camera.folder`` exactly once, complete.

    A file is taken when its size and modification time are unchanged across two polls
    ``poll_s`` apart and, for JPEG/PNG/WebP, its end marker is there (an upload paused for
    longer than a poll is not mistaken for a finished one). Dot files and temporary names
    (``.part``, ``.tmp``...) are left alone until renamed into place. A file that is not a
    usable image goes to ``rejected/`` with a ``.reason.txt`` next to it and is never tried
    again; a good one is archived to ``archive/`` or deleted, as the camera says.
    """

    def __init__(
        self,
        camera: CameraConfig,
        submit: Submit,
        report: Report,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert camera.folder is not None
        self.camera = camera
        self.folder = Path(camera.folder)
        self.submit = submit
        self.report = report
        self.clock = clock
        self.taken = 0
        self.rejected = 0
        self._watched: dict[str, _Watched] = {}
        self._stuck: set[tuple[str, tuple[int, int]]] = set()  # taken but could not be moved
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        name = f"gate-folder-{self.camera.gate}-{self.camera.code}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)

    def _run(self) -> None:
        self.report(state="watching", folder=str(self.folder), taken=0, rejected=0)
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - keep watching; the error shows in status
                log.exception("drop folder %s", self.folder)
                self.report(state="error", last_error=f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.camera.poll_s)

    def poll(self) -> list[str]:
        """One look at the folder; returns the names taken as frames."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            self.report(state="error", last_error=f"folder {self.folder} does not exist")
            return []
        now = self.clock()
        present = set()
        taken = []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            present.add(name)
            stat = entry.stat(follow_symlinks=False)
            signature = (stat.st_size, stat.st_mtime_ns)
            watched = self._watched.get(name)
            if watched is None or watched.signature != signature:
                self._watched[name] = _Watched(signature, now)
                continue
            if (name, signature) in self._stuck or now - watched.since < self.camera.poll_s:
                continue
            if self._consider(Path(entry.path), stat.st_size, stat.st_mtime, now - watched.since):
                taken.append(name)
                self._watched.pop(name, None)
        for name in set(self._watched) - present:
            del self._watched[name]
        if taken:
            self.report(state="watching", taken=self.taken, rejected=self.rejected, last_error=None)
        return taken

    def _consider(self, path: Path, size: int, mtime: float, unchanged_s: float) -> bool:
        """Take, reject or keep waiting for one stable file; True when it was taken."""
        if size == 0:
            if unchanged_s >= EMPTY_GRACE_S:
                self._reject(path, "empty_image", "the file stayed empty")
            return False
        if size > MAX_IMAGE_BYTES:
            self._reject(path, "image_too_large", f"{size} bytes; the limit is {MAX_IMAGE_BYTES}")
            return False
        if not looks_complete(path, size) and unchanged_s < INCOMPLETE_GRACE_S:
            return False
        try:
            image = load_image(path.read_bytes())
        except ImageError as exc:
            if exc.code == "corrupt_image" and unchanged_s < INCOMPLETE_GRACE_S:
                return False  # maybe still arriving by a writer that pauses a long time
            self._reject(path, exc.code, exc.message)
            return False
        except OSError as exc:
            self.report(last_error=f"cannot read {path.name}: {exc}")
            return False
        frame = Frame(
            gate=self.camera.gate,
            camera=self.camera.code,
            gray=image.gray,
            at=min(mtime, time.time()),
            snapshot=True,
            source="folder",
        )
        self.submit(frame)
        self.taken += 1
        try:
            if self.camera.after == "delete":
                path.unlink()
            else:
                _move(path, self.folder / ARCHIVE_DIR)
        except OSError as exc:
            # Never take it twice: remember it until it changes or disappears.
            stat = path.stat()
            self._stuck.add((path.name, (stat.st_size, stat.st_mtime_ns)))
            self.report(last_error=f"taken but could not {self.camera.after} {path.name}: {exc}")
        return True

    def _reject(self, path: Path, code: str, message: str) -> None:
        log.warning("drop folder %s: %s rejected: %s", self.folder, path.name, message)
        self.rejected += 1
        try:
            moved = _move(path, self.folder / REJECTED_DIR)
            moved.with_name(moved.name + ".reason.txt").write_text(
                f"{code}: {message}\n", encoding="utf-8"
            )
        except OSError as exc:
            stat = path.stat()
            self._stuck.add((path.name, (stat.st_size, stat.st_mtime_ns)))
            self.report(last_error=f"could not move {path.name} to {REJECTED_DIR}/: {exc}")
            return
        self.report(rejected=self.rejected, last_rejected=f"{path.name}: {code}")


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():  # cameras reuse names (img0001.jpg) after a reboot
        target = folder / f"{path.stem}-{time.time_ns()}{path.suffix}"
    path.rename(target)
    return target


class StreamReader:
    """Pulls an RTSP, MJPEG-over-HTTP or MP4-over-HTTP stream and samples ``camera.fps``.

    Frames between samples are grabbed but not decoded. A camera that never answers, drops
    the connection or ends its stream is retried with exponential backoff and full jitter;
    every failure is reported with its reason. A recorded clip (it has a frame count) is
    played at its own pace, so it stands in for a live camera.
    """

    def __init__(self, camera: CameraConfig, submit: Submit, report: Report) -> None:
        assert camera.url is not None
        self.camera = camera
        self.submit = submit
        self.report = report
        self.grabbed = 0
        self.sampled = 0
        self.connects = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        name = f"gate-stream-{self.camera.gate}-{self.camera.code}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_BASE_S, BACKOFF_CAP_S)
        url = _redacted(self.camera.url or "")
        while not self._stop.is_set():
            self.report(state="connecting", url=url)
            error = _probe(self.camera.url or "", OPEN_TIMEOUT_S)
            capture = None
            if error is None:
                capture = _open(self.camera.url or "")
                if not capture.isOpened():
                    capture.release()
                    capture = None
                    error = f"no video from {url} within {OPEN_TIMEOUT_S:g} s"
            if capture is not None:
                self.connects += 1
                self.report(state="streaming", connects=self.connects, last_error=None)
                try:
                    got_frames, error = self._read(capture)
                finally:
                    capture.release()
                if got_frames:
                    backoff.reset()
            if self._stop.is_set():
                break
            self.failures += 1
            delay = backoff.next_delay()
            log.warning(
                "gate camera %s/%s: %s; retrying in %.1f s",
                self.camera.gate,
                self.camera.code,
                error,
                delay,
            )
            self.report(
                state="retrying",
                last_error=error,
                failures=self.failures,
                retry_in_s=round(delay, 2),
            )
            self._stop.wait(delay)
        self.report(state="stopped")

    def _read(self, capture: Any) -> tuple[bool, str]:
        """Sample frames until the stream fails or stop(); (any frame read, why it ended)."""
        interval = 1.0 / self.camera.fps
        recorded = capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        started = time.monotonic()
        next_due = started
        last_report = started
        got = False
        while not self._stop.is_set():
            if not capture.grab():
                self.report(grabbed=self.grabbed, sampled=self.sampled)
                reason = "stream ended" if recorded else "connection lost or no frame"
                return got, f"{reason} (after {self.grabbed} frames)"
            got = True
            self.grabbed += 1
            now = time.monotonic()
            if recorded:
                ahead = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 - (now - started)
                if ahead > 0 and self._stop.wait(ahead):
                    break
                now = time.monotonic()
            if now < next_due:
                continue  # between samples: grabbed, not decoded
            next_due += interval
            if next_due <= now:
                next_due = now + interval
            ok, image = capture.retrieve()
            if not ok or image is None:
                continue
            gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            self.sampled += 1
            self.submit(
                Frame(self.camera.gate, self.camera.code, gray, time.time(), False, "stream")
            )
            if now - last_report >= REPORT_EVERY_S:
                last_report = now
                self.report(grabbed=self.grabbed, sampled=self.sampled)
        return got, "stopped"


def _open(url: str) -> Any:
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(OPEN_TIMEOUT_S * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(READ_TIMEOUT_S * 1000),
    ]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


def _probe(url: str, timeout: float) -> str | None:
    """A plain TCP connect first: it tells "refused" and "unknown host" apart from a camera
    that accepts and then says nothing, which FFmpeg reports all alike."""
    parts = urlsplit(url)
    default = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}.get(parts.scheme, 80)
    try:
        host, port = parts.hostname, parts.port or default
    except ValueError:
        return f"bad port in {_redacted(url)}"
    if not host:
        return f"no host in {_redacted(url)}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port}"
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s"
    except socket.gaierror as exc:
        return f"unknown host {host}: {exc}"
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc}"


def _redacted(url: str) -> str:
    """The URL without its password (RTSP URLs often carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class GateSources:
    """Runs a source per configured stream and folder camera, following the configuration."""

    def __init__(self, list_cameras: Callable[[], list[CameraConfig]], hub: Any) -> None:
        self.list_cameras = list_cameras
        self.hub = hub
        self._running: dict[tuple[str, str], tuple[CameraConfig, FolderWatcher | StreamReader]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._run, name="gate-sources", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        for _config, source in running:
            source._stop.set()
        for _config, source in running:
            source.stop()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)

    def sources(self) -> dict[tuple[str, str], FolderWatcher | StreamReader]:
        with self._lock:
            return {key: source for key, (_config, source) in self._running.items()}

    def _run(self) -> None:
        while not self._stop.wait(RELOAD_S):
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - keep the running sources; retry next round
                log.exception("gate sources: reloading the camera list failed")

    def reconcile(self) -> None:
        wanted = {(c.gate, c.code): c for c in self.list_cameras() if c.kind != "push"}
        with self._lock:
            if self._stop.is_set():
                return
            for key, (config, source) in list(self._running.items()):
                if wanted.get(key) != config:
                    source.stop()
                    del self._running[key]
                    self.hub.forget_camera(*key)
            for key, config in wanted.items():
                if key in self._running:
                    continue
                report = _reporter(self.hub, config)
                source: FolderWatcher | StreamReader
                if config.kind == "folder":
                    source = FolderWatcher(config, self.hub.submit, report)
                else:
                    source = StreamReader(config, self.hub.submit, report)
                source.start()
                self._running[key] = (config, source)
                log.info(
                    "gate %s camera %s: %s source started", config.gate, config.code, config.kind
                )


def _reporter(hub: Any, camera: CameraConfig) -> Report:
    def report(**state: Any) -> None:
        hub.report_source(camera.gate, camera.code, camera.kind, **state)

    return report
