"""Offline licences on a real edge: a real SQLite file, the Flask test client, licences
delivered through the real sync agent's downlink handler, and once over a real mosquitto."""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from cangyun import licence as tokens
from cangyun import wire
from cangyun.box_settings import CloudSection, EdgeSettings
from cangyun.licence import Licence
from cangyun.timeutil import utcnow
from edge.app import create_app
from edge.store import Outbox, read_last_seen
from ocr_service.engine import ScanEngine
from sync_agent.agent import SyncAgent
from tests.support import requires

TOKEN = "cy_test-token"
TENANT, WAREHOUSE, DEVICE = "acme", "sh-01", "edge-1"
CLOUD_KEY = Ed25519PrivateKey.from_private_bytes(b"cangyun-licence-test-key-32bytes")
RECEIPT = {"type": "receive", "sku": "A", "qty": 10, "weight_kg": 20}
SHIPMENT = {"type": "ship", "sku": "A", "qty": 1}


# --- the cloud's side, as a test helper ----------------------------------------------------

_serials = iter(range(1, 1_000_000))


def licence_for(
    *,
    key: Ed25519PrivateKey = CLOUD_KEY,
    issued_at: datetime | None = None,
    valid_for: timedelta = timedelta(days=30),
    device: tuple[str, str, str] = (TENANT, WAREHOUSE, DEVICE),
    **changes: Any,
) -> str:
    """A token as the cloud would issue it: professional, with the OCR add-on, unless changed."""
    issued = issued_at or utcnow() - timedelta(minutes=1)
    granted = Licence(
        serial=f"LIC-TEST-{next(_serials):06d}",
        tenant=device[0],
        warehouse=device[1],
        device=device[2],
        edition="professional",
        features=("inbound", "outbound", "task_management"),
        add_ons=("ocr_scanning",),
        inbound_allowed=True,
        valid_until=issued + valid_for,
        issued_at=issued,
        grace_days=7,
    )
    return tokens.issue(replace(granted, **changes), key)


def licence_command(token: str) -> bytes:
    return wire.encode_command(wire.Command("licence", {"token": token}, id="cmd-1"))


# --- fixtures --------------------------------------------------------------------------------


class FakeOcr:
    """Stands in for the OCR models (slow to load); counts how often text was read."""

    name = "fake"

    def __init__(self) -> None:
        self.reads = 0

    def read(self, image: Any) -> list[Any]:
        self.reads += 1
        return []

    def detect(self, image: Any) -> list[Any]:
        return []


@pytest.fixture
def settings(tmp_path):
    base = EdgeSettings()
    return replace(
        base,
        device=replace(base.device, tenant=TENANT, warehouse=WAREHOUSE, device=DEVICE),
        edge=replace(base.edge, data_dir=tmp_path / "edge", api_token=TOKEN),
        cloud=CloudSection(public_key=tokens.public_key_b64(CLOUD_KEY)),
    )


@pytest.fixture
def ocr():
    return FakeOcr()


@pytest.fixture
def app(settings, ocr):
    app = create_app(settings)
    app.extensions["cangyun.scan_engine"] = ScanEngine(ocr_engine=ocr, budget_ms=60_000.0)
    yield app
    app.extensions["cangyun.edge_store"].close()


@pytest.fixture
def client(app):
    with app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        yield client


@pytest.fixture
def agent(settings, app):
    """The real sync agent on the same database file, not connected to any broker."""
    agent = SyncAgent(settings)
    yield agent
    agent.outbox.close()
    agent._lock_file.close()


def deliver(agent: SyncAgent, payload: bytes) -> None:
    """Hand a down/cmd message to the agent exactly as paho would."""
    message = mqtt.MQTTMessage(topic=agent.address.topic(wire.DOWN_CMD).encode())
    message.payload = payload
    agent._on_message(agent.client, None, message)


def install(agent: SyncAgent, token: str) -> None:
    deliver(agent, licence_command(token))


def post(client, body: dict[str, Any], **kwargs: Any):
    return client.post("/api/v1/movements", json=body, **kwargs)


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (320, 200), 255).save(buffer, "PNG")
    return buffer.getvalue()


# --- states and what they allow -------------------------------------------------------------


def test_an_unlicensed_box_refuses_nothing(client, ocr):
    status = client.get("/api/v1/licence").get_json()
    assert status["state"] == "none" and status["enforced"] is False
    assert status["inbound_allowed"] is True and status["ocr_allowed"] is True
    assert post(client, RECEIPT).status_code == 201
    scanned = client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert scanned.status_code == 200 and ocr.reads >= 1
    assert client.get("/api/v1/sync/status").get_json()["licence"]["state"] == "none"


def test_a_valid_licence_allows_receipts_and_is_shown(client, agent):
    token = licence_for()
    install(agent, token)
    assert agent.stats["licence_installed"] == 1
    assert post(client, RECEIPT).status_code == 201
    body = client.get("/api/v1/licence").get_json()
    assert body["state"] == "valid" and body["edition"] == "professional"
    assert body["token"] == token and body["add_ons"] == ["ocr_scanning"]
    assert body["days_left"] in (29, 30) and body["problem"] is None
    assert (body["tenant"], body["warehouse"], body["device"]) == (TENANT, WAREHOUSE, DEVICE)
    summary = client.get("/api/v1/sync/status").get_json()["licence"]
    assert summary["state"] == "valid" and summary["inbound_allowed"] is True
    assert "token" not in summary


def test_quota_exhausted_refuses_receipts_but_goods_still_leave(client, agent):
    install(agent, licence_for())
    assert post(client, RECEIPT).status_code == 201
    install(agent, licence_for(inbound_allowed=False))
    refused = post(client, RECEIPT)
    assert refused.status_code == 403 and error_code(refused) == "quota_exhausted"
    assert refused.get_json()["error"]["details"] == {"licence_state": "valid"}
    for body in (SHIPMENT, {"type": "count", "sku": "A", "qty": 9, "location": None}):
        assert post(client, {k: v for k, v in body.items() if v is not None}).status_code == 201
    assert client.get("/api/v1/stock").status_code == 200
    assert client.get("/api/v1/licence").get_json()["inbound_allowed"] is False


def test_a_retried_receipt_keeps_its_answer_after_the_quota_runs_out(client, agent):
    install(agent, licence_for())
    first = post(client, RECEIPT, headers={"Idempotency-Key": "pda-7-0001"})
    install(agent, licence_for(inbound_allowed=False))
    again = post(client, RECEIPT, headers={"Idempotency-Key": "pda-7-0001"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert post(client, RECEIPT, headers={"Idempotency-Key": "pda-7-0002"}).status_code == 403


def test_within_grace_receipts_work_and_the_status_says_grace(client, agent):
    issued = utcnow() - timedelta(days=33)
    install(agent, licence_for(issued_at=issued, valid_for=timedelta(days=30)))
    assert post(client, RECEIPT).status_code == 201
    summary = client.get("/api/v1/sync/status").get_json()["licence"]
    assert summary["state"] == "grace" and summary["days_left"] in (3, 4)
    assert "grace period" in summary["message"]


def test_expired_past_grace_refuses_receipts_and_ocr_but_not_shipping(client, agent):
    install(agent, licence_for())
    assert post(client, RECEIPT).status_code == 201
    install(agent, licence_for(issued_at=utcnow() - timedelta(days=40)))  # older: ignored
    assert agent.stats["licence_older"] == 1
    # A renewal never came: the box is 38 days past its licence, beyond 7 days of grace.
    store = client.application.extensions["cangyun.edge_store"]
    store.clock = lambda: utcnow() + timedelta(days=38)
    refused = post(client, RECEIPT)
    assert refused.status_code == 403 and error_code(refused) == "licence_expired"
    ocr = client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert ocr.status_code == 403 and error_code(ocr) == "licence_expired"
    assert post(client, SHIPMENT).status_code == 201
    body = client.get("/api/v1/licence").get_json()
    assert (body["state"], body["days_left"], body["add_ons"]) == ("expired", 0, [])


def test_a_clock_set_back_a_day_locks_receipts_as_clock_rollback(client, agent, settings):
    install(agent, licence_for(issued_at=utcnow() - timedelta(days=3)))
    assert post(client, RECEIPT).status_code == 201
    store = client.application.extensions["cangyun.edge_store"]
    seen = read_last_seen(sqlite3.connect(settings.database_path))
    store.clock = lambda: utcnow() - timedelta(days=1)
    refused = post(client, RECEIPT)
    assert refused.status_code == 403 and error_code(refused) == "licence_expired"
    assert refused.get_json()["error"]["details"] == {"licence_state": "clock_rollback"}
    body = client.get("/api/v1/licence").get_json()
    assert body["state"] == "clock_rollback" and body["problem"]["code"] == "clock_rollback"
    assert body["serial"] is not None  # the licence itself is still genuine
    assert post(client, SHIPMENT).status_code == 201  # recorded at the wrong time, but recorded
    # The high-water mark never moved back with the clock.
    assert read_last_seen(sqlite3.connect(settings.database_path)) >= seen
    store.clock = utcnow  # NTP puts the clock right: everything works again
    assert post(client, RECEIPT).status_code == 201


def test_a_tampered_token_is_ignored_and_the_old_licence_stays(client, agent):
    good = licence_for(add_ons=())
    install(agent, good)
    # Grant itself the OCR add-on: swap in another payload and keep the signature.
    head, _, signature = good.split(".")
    richer = licence_for(add_ons=("ocr_scanning",), issued_at=utcnow())
    install(agent, f"{head}.{richer.split('.')[1]}.{signature}")
    install(agent, licence_for(key=Ed25519PrivateKey.generate(), issued_at=utcnow()))
    install(agent, licence_for(device=(TENANT, WAREHOUSE, "edge-2"), issued_at=utcnow()))
    deliver(agent, wire.encode_command(wire.Command("licence", {"token": 42})))
    deliver(agent, b'{"v": 1, "kind": "licence", "data": "cylic1.x.y"}')  # malformed envelope
    assert agent.stats["bad_licence"] == 4 and agent.stats["bad_downlink"] == 1
    body = client.get("/api/v1/licence").get_json()
    assert body["token"] == good and body["add_ons"] == []


def test_ocr_needs_the_add_on_while_barcode_scans_always_work(client, agent, ocr):
    install(agent, licence_for(add_ons=()))
    refused = client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert refused.status_code == 403 and error_code(refused) == "feature_not_in_licence"
    plain = client.post("/api/v1/scans?ocr=0", data=photo(), content_type="image/png")
    assert plain.status_code == 200 and ocr.reads == 0
    typed = client.post("/api/v1/scans?ocr=1", json={"code": "(01)06901234567892"})
    assert typed.status_code == 200  # a typed code never involves OCR
    install(agent, licence_for(issued_at=utcnow()))  # renewed with the add-on
    allowed = client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert allowed.status_code == 200 and ocr.reads >= 1


def test_a_licence_that_no_longer_verifies_is_invalid_and_locks_receipts(tmp_path, settings):
    agent = SyncAgent(settings)
    install(agent, licence_for())
    agent.outbox.close()
    agent._lock_file.close()
    other_key = tokens.public_key_b64(Ed25519PrivateKey.generate())
    rekeyed = replace(settings, cloud=CloudSection(public_key=other_key))
    app = create_app(rekeyed)
    try:
        with app.test_client() as client:
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
            body = client.get("/api/v1/licence").get_json()
            assert body["state"] == "invalid" and body["problem"]["code"] == "bad_signature"
            refused = post(client, RECEIPT)
            assert refused.status_code == 403 and error_code(refused) == "licence_invalid"
            assert client.get("/api/v1/movements").status_code == 200
    finally:
        app.extensions["cangyun.edge_store"].close()


def test_an_edited_licence_row_is_caught(client, agent, settings):
    """Someone with a shell on the box pastes a richer payload into the database."""
    stingy = licence_for(inbound_allowed=False)
    install(agent, stingy)
    head, _, signature = stingy.split(".")
    richer = licence_for(inbound_allowed=True).split(".")[1]
    with sqlite3.connect(settings.database_path) as conn:
        conn.execute("UPDATE licence SET token = ?", (f"{head}.{richer}.{signature}",))
    assert client.get("/api/v1/licence").get_json()["state"] == "invalid"
    assert error_code(post(client, RECEIPT)) == "licence_invalid"


def test_last_seen_follows_movements_and_never_goes_back(client, settings):
    store = client.application.extensions["cangyun.edge_store"]
    ahead = utcnow() + timedelta(days=2)
    store.clock = lambda: ahead
    assert post(client, RECEIPT).status_code == 201
    store.clock = utcnow
    assert post(client, RECEIPT).status_code == 201  # unlicensed: nothing refused
    client.get("/api/v1/licence")
    seen = read_last_seen(sqlite3.connect(settings.database_path))
    assert seen is not None and abs((seen - ahead).total_seconds()) < 0.01


def test_the_migration_upgrades_an_existing_database(tmp_path, settings):
    Outbox(settings.database_path).close()  # creates and migrates
    with sqlite3.connect(settings.database_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"licence", "clock", "movements"} <= names


# --- the whole path over a real broker --------------------------------------------------------


def test_a_licence_published_on_down_cmd_reaches_the_edge(tmp_path: Path):
    requires.mosquitto()
    from cloud_api.billing import signing
    from tests.support.stack import DEVICE as STACK_DEVICE
    from tests.support.stack import TENANT as STACK_TENANT
    from tests.support.stack import WAREHOUSE as STACK_WAREHOUSE
    from tests.support.stack import Stack

    stack = Stack(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    publisher: mqtt.Client | None = None
    try:
        stack.start_broker()
        stack.start("edge")
        stack.start("sync")
        assert stack.edge("GET", "/api/v1/licence").json()["state"] == "none"
        key = signing.load_or_create(stack.cloud_settings.signing_key_file)
        good = licence_for(key=key, device=(STACK_TENANT, STACK_WAREHOUSE, STACK_DEVICE))
        address = wire.DeviceAddress(STACK_TENANT, STACK_WAREHOUSE, STACK_DEVICE)
        publisher = _ingest_client(stack)

        def publish_until(predicate) -> dict[str, Any]:
            # The agent may not have subscribed yet: repeat, installing is idempotent.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                publisher.publish(address.topic(wire.DOWN_CMD), payload, qos=1).wait_for_publish(5)
                time.sleep(0.5)
                body = stack.edge("GET", "/api/v1/licence").json()
                if predicate(body):
                    return body
            raise AssertionError(f"licence never arrived\n{stack.tails()}")

        payload = licence_command(good)
        body = publish_until(lambda b: b["state"] == "valid")
        assert body["token"] == good and body["device"] == STACK_DEVICE
        assert stack.sync_status()["licence"]["state"] == "valid"

        head, _, signature = good.split(".")
        forged = licence_for(key=key, device=(STACK_TENANT, STACK_WAREHOUSE, STACK_DEVICE))
        payload = licence_command(f"{head}.{forged.split('.')[1]}.{signature}")
        log = stack.logs / "sync.log"
        publish_until(lambda b: "bad_signature" in log.read_text(errors="replace"))
        assert stack.edge("GET", "/api/v1/licence").json()["token"] == good
        assert stack.processes["sync"].alive()
    finally:
        if publisher is not None:
            publisher.loop_stop()
            publisher.disconnect()
        stack.stop_all()


def _ingest_client(stack: Any) -> mqtt.Client:
    """Connect as the cloud's ingest account, the one allowed to write every downlink."""
    connected = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"test-ingest-{time.time()}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(stack.cloud_settings.mqtt.username, stack.cloud_settings.mqtt.password)
    client.on_connect = lambda c, u, f, rc, p: None if rc.is_failure else connected.set()
    client.connect("127.0.0.1", stack.ports["broker"])
    client.loop_start()
    assert connected.wait(10), "the ingest account could not connect"
    return client


def test_licence_payloads_are_stored_decoded(agent, settings):
    token = licence_for()
    install(agent, token)
    with sqlite3.connect(settings.database_path) as conn:
        serial, payload = conn.execute("SELECT serial, payload FROM licence").fetchone()
    assert orjson.loads(payload)["serial"] == serial
