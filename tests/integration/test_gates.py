"""Dock gates through the edge app: configuration, pushes, drop folders, events and their
meaning (receipts, shipments, holds), on a real SQLite file with real barcode decoding."""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cangyun.cli import main as cangyun_main
from cangyun.settings import dump_settings
from edge import gates
from edge.gates import outcomes, pipeline, sources, tracker
from edge.gates.model import CameraConfig, folder_camera
from edge.gates.pipeline import Frame, FrameQueue
from edge.gates.sources import FolderWatcher, looks_complete
from edge.gates.store import GateStore, ensure_gate, set_camera_token
from tests.support.gate_media import encode_jpeg, make_pallets, snapshot_jpeg
from tests.support.labels import require_fonts
from tests.support.polling import eventually

GTIN = "06901234567892"


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(tracker, "SETTLE_S", 0.3)
    monkeypatch.setattr(pipeline, "TICK_S", 0.05)
    monkeypatch.setattr(sources, "RELOAD_S", 0.2)


@pytest.fixture(scope="module")
def pallets():
    require_fonts()
    return make_pallets(6, seed=21)


@pytest.fixture(scope="module")
def snapshots(pallets):
    return [snapshot_jpeg(p) for p in pallets]


def add_gate(client, code="dock-1", direction="in", **extra) -> str:
    response = client.post("/api/v1/gates", json={"code": code, "direction": direction, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["camera_token"]


def push(client, jpeg: bytes, gate="dock-1", token=None, camera=None):
    headers = {"Content-Type": "image/jpeg"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    query = f"?camera={camera}" if camera else ""
    return client.post(f"/api/v1/gates/{gate}/frames{query}", data=jpeg, headers=headers)


# The worker settles a pass SETTLE_S (shrunk by ``quick``) after its last sighting and a drop
# folder is polled every 0.1 s; this only bounds a busy CI box.
WAIT_S = 30.0


def events(client, gate="dock-1") -> list[dict]:
    return client.get(f"/api/v1/gates/{gate}/events?limit=1000").get_json()["items"]


def settled_events(client, count: int, gate="dock-1") -> list[dict]:
    def ready():
        found = events(client, gate)
        return found if len(found) >= count and all(e["outcome"] != "open" for e in found) else None

    return eventually(ready, timeout=WAIT_S, what=f"{count} settled events at {gate}")


def movements(client, **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return client.get(f"/api/v1/movements?limit=1000&{query}").get_json()["items"]


# --- configuration --------------------------------------------------------------------------


def test_a_gate_is_created_once_with_a_camera_token_stored_hashed(edge_client, edge_settings):
    response = edge_client.post("/api/v1/gates", json={"code": "dock-1", "direction": "in"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["code"] == "dock-1" and body["direction"] == "in" and body["window_s"] == 60
    token = body["camera_token"]
    assert token.startswith("cyc_") and len(token) > 40
    again = edge_client.post("/api/v1/gates", json={"code": "dock-1", "direction": "out"})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "gate_exists")
    listed = edge_client.get("/api/v1/gates").get_json()
    assert listed["total"] == 1 and "camera_token" not in listed["items"][0]
    with sqlite3.connect(edge_settings.database_path) as conn:
        (stored,) = conn.execute("SELECT token_hash FROM gates").fetchone()
    assert stored != token and len(stored) == 64


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"code": "dock 1", "direction": "in"}, "invalid_code"),
        ({"code": "status", "direction": "in"}, "invalid_code"),
        ({"code": "dock-1", "direction": "sideways"}, "invalid_direction"),
        ({"code": "dock-1", "direction": "in", "window_s": 0}, "invalid_field"),
        ({"code": "dock-1", "direction": "in", "colour": "red"}, "unknown_field"),
    ],
)
def test_bad_gates_are_refused(edge_client, body, code):
    response = edge_client.post("/api/v1/gates", json=body)
    assert (response.status_code, response.get_json()["error"]["code"]) == (422, code)


def test_expected_lines_are_checked_and_listed(edge_client):
    add_gate(edge_client)
    ok = edge_client.post(
        "/api/v1/gates/dock-1/expected",
        json={"sscc": "069123456789012340", "gtin": GTIN, "qty": 40, "reference": "ASN-7"},
    )
    assert ok.status_code == 201
    assert ok.get_json() | {"created_at": None} == ok.get_json() | {
        "gate": "dock-1",
        "direction": "in",
        "status": "open",
        "gtin": "06901234567892",
        "created_at": None,
    }
    for body, code in [
        ({"qty": 1}, "missing_item"),
        ({"sscc": "069123456789012341", "qty": 1}, "invalid_sscc"),
        ({"gtin": GTIN, "qty": 0}, "invalid_quantity"),
        ({"gtin": GTIN, "qty": 1, "direction": "out"}, "invalid_direction"),
    ]:
        response = edge_client.post("/api/v1/gates/dock-1/expected", json=body)
        assert (response.status_code, response.get_json()["error"]["code"]) == (422, code)
    assert (
        edge_client.post("/api/v1/gates/nope/expected", json={"gtin": GTIN, "qty": 1}).status_code
        == 404
    )
    listed = edge_client.get("/api/v1/gates/dock-1/expected").get_json()
    assert listed["total"] == 1 and listed["items"][0]["reference"] == "ASN-7"


def test_cli_configures_gates_and_cameras(tmp_path, edge_settings):
    config = tmp_path / "edge.toml"
    config.write_text(dump_settings(edge_settings), encoding="utf-8")
    runner = CliRunner()
    added = runner.invoke(
        cangyun_main,
        ["edge", "gate", "add", "--config", str(config), "dock-1", "--direction", "in"],
    )
    assert added.exit_code == 0, added.output
    import orjson

    token = orjson.loads(added.output)["camera_token"]
    assert token.startswith("cyc_")
    twice = runner.invoke(
        cangyun_main,
        ["edge", "gate", "add", "--config", str(config), "dock-1", "--direction", "in"],
    )
    assert twice.exit_code == 1 and "exists" in twice.output
    base = ["edge", "gate", "camera", "--config", str(config), "dock-1"]
    stream = runner.invoke(
        cangyun_main, [*base, "cam-1", "--stream", "rtsp://10.0.0.21/h264", "--fps", "2"]
    )
    assert stream.exit_code == 0, stream.output
    drop = tmp_path / "ftp" / "cam-2"
    folder = runner.invoke(
        cangyun_main, [*base, "cam-2", "--folder", str(drop), "--after", "delete"]
    )
    assert folder.exit_code == 0, folder.output
    assert drop.is_dir()
    bad = runner.invoke(cangyun_main, [*base, "cam-3", "--stream", "ftp://x"])
    assert bad.exit_code == 2
    listed = orjson.loads(
        runner.invoke(cangyun_main, ["edge", "gate", "list", "--config", str(config)]).output
    )
    assert [(c["code"], c["kind"]) for c in listed[0]["cameras"]] == [
        ("cam-1", "stream"),
        ("cam-2", "folder"),
    ]
    renewed = runner.invoke(
        cangyun_main, ["edge", "gate", "token", "--config", str(config), "dock-1"]
    )
    store = GateStore(edge_settings.database_path)
    try:
        assert store.gate_for_token(token) is None
        assert store.gate_for_token(orjson.loads(renewed.output)["camera_token"]) == "dock-1"
    finally:
        store.close()


def test_ensure_gate_is_idempotent_and_a_known_token_can_be_set(edge_settings):
    token = ensure_gate(edge_settings.database_path, "dock-1", "in")
    assert token is not None and token.startswith("cyc_")
    assert ensure_gate(edge_settings.database_path, "dock-1", "in") is None
    assert (
        set_camera_token(edge_settings.database_path, "dock-1", "cyc_demo-token")
        == "cyc_demo-token"
    )
    store = GateStore(edge_settings.database_path)
    try:
        assert store.gate_for_token("cyc_demo-token") == "dock-1"
        assert store.gate_for_token(token) is None
    finally:
        store.close()


# --- pushes ---------------------------------------------------------------------------------


def test_camera_token_may_push_to_its_own_gate_only(edge_client, snapshots):
    token = add_gate(edge_client)
    other = add_gate(edge_client, "dock-2")
    assert push(edge_client, snapshots[0], token=token).status_code == 202
    assert push(edge_client, snapshots[0], token=other).status_code == 401
    assert push(edge_client, snapshots[0], token="cyc_wrong").status_code == 401
    assert push(edge_client, snapshots[0]).status_code == 202  # the device token
    # A camera token reads nothing.
    listing = edge_client.get(
        "/api/v1/gates/dock-1/events", headers={"Authorization": f"Bearer {token}"}
    )
    assert listing.status_code == 401
    assert push(edge_client, snapshots[0], gate="dock-9").status_code == 404


def test_push_answers_202_with_what_was_queued(edge_client, snapshots):
    add_gate(edge_client)
    response = push(edge_client, snapshots[0], camera="cam-7")
    assert response.status_code == 202
    body = response.get_json()
    assert (body["gate"], body["camera"], body["width"], body["height"]) == (
        "dock-1",
        "cam-7",
        1280,
        720,
    )
    assert body["queued"] is True
    multipart = edge_client.post(
        "/api/v1/gates/dock-1/frames",
        data={"image": (io.BytesIO(snapshots[1]), "frame.jpg")},
        content_type="multipart/form-data",
    )
    assert multipart.status_code == 202


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"", "image/jpeg", 400, "empty_image"),
        (b"GIF89a not really", "image/gif", 415, "not_an_image"),
        (b"%PDF-1.7 a delivery note", "application/pdf", 415, "not_an_image"),
    ],
)
def test_bad_pushes_get_the_engines_error(edge_client, data, content_type, status, code):
    add_gate(edge_client)
    response = edge_client.post(
        "/api/v1/gates/dock-1/frames", data=data, headers={"Content-Type": content_type}
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_a_truncated_jpeg_push_is_corrupt(edge_client, snapshots):
    add_gate(edge_client)
    response = push(edge_client, snapshots[0][: len(snapshots[0]) // 2])
    assert (response.status_code, response.get_json()["error"]["code"]) == (422, "corrupt_image")


class CountingStream(io.RawIOBase):
    """A 100 MB upload body made on the fly, counting what the server reads of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # the test client measures the body by seeking to its end

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[
            whence
        ] + offset
        return self.position

    def readinto(self, buffer) -> int:
        size = max(0, min(len(buffer), 1 << 20, self.size - self.position))
        buffer[:size] = b"\xff" * size
        self.position += size
        self.read_bytes += size
        return size


def test_a_100_mb_push_is_refused_without_being_read(edge_client):
    add_gate(edge_client)
    body = CountingStream(100 * 1024 * 1024)
    response = edge_client.post(
        "/api/v1/gates/dock-1/frames", input_stream=body, headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] in ("image_too_large", "payload_too_large")
    assert body.read_bytes < 2 * 1024 * 1024


def test_each_pushed_snapshot_pallet_makes_one_event(edge_client, pallets, snapshots):
    add_gate(edge_client)
    for jpeg in snapshots[:3]:
        assert push(edge_client, jpeg).status_code == 202
    found = settled_events(edge_client, 3)
    assert sorted(e["sscc"] for e in found) == sorted(p.sscc for p in pallets[:3])
    assert all(e["kind"] == "sscc" and e["identity"] == e["sscc"] for e in found)
    assert all(e["cameras"] == ["push"] and e["frames"] == 1 for e in found)
    assert [e["id"] for e in found] == sorted((e["id"] for e in found), reverse=True)


def test_the_same_pallet_pushed_five_times_is_one_event(edge_client, edge_app, pallets, snapshots):
    add_gate(edge_client)
    for _ in range(5):
        assert push(edge_client, snapshots[0]).status_code == 202
    eventually(
        lambda: edge_client.get("/api/v1/gates/dock-1/status").get_json()["decoded"] == 5,
        timeout=WAIT_S,
        what="5 frames decoded",
    )
    (event,) = settled_events(edge_client, 1)
    assert event["sscc"] == pallets[0].sscc and event["frames"] == 5
    # Nothing later makes a second event: once the worker has stopped (it finishes the frame
    # and tick in hand; only a frame's sighting opens a pass) the count is final.
    hub = edge_app.extensions[gates.HUB]
    hub.stop()
    assert not hub.running
    assert len(events(edge_client)) == 1


def test_event_pages_are_newest_first_with_a_cursor(edge_client, snapshots):
    add_gate(edge_client)
    for jpeg in snapshots[:3]:
        push(edge_client, jpeg)
    settled_events(edge_client, 3)
    first = edge_client.get("/api/v1/gates/dock-1/events?limit=2").get_json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next"]
    rest = edge_client.get(f"/api/v1/gates/dock-1/events?limit=2&cursor={first['next']}").get_json()
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3 and rest["next"] is None


# --- what events mean -----------------------------------------------------------------------


def test_an_expected_pallet_is_received_once(edge_client, edge_app, pallets, snapshots):
    add_gate(edge_client)
    pallet = pallets[0]
    line = edge_client.post(
        "/api/v1/gates/dock-1/expected",
        json={
            "sscc": pallet.sscc,
            "gtin": GTIN,
            "lot": "L2401",
            "qty": 40,
            "weight_kg": 480.5,
            "customer": "acme",
            "reference": "ASN-1",
        },
    ).get_json()
    push(edge_client, snapshots[0])
    (event,) = settled_events(edge_client, 1)
    assert (event["outcome"], event["expected_id"]) == ("received", line["id"])
    (movement,) = movements(edge_client, sscc=pallet.sscc)
    assert (movement["type"], movement["gtin"], movement["lot"], movement["qty"]) == (
        "receive",
        GTIN,
        "L2401",
        40,
    )
    assert (movement["weight_kg"], movement["customer"], movement["id"]) == (
        480.5,
        "acme",
        event["movement_id"],
    )
    assert movement["occurred_at"] == event["first_seen"]
    done = edge_client.get("/api/v1/gates/dock-1/expected").get_json()["items"][0]
    assert (done["status"], done["event_id"], done["movement_id"]) == (
        "received",
        event["id"],
        movement["id"],
    )

    # The box dies after the movement but before the event is closed: processing repeats.
    with sqlite3.connect(edge_app.extensions["cangyun.edge_settings"].database_path) as conn:
        conn.execute("UPDATE gate_events SET outcome = 'open', movement_id = NULL")
    store = edge_app.extensions["cangyun.gate_store"]
    edge = edge_app.extensions["cangyun.edge_store"]
    again = outcomes.settle_event(store, edge, event["id"])
    outcomes.settle_event(store, edge, event["id"])
    assert again["outcome"] == "received" and again["movement_id"] == movement["id"]
    assert len(movements(edge_client, sscc=pallet.sscc)) == 1
    # The pallet seen again later (after its window) is a duplicate, not a second receipt.
    duplicate = store.open_event("dock-1", "in", _pass_of(pallet.sscc))
    assert outcomes.settle_event(store, edge, duplicate)["outcome"] == "duplicate"
    assert len(movements(edge_client, sscc=pallet.sscc)) == 1


def _pass_of(sscc: str):
    now = time.time()
    return tracker.PalletPass(0, "sscc", sscc, None, None, None, now, now, 2, ("cam-1",))


def test_a_gtin_line_takes_the_gtin_read_off_the_label(edge_app, edge_client):
    add_gate(edge_client)
    edge_client.post(
        "/api/v1/gates/dock-1/expected", json={"gtin": GTIN, "lot": "L1", "qty": 12}
    ).get_json()
    store = edge_app.extensions["cangyun.gate_store"]
    edge = edge_app.extensions["cangyun.edge_store"]
    now = time.time()
    passage = tracker.PalletPass(0, "gtin", None, GTIN, "L1", None, now, now, 2, ("cam-1",))
    event = outcomes.settle_event(store, edge, store.open_event("dock-1", "in", passage))
    assert event["outcome"] == "received" and event["identity"] == f"(01){GTIN}(10)L1"
    assert movements(edge_client, gtin=GTIN)[0]["qty"] == 12


def test_an_unexpected_pallet_is_held_with_an_alert_and_can_be_accepted(
    edge_client, pallets, snapshots
):
    add_gate(edge_client)
    push(edge_client, snapshots[1])
    (event,) = settled_events(edge_client, 1)
    assert (event["outcome"], event["reason"]) == ("held", "unexpected")
    alerts = edge_client.get("/api/v1/gates/alerts").get_json()
    assert alerts["total"] == 1
    assert alerts["items"][0]["kind"] == "unexpected_inbound"
    assert pallets[1].sscc in alerts["items"][0]["message"]
    held = edge_client.get("/api/v1/gates/dock-1/held").get_json()
    assert held["total"] == 1 and held["items"][0]["event"]["id"] == event["id"]
    hold_id = held["items"][0]["id"]
    assert movements(edge_client) == []

    if event["gtin"] is None:  # only the SSCC was read off the label: the operator says more
        missing = edge_client.post(f"/api/v1/gates/dock-1/held/{hold_id}/accept", json={"qty": 30})
        assert (missing.status_code, missing.get_json()["error"]["code"]) == (422, "missing_item")
    accepted = edge_client.post(
        f"/api/v1/gates/dock-1/held/{hold_id}/accept",
        json={"qty": 30, "gtin": GTIN, "customer": "acme", "note": "paperwork late"},
    )
    assert accepted.status_code == 200, accepted.get_json()
    body = accepted.get_json()
    assert body["status"] == "accepted" and body["note"] == "paperwork late"
    (movement,) = movements(edge_client)
    assert (movement["type"], movement["qty"], movement["customer"], movement["sscc"]) == (
        "receive",
        30,
        "acme",
        pallets[1].sscc,
    )
    again = edge_client.post(f"/api/v1/gates/dock-1/held/{hold_id}/accept", json={"qty": 30})
    assert again.status_code == 200 and len(movements(edge_client)) == 1
    rejected = edge_client.post(f"/api/v1/gates/dock-1/held/{hold_id}/reject")
    assert (rejected.status_code, rejected.get_json()["error"]["code"]) == (409, "hold_resolved")
    assert events(edge_client)[0]["outcome"] == "accepted"
    assert edge_client.get("/api/v1/gates/dock-1/held").get_json()["total"] == 0
    assert edge_client.get("/api/v1/gates/dock-1/held?status=all").get_json()["total"] == 1


def test_a_rejected_pallet_records_nothing(edge_client, snapshots):
    add_gate(edge_client)
    push(edge_client, snapshots[2])
    settled_events(edge_client, 1)
    hold_id = edge_client.get("/api/v1/gates/dock-1/held").get_json()["items"][0]["id"]
    response = edge_client.post(
        f"/api/v1/gates/dock-1/held/{hold_id}/reject", json={"note": "wrong dock"}
    )
    assert response.status_code == 200 and response.get_json()["status"] == "rejected"
    assert events(edge_client)[0]["outcome"] == "rejected"
    assert movements(edge_client) == []
    assert edge_client.post("/api/v1/gates/dock-1/held/999/reject").status_code == 404
    assert edge_client.post("/api/v1/gates/dock-1/held/x/accept").status_code == 404


def test_outbound_ships_expected_pallets_when_stock_allows(edge_client, pallets, snapshots):
    add_gate(edge_client, "dock-9", "out")
    stock = {"type": "receive", "gtin": GTIN, "qty": 50, "lot": "A1", "customer": "acme"}
    edge_client.post("/api/v1/movements", json=stock | {"weight_kg": 500})
    shipped_line = {"sscc": pallets[3].sscc, "gtin": GTIN, "lot": "A1", "qty": 20}
    short_line = {"sscc": pallets[4].sscc, "gtin": GTIN, "lot": "A1", "qty": 40}
    for line in (shipped_line, short_line):
        assert edge_client.post("/api/v1/gates/dock-9/expected", json=line).status_code == 201
    push(edge_client, snapshots[3], gate="dock-9")
    (shipped,) = settled_events(edge_client, 1, gate="dock-9")
    assert shipped["outcome"] == "shipped" and shipped["direction"] == "out"
    (ship,) = movements(edge_client, type="ship")
    assert (ship["qty"], ship["customer"], ship["weight_kg"], ship["sscc"]) == (
        20,
        "acme",
        200.0,
        pallets[3].sscc,
    )

    # 30 left; the next pallet wants 40: held with the reason, alerted, nothing shipped.
    push(edge_client, snapshots[4], gate="dock-9")
    short = settled_events(edge_client, 2, gate="dock-9")[0]
    assert (short["outcome"], short["reason"]) == ("held", "insufficient_stock")
    alert = edge_client.get("/api/v1/gates/alerts?gate=dock-9").get_json()["items"][0]
    assert alert["kind"] == "insufficient_stock"
    (hold,) = edge_client.get("/api/v1/gates/dock-9/held").get_json()["items"]
    assert hold["expected"]["status"] == "held"
    refused = edge_client.post(f"/api/v1/gates/dock-9/held/{hold['id']}/accept")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (409, "insufficient_stock")
    # The operator ships what is there.
    accepted = edge_client.post(f"/api/v1/gates/dock-9/held/{hold['id']}/accept", json={"qty": 30})
    assert accepted.status_code == 200
    assert sorted(m["qty"] for m in movements(edge_client, type="ship")) == [20, 30]
    line = edge_client.get("/api/v1/gates/dock-9/expected?status=shipped").get_json()
    assert line["total"] == 2


def test_an_unexpected_outbound_pallet_is_held(edge_client, snapshots):
    add_gate(edge_client, "dock-9", "out")
    push(edge_client, snapshots[5], gate="dock-9")
    (event,) = settled_events(edge_client, 1, gate="dock-9")
    assert event["outcome"] == "held"
    assert edge_client.get("/api/v1/gates/alerts").get_json()["items"][0]["kind"] == (
        "unexpected_outbound"
    )


def test_a_gate_for_both_directions_goes_by_what_is_expected(edge_client, pallets, snapshots):
    add_gate(edge_client, "dock-5", "both")
    assert (
        edge_client.post(
            "/api/v1/gates/dock-5/expected", json={"sscc": pallets[0].sscc, "gtin": GTIN, "qty": 5}
        ).status_code
        == 422
    )  # which way? a both gate must be told
    edge_client.post(
        "/api/v1/gates/dock-5/expected",
        json={"sscc": pallets[0].sscc, "gtin": GTIN, "qty": 5, "direction": "in"},
    )
    edge_client.post(
        "/api/v1/gates/dock-5/expected",
        json={"sscc": pallets[1].sscc, "gtin": GTIN, "qty": 5, "direction": "out"},
    )
    push(edge_client, snapshots[0], gate="dock-5")
    settled_events(edge_client, 1, gate="dock-5")
    push(edge_client, snapshots[1], gate="dock-5")
    push(edge_client, snapshots[2], gate="dock-5")
    found = {e["sscc"]: e for e in settled_events(edge_client, 3, gate="dock-5")}
    assert (found[pallets[0].sscc]["outcome"], found[pallets[0].sscc]["direction"]) == (
        "received",
        "in",
    )
    assert (found[pallets[1].sscc]["outcome"], found[pallets[1].sscc]["direction"]) == (
        "shipped",
        "out",
    )
    unexpected = found[pallets[2].sscc]
    assert (unexpected["outcome"], unexpected["direction"]) == ("held", "both")
    hold_id = unexpected["hold_id"]
    which_way = edge_client.post(
        f"/api/v1/gates/dock-5/held/{hold_id}/accept", json={"qty": 1, "gtin": GTIN}
    )
    assert which_way.get_json()["error"]["code"] == "missing_field"
    assert (
        edge_client.get("/api/v1/gates/alerts").get_json()["items"][0]["kind"] == "unexpected_goods"
    )


def test_a_restarted_box_settles_events_left_open(make_edge_app, edge_settings, snapshots):
    bearer = f"Bearer {edge_settings.edge.api_token}"
    first = make_edge_app()
    with first.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = bearer
        add_gate(client)
    store = first.extensions["cangyun.gate_store"]
    event_id = store.open_event("dock-1", "in", _pass_of("069123456789012340"))
    # The box goes down with the event open (make_edge_app closing it again is harmless).
    gates.close(first)
    first.extensions["cangyun.operators"].close()
    first.extensions["cangyun.edge_store"].close()

    second = make_edge_app()
    gates.start(second)
    with second.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = bearer
        (event,) = settled_events(client, 1)
        assert event["id"] == event_id and event["outcome"] == "held"


# --- load -----------------------------------------------------------------------------------


def test_the_queue_drops_its_oldest_frames():
    queue = FrameQueue(max_frames=3, max_bytes=10**9)
    frames = [Frame("g", "c", np.zeros((2, 2), np.uint8), float(i)) for i in range(5)]
    dropped = [d.at for f in frames for d in queue.put(f)]
    assert dropped == [0.0, 1.0]
    assert [queue.get(0).at for _ in range(3)] == [2.0, 3.0, 4.0]
    assert queue.get(0.01) is None
    by_bytes = FrameQueue(max_frames=10, max_bytes=10)
    assert by_bytes.put(frames[0]) == [] and by_bytes.put(frames[1]) == []
    assert [d.at for d in by_bytes.put(frames[2])] == [0.0]


def test_a_busy_worker_drops_frames_never_events(
    edge_client, edge_app, monkeypatch, pallets, snapshots
):
    add_gate(edge_client)
    hub = edge_app.extensions["cangyun.gate_hub"]
    hub.queue = FrameQueue(4, pipeline.QUEUE_MAX_BYTES)
    busy, release = threading.Event(), threading.Event()
    real_decode = pipeline.decode

    def slow_decode(*args, **kwargs):
        busy.set()
        release.wait(30)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(pipeline, "decode", slow_decode)
    assert push(edge_client, snapshots[0], camera="cam-1").status_code == 202
    assert busy.wait(30)
    # 11 more while the worker is stuck on the first: only the newest 4 can wait.
    for index in range(1, 12):
        assert push(edge_client, snapshots[index % 6], camera="cam-1").status_code == 202
    status = edge_client.get("/api/v1/gates/dock-1/status").get_json()
    assert (status["received"], status["dropped"], status["queue"]["waiting"]) == (12, 7, 4)
    release.set()

    def camera():
        return edge_client.get("/api/v1/gates/dock-1/status").get_json()["cameras"][0]

    eventually(lambda: camera()["decoded"] == 5, timeout=WAIT_S, what="5 frames decoded")
    assert (camera()["camera"], camera()["received"], camera()["dropped"]) == ("cam-1", 12, 7)
    # Frames 1-7 were dropped; frame 0 and frames 8-11 (pallets 2-5) all made their events.
    found = settled_events(edge_client, 5)
    assert sorted(e["sscc"] for e in found) == sorted(p.sscc for p in (pallets[0], *pallets[2:6]))
    summary = edge_client.get("/api/v1/gates/status").get_json()
    assert summary["dropped"] == 7
    assert summary["gates"] == [{"gate": "dock-1", "received": 12, "decoded": 5, "dropped": 7}]


# --- drop folders ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collector:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.states: dict = {}

    def submit(self, frame: Frame) -> None:
        self.frames.append(frame)

    def report(self, **state) -> None:
        self.states.update(state)


def watcher(folder: Path, after="archive", poll_s=1.0) -> tuple[FolderWatcher, Collector, Clock]:
    collector, clock = Collector(), Clock()
    camera = folder_camera("dock-1", "cam-2", str(folder), after, poll_s)
    return FolderWatcher(camera, collector.submit, collector.report, clock=clock), collector, clock


def test_a_file_is_taken_once_and_only_when_complete(tmp_path, snapshots):
    drop = tmp_path / "drop"
    drop.mkdir()
    folder, got, clock = watcher(drop)
    jpeg = snapshots[0]
    target = drop / "IMG_0001.jpg"
    target.write_bytes(jpeg[: len(jpeg) // 2])
    assert folder.poll() == []
    clock.now += 5  # the upload stalls for longer than a poll: still not taken
    assert folder.poll() == [] and folder.poll() == []
    with open(target, "ab") as handle:
        handle.write(jpeg[len(jpeg) // 2 :])
    clock.now += 1
    assert folder.poll() == []  # changed since the last look
    clock.now += 1
    assert folder.poll() == ["IMG_0001.jpg"]
    assert len(got.frames) == 1 and got.frames[0].gray.shape == (720, 1280)
    assert got.frames[0].snapshot and got.frames[0].source == "folder"
    assert not target.exists() and (drop / "archive" / "IMG_0001.jpg").read_bytes() == jpeg
    clock.now += 1
    assert folder.poll() == [] and len(got.frames) == 1


def test_files_are_deleted_or_rejected_with_a_reason(tmp_path, snapshots):
    drop = tmp_path / "drop"
    drop.mkdir()
    folder, got, clock = watcher(drop, after="delete")
    (drop / "good.jpg").write_bytes(snapshots[0])
    (drop / "notes.txt").write_text("not a picture")
    (drop / ".pure-ftpd-upload.1.jpg").write_bytes(snapshots[1][:100])
    (drop / "upload.jpg.part").write_bytes(snapshots[1])
    for _ in range(3):
        folder.poll()
        clock.now += 1
    assert sorted(p.name for p in drop.iterdir()) == [
        ".pure-ftpd-upload.1.jpg",
        "rejected",
        "upload.jpg.part",
    ]
    assert len(got.frames) == 1
    reason = (drop / "rejected" / "notes.txt.reason.txt").read_text()
    assert reason.startswith("not_an_image:")
    assert got.states["rejected"] == 1 and got.states["last_rejected"] == "notes.txt: not_an_image"
    # The FTP client renames its temporary file into place: now it is taken.
    (drop / "upload.jpg.part").rename(drop / "upload.jpg")
    for _ in range(2):
        folder.poll()
        clock.now += 1
    assert len(got.frames) == 2 and not (drop / "upload.jpg").exists()


def test_a_corrupt_image_is_rejected_after_the_grace_and_never_retried(tmp_path, snapshots):
    drop = tmp_path / "drop"
    drop.mkdir()
    folder, got, clock = watcher(drop)
    # An upload cut off for good: no end marker, and it never changes again.
    (drop / "broken.jpg").write_bytes(snapshots[0][: len(snapshots[0]) // 3])
    for _ in range(5):
        folder.poll()
        clock.now += 1
    assert (drop / "broken.jpg").exists()  # maybe the camera is still writing it
    clock.now += sources.INCOMPLETE_GRACE_S
    folder.poll()
    assert not (drop / "broken.jpg").exists() and got.frames == []
    assert (drop / "rejected" / "broken.jpg.reason.txt").read_text().startswith("corrupt_image")
    clock.now += 1
    assert folder.poll() == [] and got.states["rejected"] == 1


def test_end_markers_tell_a_finished_picture(tmp_path):
    jpeg = encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    for number, (data, complete) in enumerate(
        [(jpeg, True), (jpeg[:-2], False), (jpeg + b"\x00" * 16, True), (b"plain text", True)]
    ):
        path = tmp_path / f"{number}.jpg"
        path.write_bytes(data)
        assert looks_complete(path, len(data)) is complete


def test_a_slowly_written_drop_folder_feeds_events(
    tmp_path, monkeypatch, edge_app, edge_client, pallets, snapshots
):
    add_gate(edge_client)
    drop = tmp_path / "ftp"
    drop.mkdir()
    judged: list[tuple[str, int, bool]] = []  # each stable file the watcher looked into

    def judging(path: Path, size: int) -> bool:
        complete = looks_complete(path, size)
        judged.append((path.name, size, complete))
        return complete

    monkeypatch.setattr(sources, "looks_complete", judging)
    store = edge_app.extensions["cangyun.gate_store"]
    store.set_camera(folder_camera("dock-1", "cam-ftp", str(drop), "archive", 0.1))
    gates.start(edge_app)

    uploads = {f"cam-ftp-{i}.jpg": snapshots[i] for i in range(3)}
    with ExitStack() as open_files:
        handles = {name: open_files.enter_context(open(drop / name, "wb")) for name in uploads}
        for name, data in uploads.items():
            handles[name].write(data[: len(data) // 2])
            handles[name].flush()
        # Three uploads stall half way until the watcher has seen each stable and unfinished.
        stalled = {(name, len(data) // 2, False) for name, data in uploads.items()}
        eventually(
            lambda: stalled <= set(judged),
            timeout=WAIT_S,
            what="the watcher to find each half-written file stable but unfinished",
            context=lambda: f"judged: {judged}",
        )
        assert list((drop / "archive").glob("*")) == []  # none was taken half-written
        for name, data in uploads.items():
            handles[name].write(data[len(data) // 2 :])
    found = settled_events(edge_client, 3)
    assert sorted(e["sscc"] for e in found) == sorted(p.sscc for p in pallets[:3])
    assert all(e["cameras"] == ["cam-ftp"] for e in found)
    eventually(
        lambda: len(list((drop / "archive").iterdir())) == 3, timeout=WAIT_S, what="3 archived"
    )
    archived = sorted((drop / "archive").iterdir())
    assert [p.read_bytes() for p in archived] == snapshots[:3]
    assert not (drop / "rejected").exists()
    status = edge_client.get("/api/v1/gates/dock-1/status").get_json()
    (camera,) = status["cameras"]
    assert (camera["kind"], camera["received"], camera["state"], camera["taken"]) == (
        "folder",
        3,
        "watching",
        3,
    )


def test_status_of_a_gate(edge_client):
    add_gate(edge_client)
    body = edge_client.get("/api/v1/gates/dock-1/status").get_json()
    assert body["gate"] == "dock-1" and body["direction"] == "in"
    assert body["queue"]["capacity"] == pipeline.QUEUE_FRAMES and body["cameras"] == []
    assert edge_client.get("/api/v1/gates/dock-7/status").status_code == 404
    assert edge_client.get("/api/v1/gates/status").get_json()["dropped"] == 0


def test_camera_configs_compare_by_value():
    # GateSources restarts a source only when its configuration really changed.
    one = CameraConfig("dock-1", "cam-1", "stream", url="rtsp://x/1", fps=2.0)
    assert one == CameraConfig("dock-1", "cam-1", "stream", url="rtsp://x/1", fps=2.0)
    assert one != replace(one, fps=3.0)


def test_container_numbers_are_read_by_ocr_only_where_the_gate_asks(
    edge_client, edge_app, snapshots
):
    add_gate(edge_client, "yard-1", "in", ocr_containers=True)
    add_gate(edge_client, "dock-1", "in")
    hub = edge_app.extensions["cangyun.gate_hub"]
    calls = []

    def read_text(gray):
        calls.append(gray.shape)
        return ["MAERSK", "CSQU 305438", "3", "22G1"]  # the number painted over two lines

    hub.read_text = read_text
    push(edge_client, snapshots[0], gate="dock-1")
    settled_events(edge_client, 1, gate="dock-1")
    assert calls == []
    push(edge_client, snapshots[0], gate="yard-1")
    found = {e["kind"]: e for e in settled_events(edge_client, 2, gate="yard-1")}
    assert (found["container"]["identity"], found["container"]["outcome"]) == (
        "CSQU3054383",
        "logged",
    )
    assert found["sscc"]["outcome"] == "held" and calls == [(720, 1280)]


def test_a_receipt_the_licence_refuses_is_held_until_the_licence_allows_it(
    edge_settings, make_edge_app
):
    """Gate receipts answer to the box's licence like API receipts: a used-up quota holds the
    pallet with a quota_exhausted alert; after renewal the held pallet can be accepted."""
    from datetime import timedelta

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cangyun import licence as tokens
    from cangyun.box_settings import CloudSection
    from cangyun.licence import Licence
    from cangyun.timeutil import utcnow
    from edge import licence
    from edge.store import Outbox

    key = Ed25519PrivateKey.generate()
    settings = replace(edge_settings, cloud=CloudSection(public_key=tokens.public_key_b64(key)))
    app = make_edge_app(settings)
    edge = app.extensions["cangyun.edge_store"]
    store = app.extensions["cangyun.gate_store"]
    admit = app.extensions["cangyun.gate_hub"].admit

    def install(serial: str, inbound_allowed: bool, minutes_ago: int) -> None:
        """As the sync agent does with a token from down/cmd."""
        issued = utcnow() - timedelta(minutes=minutes_ago)
        granted = Licence(
            serial=serial,
            tenant="acme",
            warehouse="sh-01",
            device="edge-1",
            edition="professional",
            features=("inbound", "outbound"),
            add_ons=(),
            inbound_allowed=inbound_allowed,
            valid_until=issued + timedelta(days=30),
            issued_at=issued,
            grace_days=7,
        )
        outbox = Outbox(settings.database_path)
        try:
            licence.install_token(
                outbox,
                tokens.issue(granted, key),
                public_key=settings.cloud.public_key,
                device=licence.device_of(settings),
                now=utcnow(),
            )
        finally:
            outbox.close()

    with app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.edge.api_token}"
        add_gate(client)
        client.post("/api/v1/gates/dock-1/expected", json={"gtin": GTIN, "qty": 12})
        install("LIC-1", inbound_allowed=False, minutes_ago=10)
        now = time.time()
        passage = tracker.PalletPass(0, "gtin", None, GTIN, None, None, now, now, 2, ("c",))
        event = outcomes.settle_event(store, edge, store.open_event("dock-1", "in", passage), admit)
        assert (event["outcome"], event["reason"]) == ("held", "quota_exhausted")
        assert movements(client) == []
        kinds = [a["kind"] for a in client.get("/api/v1/gates/alerts").get_json()["items"]]
        assert kinds == ["quota_exhausted"]
        hold_id = client.get("/api/v1/gates/dock-1/held").get_json()["items"][0]["id"]
        refused = client.post(f"/api/v1/gates/dock-1/held/{hold_id}/accept", json={})
        assert (refused.status_code, refused.get_json()["error"]["code"]) == (
            403,
            "quota_exhausted",
        )
        assert movements(client) == []

        install("LIC-2", inbound_allowed=True, minutes_ago=1)  # the renewal arrives
        accepted = client.post(f"/api/v1/gates/dock-1/held/{hold_id}/accept", json={})
        assert accepted.status_code == 200, accepted.get_json()
        (movement,) = movements(client)
        assert (movement["type"], movement["gtin"], movement["qty"]) == ("receive", GTIN, 12)
