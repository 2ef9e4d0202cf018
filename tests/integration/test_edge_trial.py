"""A box that never received a licence is on a limited trial: 溯源版 for TRIAL_DAYS from its first
start (kept in its SQLite), no OCR, then no new receipts until a licence arrives. A real
SQLite file, the Flask test client, the licence delivered through the real sync agent."""

from __future__ import annotations

import io
import sqlite3
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from PIL import Image

from cangyun import wire
from cangyun.timeutil import format_ts, parse_ts
from cloud_api.billing.catalog import EDITION_FEATURES
from edge import licence
from tests.support import licences

RECEIPT = {"type": "receive", "sku": "A", "qty": 10, "weight_kg": 20}
SHIPMENT = {"type": "ship", "sku": "A", "qty": 1}


@pytest.fixture
def edge_settings(edge_settings):
    return licences.trusting(edge_settings)


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (320, 200), 255).save(buffer, "PNG")
    return buffer.getvalue()


def trial_started_at(settings) -> str:
    with sqlite3.connect(settings.database_path) as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'trial_started_at'").fetchone()[0]


def move_trial_start(settings, days_back: float) -> None:
    started = parse_ts(trial_started_at(settings)) - timedelta(days=days_back)
    with sqlite3.connect(settings.database_path) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'trial_started_at'", (format_ts(started),)
        )


def code_of(response) -> str:
    return response.get_json()["error"]["code"]


def test_the_trial_is_the_smallest_edition_of_the_seed():
    assert set(licence.TRIAL_FEATURES) == EDITION_FEATURES[licence.TRIAL_EDITION]
    assert "value_added_services" not in licence.TRIAL_FEATURES  # hence no OCR


def test_a_fresh_box_records_movements_but_not_ocr(edge_client):
    body = edge_client.get("/api/v1/licence").get_json()
    assert (body["state"], body["edition"]) == ("trial", "traceability")
    assert body["days_left"] in (29, 30)
    assert body["inbound_allowed"] is True and body["ocr_allowed"] is False
    assert body["features"] == list(licence.TRIAL_FEATURES) and body["add_ons"] == []
    assert body["trial_started_at"] is not None
    assert edge_client.post("/api/v1/movements", json=RECEIPT).status_code == 201
    assert edge_client.post("/api/v1/movements", json=SHIPMENT).status_code == 201
    refused = edge_client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert refused.status_code == 403 and code_of(refused) == "feature_not_in_licence"
    assert refused.get_json()["error"]["details"] == {"licence_state": "trial"}
    barcodes = edge_client.post("/api/v1/scans?ocr=0", data=photo(), content_type="image/png")
    assert barcodes.status_code == 200


def test_a_restart_does_not_renew_the_trial(make_edge_app, edge_settings):
    make_edge_app()
    move_trial_start(edge_settings, days_back=12)
    started = trial_started_at(edge_settings)
    app = make_edge_app()  # the box restarts on the same file
    assert trial_started_at(edge_settings) == started
    with app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {edge_settings.edge.api_token}"
        assert client.get("/api/v1/licence").get_json()["days_left"] in (17, 18)


def test_after_the_trial_receipts_are_refused_until_a_licence_arrives(
    edge_client, edge_settings, make_sync_agent
):
    assert edge_client.post("/api/v1/movements", json=RECEIPT).status_code == 201
    move_trial_start(edge_settings, days_back=licence.TRIAL_DAYS + 0.01)
    body = edge_client.get("/api/v1/licence").get_json()
    assert (body["state"], body["inbound_allowed"], body["days_left"]) == ("trial_ended", False, 0)
    summary = edge_client.get("/api/v1/sync/status").get_json()["licence"]
    assert summary["state"] == "trial_ended" and "trial is over" in summary["message"]
    refused = edge_client.post("/api/v1/movements", json=RECEIPT)
    assert refused.status_code == 403 and code_of(refused) == "licence_required"
    assert "trial ended" in refused.get_json()["error"]["message"]
    assert refused.get_json()["error"]["details"] == {"licence_state": "trial_ended"}
    ocr = edge_client.post("/api/v1/scans?ocr=1", data=photo(), content_type="image/png")
    assert ocr.status_code == 403 and code_of(ocr) == "licence_required"
    # Goods in the warehouse can always leave, and stock can always be read.
    assert edge_client.post("/api/v1/movements", json=SHIPMENT).status_code == 201
    assert edge_client.get("/api/v1/stock").status_code == 200

    # The cloud's licence arrives through the sync agent, as on a real box: it lifts the lock.
    agent = make_sync_agent()
    message = mqtt.MQTTMessage(topic=agent.address.topic(wire.DOWN_CMD).encode())
    command = wire.Command("licence", {"token": licences.token_for(edge_settings)}, id="c-1")
    message.payload = wire.encode_command(command)
    agent._on_message(agent.client, None, message)
    assert agent.stats["licence_installed"] == 1
    body = edge_client.get("/api/v1/licence").get_json()
    assert (body["state"], body["trial_started_at"]) == ("valid", None)
    assert edge_client.post("/api/v1/movements", json=RECEIPT).status_code == 201


def test_setting_the_clock_back_does_not_lengthen_the_trial(edge_client, edge_settings):
    store = edge_client.application.extensions["cangyun.edge_store"]
    real_clock = store.clock
    store.clock = lambda: real_clock() + timedelta(days=licence.TRIAL_DAYS + 1)
    refused = edge_client.post("/api/v1/movements", json=RECEIPT)
    assert refused.status_code == 403 and code_of(refused) == "licence_required"
    store.clock = real_clock  # back to "today": the box has already seen day 31
    assert edge_client.get("/api/v1/licence").get_json()["state"] == "trial_ended"
    assert code_of(edge_client.post("/api/v1/movements", json=RECEIPT)) == "licence_required"


def test_a_gate_receipt_is_held_by_the_same_rule(edge_settings, make_edge_app):
    app = make_edge_app()
    store = app.extensions["cangyun.edge_store"]
    admit = licence.admission(store, edge_settings)
    admit("receive")  # on trial: admitted
    move_trial_start(edge_settings, days_back=licence.TRIAL_DAYS + 1)
    with pytest.raises(licence.LicenceRefused) as refused:
        admit("receive")
    assert refused.value.code == "licence_required"
    admit("ship")  # never gated
