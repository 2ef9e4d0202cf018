"""Frames in, gate events out: one bounded queue and one worker thread for the whole box.

The box has two cores and the PDAs need one, so all cameras share a single decoding thread.
Sources (pushes, drop folders, streams) only put frames on the queue. When it is full the
oldest frame is dropped: a frame is cheap to lose (the next one shows the same pallet), an
event is not, and events are only made after decoding. While frames wait, barcode decoding
skips its escalating retries and the optional OCR (container numbers, truck plates), so the
queue drains faster.

The worker decodes a frame, turns its symbols into identities, feeds the gate's tracker and
writes what the tracker says: a new event, a sighting, a settled pass whose meaning
(receipt, shipment, hold) is then recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cangyun.timeutil import format_ts
from edge.gates import outcomes, plates, tracker
from edge.gates.store import GateNotFound, GateStore
from edge.gates.tracker import Code, PalletPass, Sighting, Tracker, Update
from edge.store import EdgeStore
from ocr_service import codes as id_codes
from ocr_service.barcodes import Symbol, decode
from ocr_service.identify import identify

log = logging.getLogger(__name__)

QUEUE_FRAMES = 32  # about 15 s of 2 fps from one camera; older frames are stale anyway
QUEUE_MAX_BYTES = 256 * 1024 * 1024  # grayscale pixels waiting, whatever the resolution
TICK_S = 0.2  # how often passes are checked for settling when no frame arrives
ESCALATE_MAX_WAITING = 1  # deeper barcode retries and OCR only while the queue is this short
SETTLE_RETRY_S = 5.0  # an event whose outcome could not be recorded is tried again this often
STOP_JOIN_S = 5.0


@dataclass(frozen=True)
class Frame:
    gate: str
    camera: str
    gray: np.ndarray
    at: float  # seconds since the epoch, when the frame was taken or received
    snapshot: bool = False  # a pushed picture rather than one frame of a stream
    source: str = "push"  # push | folder | stream


@dataclass
class CameraCounters:
    kind: str
    received: int = 0
    decoded: int = 0
    dropped: int = 0
    codes: int = 0
    last_frame_at: float | None = None
    last_codes_at: float | None = None
    decode_ms_total: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)  # state reported by the source

    def to_json(self, camera: str) -> dict[str, Any]:
        return {
            "camera": camera,
            "kind": self.kind,
            "received": self.received,
            "decoded": self.decoded,
            "dropped": self.dropped,
            "codes": self.codes,
            "decode_ms_mean": round(self.decode_ms_total / self.decoded, 1)
            if self.decoded
            else None,
            "last_frame_at": _iso(self.last_frame_at),
            "last_codes_at": _iso(self.last_codes_at),
            **self.source,
        }


class FrameQueue:
    """A bounded FIFO that makes room by dropping its oldest frames."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._ready = threading.Condition()

    def put(self, frame: Frame) -> list[Frame]:
        """Queue ``frame``; return the frames dropped to make room for it."""
        dropped = []
        with self._ready:
            self._frames.append(frame)
            self._bytes += frame.gray.nbytes
            while len(self._frames) > 1 and (
                len(self._frames) > self.max_frames or self._bytes > self.max_bytes
            ):
                old = self._frames.popleft()
                self._bytes -= old.gray.nbytes
                dropped.append(old)
            self._ready.notify()
        return dropped

    def get(self, timeout: float) -> Frame | None:
        with self._ready:
            if not self._frames:
                self._ready.wait(timeout)
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._bytes -= frame.gray.nbytes
            return frame

    def __len__(self) -> int:
        return len(self._frames)


def codes_from_symbols(symbols: list[Symbol]) -> tuple[Code, ...]:
    """Pallet identities in decoded symbols: SSCC (AI 00), GTIN with lot, GTIN, container."""
    found = []
    for symbol in symbols:
        if symbol.gs1_error:
            continue
        identified = identify(symbol.symbology + symbol.content)
        centre = _centre(symbol)
        fields = identified.fields
        if identified.kind == "gs1":
            if fields.get("sscc"):
                found.append(
                    Code(
                        "sscc",
                        sscc=fields["sscc"],
                        gtin=fields.get("gtin"),
                        lot=fields.get("lot"),
                        centre=centre,
                    )
                )
            elif fields.get("gtin"):
                found.append(
                    Code("gtin", gtin=fields["gtin"], lot=fields.get("lot"), centre=centre)
                )
        elif identified.kind == "sscc":
            found.append(Code("sscc", sscc=identified.value, centre=centre))
        elif identified.kind == "gtin":
            found.append(Code("gtin", gtin=identified.value, centre=centre))
        elif identified.kind == "container":
            found.append(Code("container", container=identified.value, centre=centre))
    return tuple(found)


def containers_in_text(lines: list[str]) -> tuple[Code, ...]:
    """Container numbers in OCR lines; painted numbers often split over two lines."""
    numbers: dict[str, None] = {}
    candidates = list(lines) + [a + b for a, b in zip(lines, lines[1:], strict=False)]
    for text in candidates:
        try:
            numbers[id_codes.parse_container_number(text)] = None
        except id_codes.CodeError:
            continue
    return tuple(Code("container", container=n) for n in numbers)


def plates_in_text(lines: list[str]) -> tuple[Code, ...]:
    """Truck plates in OCR lines. A plate has no check digit: it always needs two frames."""
    return tuple(Code("plate", plate=p, checked=False) for p in plates.plates_in_text(lines))


class GateHub:
    """The queue, the worker and the trackers of every gate on this box."""

    def __init__(
        self,
        gates: GateStore,
        edge: EdgeStore,
        *,
        budget_ms: float = 30.0,
        still_budget_ms: float = 1000.0,
        read_text: Callable[[np.ndarray], list[str]] | None = None,
        clock: Callable[[], float] = time.time,
        admit: Callable[[str], None] | None = None,
    ) -> None:
        self.gates = gates
        self.edge = edge
        self.admit = admit  # the box's licence, asked before every receipt
        self.budget_ms = budget_ms
        self.still_budget_ms = still_budget_ms  # pushed and folder snapshots
        self.read_text = read_text
        self.clock = clock
        self.queue = FrameQueue(QUEUE_FRAMES, QUEUE_MAX_BYTES)
        self._counters: dict[tuple[str, str], CameraCounters] = {}
        self._lock = threading.Lock()
        self._trackers: dict[str, Tracker] = {}
        self._events: dict[tuple[str, int], int] = {}  # (gate, pass number) -> event id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick = 0.0
        self._unsettled: set[int] = set()  # settling failed; retried every SETTLE_RETRY_S
        self._last_retry = 0.0
        self.last_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gate-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(STOP_JOIN_S)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- intake (any thread) ------------------------------------------------------------

    def submit(self, frame: Frame) -> dict[str, Any]:
        """Queue a frame for decoding; answers at once."""
        self.start()
        with self._lock:
            self._camera(frame.gate, frame.camera, frame.source).received += 1
            self._camera(frame.gate, frame.camera, frame.source).last_frame_at = frame.at
        dropped = self.queue.put(frame)
        if dropped:
            with self._lock:
                for old in dropped:
                    self._camera(old.gate, old.camera, old.source).dropped += 1
        return {"queued": True, "waiting": len(self.queue), "dropped": len(dropped)}

    def report_source(self, gate: str, camera: str, kind: str, **state: Any) -> None:
        """A source's own state (connected, last error, files taken...) for the status view."""
        with self._lock:
            self._camera(gate, camera, kind).source.update(state)

    def forget_camera(self, gate: str, camera: str) -> None:
        with self._lock:
            self._counters.pop((gate, camera), None)

    # --- status -------------------------------------------------------------------------

    def gate_status(self, gate: str) -> dict[str, Any]:
        with self._lock:
            cameras = [
                c.to_json(camera) for (g, camera), c in sorted(self._counters.items()) if g == gate
            ]
            passes = self._trackers[gate].passes if gate in self._trackers else []
        return {
            "gate": gate,
            "worker_running": self.running,
            "queue": {"waiting": len(self.queue), "capacity": self.queue.max_frames},
            "cameras": cameras,
            "received": sum(c["received"] for c in cameras),
            "decoded": sum(c["decoded"] for c in cameras),
            "dropped": sum(c["dropped"] for c in cameras),
            "passes_in_view": sum(1 for p in passes if not p.settled),
            "events": self.gates.count_events(gate),
            "last_error": self.last_error,
        }

    def summary(self) -> dict[str, Any]:
        with self._lock:
            per_gate: dict[str, dict[str, int]] = {}
            for (gate, _camera), c in self._counters.items():
                totals = per_gate.setdefault(gate, {"received": 0, "decoded": 0, "dropped": 0})
                totals["received"] += c.received
                totals["decoded"] += c.decoded
                totals["dropped"] += c.dropped
        return {
            "worker_running": self.running,
            "queue": {"waiting": len(self.queue), "capacity": self.queue.max_frames},
            "dropped": sum(t["dropped"] for t in per_gate.values()),
            "gates": [{"gate": g, **t} for g, t in sorted(per_gate.items())],
            "last_error": self.last_error,
        }

    # --- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        log.info("gate worker started")
        try:
            self._recover()
        except Exception:  # noqa: BLE001 - the gates still work; the error shows in status
            log.exception("gate worker: recovering open events failed")
        while not self._stop.is_set():
            frame = self.queue.get(TICK_S)
            try:
                if frame is not None:
                    self._process(frame)
                now = self.clock()
                if frame is None or now - self._last_tick >= TICK_S:
                    self._last_tick = now
                    self._tick(now)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the gates
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("gate worker: frame from %s failed", frame.camera if frame else "-")
        log.info("gate worker stopped")

    def _process(self, frame: Frame) -> None:
        try:
            config = self.gates.gate_config(frame.gate)
        except GateNotFound:
            log.warning("frame for unknown gate %s dropped", frame.gate)
            return
        quiet = len(self.queue) <= ESCALATE_MAX_WAITING
        started = time.perf_counter()
        if frame.snapshot:  # a still: every symbol in it, when the queue leaves time
            report = decode(
                frame.gray, budget_ms=self.still_budget_ms, escalate=quiet, mode="still"
            )
        else:
            report = decode(frame.gray, budget_ms=self.budget_ms, escalate=quiet)
        found = codes_from_symbols(report.symbols)
        wants_text = config.ocr_containers or config.ocr_plates
        if wants_text and quiet and self.read_text is not None:
            try:
                lines = self.read_text(frame.gray)  # one OCR pass serves both readers
                if config.ocr_containers:
                    found += containers_in_text(lines)
                if config.ocr_plates:
                    found += plates_in_text(lines)
            except Exception as exc:  # noqa: BLE001 - OCR missing or failing: barcodes still count
                self.last_error = f"gate OCR: {type(exc).__name__}: {exc}"
                log.warning("gate %s: OCR failed: %s", frame.gate, exc)
        elapsed_ms = (time.perf_counter() - started) * 1000
        with self._lock:
            counters = self._camera(frame.gate, frame.camera, frame.source)
            counters.decoded += 1
            counters.decode_ms_total += elapsed_ms
            if found:
                counters.codes += len(found)
                counters.last_codes_at = frame.at
        gate_tracker = self._tracker(frame.gate, config.window_s)
        with self._lock:  # the status view reads the tracker's passes
            updates = gate_tracker.observe(Sighting(frame.camera, frame.at, found, frame.snapshot))
        self._apply(frame.gate, config.direction, updates)

    def _settle(self, event_id: int) -> None:
        try:
            outcomes.settle_event(self.gates, self.edge, event_id, self.admit)
        except Exception as exc:  # noqa: BLE001 - e.g. the database is locked: try again
            self.last_error = f"event {event_id}: {type(exc).__name__}: {exc}"
            log.exception("gate event %s could not be settled; will retry", event_id)
            self._unsettled.add(event_id)
        else:
            self._unsettled.discard(event_id)

    def _tick(self, now: float) -> None:
        if self._unsettled and now - self._last_retry >= SETTLE_RETRY_S:
            self._last_retry = now
            for event_id in sorted(self._unsettled):
                self._settle(event_id)
        for gate, gate_tracker in list(self._trackers.items()):
            with self._lock:
                updates = gate_tracker.tick(now)
            if updates:
                self._apply(gate, self.gates.gate_config(gate).direction, updates)

    def _apply(self, gate: str, direction: str, updates: list[Update]) -> None:
        for update in updates:
            passage = update.passage
            key = (gate, passage.number)
            if update.action == "opened":
                self._events[key] = self.gates.open_event(gate, direction, passage)
                log.info("gate %s: pass of %s opened", gate, passage.key)
                continue
            event_id = self._events.get(key)
            if event_id is None:
                continue
            self.gates.touch_event(event_id, passage)
            if update.action == "settled":
                self._settle(event_id)
        # Forget event ids of passes the tracker has let go.
        with self._lock:
            live = {(gate, p.number) for p in self._trackers[gate].passes}
        for key in [k for k in self._events if k[0] == gate and k not in live]:
            del self._events[key]

    def _tracker(self, gate: str, window_s: float) -> Tracker:
        found = self._trackers.get(gate)
        if found is None:
            made = self._new_tracker(gate, window_s)
            with self._lock:
                found = self._trackers[gate] = made
        return found

    def _new_tracker(self, gate: str, window_s: float) -> Tracker:
        """A tracker that remembers the gate's open and recent events (after a restart)."""
        made = Tracker(
            window_s=window_s,
            confirm_frames=tracker.CONFIRM_FRAMES,
            confirm_window_s=tracker.CONFIRM_WINDOW_S,
            settle_s=tracker.SETTLE_S,
            settle_max_s=tracker.SETTLE_MAX_S,
        )
        for event_id, passage in self.gates.recent_passes(gate, self.clock() - window_s):
            adopted: PalletPass = made.adopt(passage)
            self._events[(gate, adopted.number)] = event_id
        return made

    def _recover(self) -> None:
        """Load the trackers of every gate, so events left open by a restart get settled."""
        for gate in self.gates.list_gates():
            self._tracker(gate["code"], gate["window_s"])

    def _camera(self, gate: str, camera: str, kind: str) -> CameraCounters:
        found = self._counters.get((gate, camera))
        if found is None:
            found = self._counters[(gate, camera)] = CameraCounters(kind)
        return found


def _centre(symbol: Symbol) -> tuple[float, float] | None:
    if not symbol.position:
        return None
    xs = [p[0] for p in symbol.position]
    ys = [p[1] for p in symbol.position]
    return (sum(xs) / len(xs), sum(ys) / len(ys))


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return format_ts(datetime.fromtimestamp(seconds, UTC))
