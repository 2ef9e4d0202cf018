"""Offline licences on a real edge: a real SQLite file, the Flask test client, licences
delivered through the real sync agent's downlink handler, and once over a real mosquitto."""

from __future__ import annotations

import io
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from cangyun import licence as tokens
from cangyun import wire
from cangyun.box_settings import CloudSection
from cangyun.licence import Licence
from cangyun.timeutil import utcnow
from edge.store import Outbox, read_last_seen
from ocr_service.engine import ScanEngine
from sync_agent.agent import SyncAgent
from tests.support import requires
from tests.support.polling import eventually

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
def edge_settings(edge_settings):
    """The box of tests/conftest.py (acme, sh-01, edge-1), trusting the test's cloud key."""
    assert (edge_settings.device.tenant, edge_settings.device.device) == (TENANT, DEVICE)
    return replace(edge_settings, cloud=CloudSection(public_key=tokens.public_key_b64(CLOUD_KEY)))


@pytest.fixture
def ocr():
    return FakeOcr()


@pytest.fixture
def edge_app(edge_app, ocr):
    edge_app.extensions["cangyun.scan_engine"] = ScanEngine(ocr_engine=ocr, budget_ms=60_000.0)
    return edge_app


@pytest.fixture
def agent(make_sync_agent, edge_app):
    """The real sync agent on the same database file, not connected to any broker."""
    return make_sync_agent()


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


def test_an_unlicensed_box_receives_on_trial_without_ocr(edge_client, ocr):
    """The trial itself (its end, a licence lifting it) is tests/integration/test_edge_trial.py."""
    status = edge_client.get("/api/v1/licence").get_json()
    assert status["state"] == "trial" and status["edition"] == "traceability"
    assert status["inbound_allowed"] is True and status["ocr_allowed"] is False
    assert post(edge_client, RECEIPT).status_code == 201
    scanned = edge_client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert scanned.status_code == 403 and error_code(scanned) == "feature_not_in_licence"
    assert ocr.reads == 0
    assert edge_client.get("/api/v1/sync/status").get_json()["licence"]["state"] == "trial"


def test_a_valid_licence_allows_receipts_and_is_shown(edge_client, agent):
    token = licence_for()
    install(agent, token)
    assert agent.stats["licence_installed"] == 1
    assert post(edge_client, RECEIPT).status_code == 201
    body = edge_client.get("/api/v1/licence").get_json()
    assert body["state"] == "valid" and body["edition"] == "professional"
    assert body["token"] == token and body["add_ons"] == ["ocr_scanning"]
    assert body["days_left"] in (29, 30) and body["problem"] is None
    assert (body["tenant"], body["warehouse"], body["device"]) == (TENANT, WAREHOUSE, DEVICE)
    summary = edge_client.get("/api/v1/sync/status").get_json()["licence"]
    assert summary["state"] == "valid" and summary["inbound_allowed"] is True
    assert "token" not in summary


def test_quota_exhausted_refuses_receipts_but_goods_still_leave(edge_client, agent):
    install(agent, licence_for())
    assert post(edge_client, RECEIPT).status_code == 201
    install(agent, licence_for(inbound_allowed=False))
    refused = post(edge_client, RECEIPT)
    assert refused.status_code == 403 and error_code(refused) == "quota_exhausted"
    assert refused.get_json()["error"]["details"] == {"licence_state": "valid"}
    for body in (SHIPMENT, {"type": "count", "sku": "A", "qty": 9, "location": None}):
        assert (
            post(edge_client, {k: v for k, v in body.items() if v is not None}).status_code == 201
        )
    assert edge_client.get("/api/v1/stock").status_code == 200
    assert edge_client.get("/api/v1/licence").get_json()["inbound_allowed"] is False


def test_a_retried_receipt_keeps_its_answer_after_the_quota_runs_out(edge_client, agent):
    install(agent, licence_for())
    first = post(edge_client, RECEIPT, headers={"Idempotency-Key": "pda-7-0001"})
    install(agent, licence_for(inbound_allowed=False))
    again = post(edge_client, RECEIPT, headers={"Idempotency-Key": "pda-7-0001"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert post(edge_client, RECEIPT, headers={"Idempotency-Key": "pda-7-0002"}).status_code == 403


def test_within_grace_receipts_work_and_the_status_says_grace(edge_client, agent):
    issued = utcnow() - timedelta(days=33)
    install(agent, licence_for(issued_at=issued, valid_for=timedelta(days=30)))
    assert post(edge_client, RECEIPT).status_code == 201
    summary = edge_client.get("/api/v1/sync/status").get_json()["licence"]
    assert summary["state"] == "grace" and summary["days_left"] in (3, 4)
    assert "grace period" in summary["message"]


def test_expired_past_grace_refuses_receipts_and_ocr_but_not_shipping(edge_client, agent):
    install(agent, licence_for())
    assert post(edge_client, RECEIPT).status_code == 201
    install(agent, licence_for(issued_at=utcnow() - timedelta(days=40)))  # older: ignored
    assert agent.stats["licence_older"] == 1
    # A renewal never came: the box is 38 days past its licence, beyond 7 days of grace.
    store = edge_client.application.extensions["cangyun.edge_store"]
    store.clock = lambda: utcnow() + timedelta(days=38)
    refused = post(edge_client, RECEIPT)
    assert refused.status_code == 403 and error_code(refused) == "licence_expired"
    ocr = edge_client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert ocr.status_code == 403 and error_code(ocr) == "licence_expired"
    assert post(edge_client, SHIPMENT).status_code == 201
    body = edge_client.get("/api/v1/licence").get_json()
    assert (body["state"], body["days_left"], body["add_ons"]) == ("expired", 0, [])


def test_a_clock_set_back_a_day_locks_receipts_as_clock_rollback(edge_client, agent, edge_settings):
    install(agent, licence_for(issued_at=utcnow() - timedelta(days=3)))
    assert post(edge_client, RECEIPT).status_code == 201
    store = edge_client.application.extensions["cangyun.edge_store"]
    seen = read_last_seen(sqlite3.connect(edge_settings.database_path))
    store.clock = lambda: utcnow() - timedelta(days=1)
    refused = post(edge_client, RECEIPT)
    assert refused.status_code == 403 and error_code(refused) == "licence_expired"
    assert refused.get_json()["error"]["details"] == {"licence_state": "clock_rollback"}
    body = edge_client.get("/api/v1/licence").get_json()
    assert body["state"] == "clock_rollback" and body["problem"]["code"] == "clock_rollback"
    assert body["serial"] is not None  # the licence itself is still genuine
    assert (
        post(edge_client, SHIPMENT).status_code == 201
    )  # recorded at the wrong time, but recorded
    # The high-water mark never moved back with the clock.
    assert read_last_seen(sqlite3.connect(edge_settings.database_path)) >= seen
    store.clock = utcnow  # NTP puts the clock right: everything works again
    assert post(edge_client, RECEIPT).status_code == 201


def test_a_tampered_token_is_ignored_and_the_old_licence_stays(edge_client, agent):
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
    body = edge_client.get("/api/v1/licence").get_json()
    assert body["token"] == good and body["add_ons"] == []


def test_ocr_needs_the_add_on_while_barcode_scans_always_work(edge_client, agent, ocr):
    install(agent, licence_for(add_ons=()))
    refused = edge_client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert refused.status_code == 403 and error_code(refused) == "feature_not_in_licence"
    plain = edge_client.post("/api/v1/scans?ocr=0", data=photo(), content_type="image/png")
    assert plain.status_code == 200 and ocr.reads == 0
    typed = edge_client.post("/api/v1/scans?ocr=1", json={"code": "(01)06901234567892"})
    assert typed.status_code == 200  # a typed code never involves OCR
    install(agent, licence_for(issued_at=utcnow()))  # renewed with the add-on
    allowed = edge_client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert allowed.status_code == 200 and ocr.reads >= 1


def test_a_licence_that_no_longer_verifies_is_invalid_and_locks_receipts(
    edge_settings, make_sync_agent, make_edge_app
):
    install(make_sync_agent(), licence_for())
    other_key = tokens.public_key_b64(Ed25519PrivateKey.generate())
    rekeyed = replace(edge_settings, cloud=CloudSection(public_key=other_key))
    with make_edge_app(rekeyed).test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {rekeyed.edge.api_token}"
        body = client.get("/api/v1/licence").get_json()
        assert body["state"] == "invalid" and body["problem"]["code"] == "bad_signature"
        refused = post(client, RECEIPT)
        assert refused.status_code == 403 and error_code(refused) == "licence_invalid"
        assert client.get("/api/v1/movements").status_code == 200


def test_an_edited_licence_row_is_caught(edge_client, agent, edge_settings):
    """Someone with a shell on the box pastes a richer payload into the database."""
    stingy = licence_for(inbound_allowed=False)
    install(agent, stingy)
    head, _, signature = stingy.split(".")
    richer = licence_for(inbound_allowed=True).split(".")[1]
    with sqlite3.connect(edge_settings.database_path) as conn:
        conn.execute("UPDATE licence SET token = ?", (f"{head}.{richer}.{signature}",))
    assert edge_client.get("/api/v1/licence").get_json()["state"] == "invalid"
    assert error_code(post(edge_client, RECEIPT)) == "licence_invalid"


def test_last_seen_follows_movements_and_never_goes_back(edge_client, edge_settings):
    store = edge_client.application.extensions["cangyun.edge_store"]
    ahead = utcnow() + timedelta(days=2)
    store.clock = lambda: ahead
    assert post(edge_client, RECEIPT).status_code == 201
    store.clock = utcnow
    assert post(edge_client, RECEIPT).status_code == 201  # unlicensed: on trial
    edge_client.get("/api/v1/licence")
    seen = read_last_seen(sqlite3.connect(edge_settings.database_path))
    assert seen is not None and abs((seen - ahead).total_seconds()) < 0.01


def test_the_migration_upgrades_an_existing_database(tmp_path, edge_settings):
    Outbox(edge_settings.database_path).close()  # creates and migrates
    with sqlite3.connect(edge_settings.database_path) as conn:
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
    publisher = None
    try:
        stack.start_broker()
        stack.start("edge")
        stack.start("sync")
        assert stack.edge("GET", "/api/v1/licence").json()["state"] == "trial"
        key = signing.load_or_create(stack.cloud_settings.signing_key_file)
        good = licence_for(key=key, device=(STACK_TENANT, STACK_WAREHOUSE, STACK_DEVICE))
        address = wire.DeviceAddress(STACK_TENANT, STACK_WAREHOUSE, STACK_DEVICE)
        publisher = stack.ingest_mqtt()  # the account allowed to write every downlink

        def publish_until(predicate) -> dict[str, Any]:
            def arrived() -> dict[str, Any] | None:
                body = stack.edge("GET", "/api/v1/licence").json()
                if predicate(body):
                    return body
                # The agent may not have subscribed yet: repeat, installing is idempotent.
                publisher.publish(address.topic(wire.DOWN_CMD), payload)
                return None

            return eventually(
                arrived,
                timeout=60,
                interval=0.5,
                what="the licence at the box",
                context=stack.tails,
            )

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
            publisher.close()
        stack.stop_all()


def test_licence_payloads_are_stored_decoded(agent, edge_settings):
    token = licence_for()
    install(agent, token)
    with sqlite3.connect(edge_settings.database_path) as conn:
        serial, payload = conn.execute("SELECT serial, payload FROM licence").fetchone()
    assert orjson.loads(payload)["serial"] == serial
