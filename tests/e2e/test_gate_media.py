"""Gate cameras end to end on real media: pallets with SSCC labels crossing a 720p frame,
served as an MP4 file and as a live MJPEG stream over HTTP, pulled by OpenCV/FFmpeg,
decoded by the single worker, one event per pallet. Also cameras that drop the connection
or never answer."""

from __future__ import annotations

import socket

import pytest

from edge import gates
from edge.gates import pipeline, sources, tracker
from edge.gates.model import GateConfig, stream_camera
from edge.gates.sources import StreamReader
from tests.support.gate_media import GateScene, MediaServer, encode_jpeg, make_pallets, write_mp4
from tests.support.labels import require_fonts
from tests.support.polling import eventually

SAMPLE_FPS = 5.0  # the scene runs at 10 fps: every other frame is skipped


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(tracker, "SETTLE_S", 0.6)
    monkeypatch.setattr(pipeline, "TICK_S", 0.05)
    monkeypatch.setattr(sources, "RELOAD_S", 0.2)
    monkeypatch.setattr(sources, "OPEN_TIMEOUT_S", 1.0)
    monkeypatch.setattr(sources, "READ_TIMEOUT_S", 1.0)
    monkeypatch.setattr(sources, "BACKOFF_BASE_S", 0.2)
    monkeypatch.setattr(sources, "BACKOFF_CAP_S", 1.0)
    monkeypatch.setattr(sources, "REPORT_EVERY_S", 0.2)


@pytest.fixture(scope="module")
def scene():
    require_fonts()
    return GateScene(make_pallets(3, seed=5), fps=10.0, cross_s=2.0, gap_s=1.0, lead_s=0.5)


@pytest.fixture(scope="module")
def mjpeg_frames(scene):
    return [encode_jpeg(frame, 85) for frame in scene.frames()]


@pytest.fixture
def edge_app(edge_app):
    edge_app.extensions["cangyun.gate_store"].create_gate(GateConfig("dock-1", "in"), "cyc_t")
    return edge_app


def camera_status(app, camera: str = "cam-1") -> dict:
    found = [c for c in app.extensions["cangyun.gate_hub"].gate_status("dock-1")["cameras"]]
    return next((c for c in found if c["camera"] == camera), {})


def settled_events(app) -> list[dict]:
    store = app.extensions["cangyun.gate_store"]

    def ready():
        _total, items, _next = store.list_events("dock-1", filters={}, before_id=None, limit=100)
        return items if items and all(e["outcome"] != "open" for e in items) else None

    # Every test stops the gates first: with the worker gone, nothing new trickles in.
    hub = app.extensions["cangyun.gate_hub"]
    eventually(lambda: not hub.running, timeout=30, what="the gate worker to stop")
    return eventually(ready, timeout=30, what="events to settle")


def assert_one_event_per_pallet(app, scene) -> None:
    found = settled_events(app)
    assert sorted(e["sscc"] for e in found) == sorted(p.sscc for p in scene.pallets)
    assert all(e["frames"] >= 2 and e["cameras"] == ["cam-1"] for e in found)
    assert all(e["outcome"] == "held" and e["reason"] == "unexpected" for e in found)


def start_stream(app, url: str) -> None:
    store = app.extensions["cangyun.gate_store"]
    store.set_camera(stream_camera("dock-1", "cam-1", url, SAMPLE_FPS))
    gates.start(app)


def test_an_mp4_over_http_makes_one_event_per_pallet(edge_app, scene, tmp_path):
    clip = write_mp4(scene, tmp_path / "dock.mp4")
    with MediaServer(mp4=clip) as server:
        start_stream(edge_app, f"{server.base_url}/clip.mp4")
        # Played in real time to its end once; then the "camera" is gone and retried.
        eventually(
            lambda: camera_status(edge_app).get("failures", 0) >= 1,
            timeout=scene.duration_s + 30,
            what="the clip to end",
        )
        gates.stop(edge_app)
    status = camera_status(edge_app)
    assert status["kind"] == "stream" and status["dropped"] == 0
    # Sampling took about half the clip's frames; none of the others were decoded.
    assert status["grabbed"] >= scene.frame_count
    assert status["decoded"] < 0.75 * status["grabbed"]
    assert_one_event_per_pallet(edge_app, scene)


def test_an_mjpeg_stream_makes_one_event_per_pallet(edge_app, scene, mjpeg_frames):
    with MediaServer(mjpeg=mjpeg_frames, fps=scene.fps) as server:
        start_stream(edge_app, f"{server.base_url}/stream.mjpg")
        eventually(
            lambda: server.finished, timeout=scene.duration_s + 30, what="the stream to be played"
        )
        eventually(
            lambda: camera_status(edge_app).get("failures", 0) >= 1,
            timeout=30,
            what="the stream to end",
        )
        gates.stop(edge_app)
        assert server.connections >= 1
    assert_one_event_per_pallet(edge_app, scene)


def test_a_camera_that_drops_off_mid_stream_reconnects(edge_app, scene, mjpeg_frames):
    # Cut while the second pallet crosses: its sightings straddle the reconnect.
    second_in_view = next(
        i for i in range(scene.frame_count) if scene.box_x(1, i / scene.fps) is not None
    )
    cut = second_in_view + 8
    with MediaServer(mjpeg=mjpeg_frames, fps=scene.fps, drop_after=cut) as server:
        start_stream(edge_app, f"{server.base_url}/stream.mjpg")
        eventually(
            lambda: server.finished, timeout=scene.duration_s + 30, what="the stream to be played"
        )
        eventually(
            lambda: camera_status(edge_app).get("failures", 0) >= 2,
            timeout=30,
            what="the stream to end",
        )
        gates.stop(edge_app)
        assert server.dropped and server.connections >= 2
    status = camera_status(edge_app)
    assert status["connects"] >= 2 and status["failures"] >= 2
    assert_one_event_per_pallet(edge_app, scene)


class Collector:
    def __init__(self) -> None:
        self.frames: list = []
        self.states: dict = {}

    def submit(self, frame) -> None:
        self.frames.append(frame)

    def report(self, **state) -> None:
        self.states.update(state)


def test_a_camera_that_never_answers_is_retried_with_backoff(edge_app):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel does) and never says a word
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/video.mjpg"
        start_stream(edge_app, url)
        eventually(
            lambda: camera_status(edge_app).get("failures", 0) >= 2, timeout=30, what="two failures"
        )
        status = camera_status(edge_app)
        assert status["state"] in ("retrying", "connecting")
        assert "no video" in status["last_error"] or "no answer" in status["last_error"]
        assert status["received"] == 0
        source = edge_app.extensions[gates.SOURCES].sources()[("dock-1", "cam-1")]
        gates.stop(edge_app)
        eventually(
            lambda: not source.alive, timeout=sources.OPEN_TIMEOUT_S + 10, what="the reader to end"
        )
    finally:
        silent.close()


def test_a_closed_port_is_retried_and_stops_cleanly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once it is closed
    got = Collector()
    camera = stream_camera("dock-1", "cam-9", f"rtsp://127.0.0.1:{port}/stream1", 2.0)
    reader = StreamReader(camera, got.submit, got.report)
    reader.start()
    try:
        eventually(lambda: reader.failures >= 3, timeout=30, what="three failures")
        assert got.states["last_error"] == f"connection refused by 127.0.0.1:{port}"
        assert got.states["state"] in ("retrying", "connecting")
        assert got.frames == []
    finally:
        reader.stop()
    eventually(lambda: not reader.alive, timeout=30, what="the reader to end")
    assert got.states["state"] == "stopped"


def test_passwords_in_stream_urls_are_not_reported():
    got = Collector()
    camera = stream_camera("dock-1", "cam-9", "rtsp://admin:s3cret@127.0.0.1:1/h264", 2.0)
    reader = StreamReader(camera, got.submit, got.report)
    reader.start()
    try:
        eventually(lambda: reader.failures >= 1, timeout=30, what="a failure")
    finally:
        reader.stop()
    assert "s3cret" not in repr(got.states) and got.states["url"].startswith("rtsp://admin:***@")
