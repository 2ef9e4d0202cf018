"""An edge box registered and revoked through the cloud API, against a real mosquitto that
loads the password and ACL files the cloud (a real `cangyun cloud serve` process) writes and
reloads on SIGHUP: the box may publish under its own topics only, and once revoked the
broker turns it away."""

from __future__ import annotations

import tomllib

from cangyun import wire
from tests.support.stack import BROKER_RELOAD_S, DEVICE, TENANT, WAREHOUSE, MqttSession

NEW_DEVICE = "sh-01-edge2"


def test_registered_edge_publishes_only_its_own_topics_until_revoked(make_stack):
    stack = make_stack(start=False)
    stack.start_broker()
    stack.start("cloud")
    port = stack.ports["broker"]

    made = stack.cloud(
        "POST",
        "/api/v1/devices",
        json={"warehouse": WAREHOUSE, "code": NEW_DEVICE, "kind": "edge", "name": "二号边缘盒"},
    )
    assert made.status_code == 201, made.text
    settings = tomllib.loads(made.json()["edge_settings"])
    assert settings["device"]["device"] == NEW_DEVICE
    assert settings["mqtt"]["url"] == f"mqtt://127.0.0.1:{port}"
    username, password = settings["mqtt"]["username"], settings["mqtt"]["password"]
    assert (username, password) == (
        made.json()["credentials"]["mqtt_username"],
        made.json()["credentials"]["mqtt_password"],
    )

    box = stack.mqtt(username, password, accepted=True)
    own = wire.DeviceAddress(TENANT, WAREHOUSE, NEW_DEVICE)
    assert not box.publish(own.topic(wire.STATUS), b"online").is_failure
    assert not box.publish(own.topic(wire.UP_HELLO), b"{}").is_failure
    neighbour = wire.DeviceAddress(TENANT, WAREHOUSE, DEVICE)
    refused = box.publish(neighbour.topic(wire.UP_TX), b"{}")
    assert refused.is_failure  # MQTT 5 PUBACK "Not authorized"
    assert not box.publish(own.topic(wire.UP_TX), b"{}").is_failure  # still connected

    wrong = MqttSession(port, username, "not-the-password")
    assert wrong.connack is not None and wrong.connack.is_failure
    wrong.close()

    revoked = stack.cloud("DELETE", f"/api/v1/devices/{NEW_DEVICE}")
    assert revoked.status_code == 204, revoked.text
    refused_session = stack.mqtt(username, password, accepted=False)
    assert refused_session.connack.is_failure  # CONNACK: bad user name or password
    # mosquitto re-checks live clients against the reloaded files and drops this one too.
    assert box.dropped.wait(BROKER_RELOAD_S)
    box.close()
    again = MqttSession(port, username, password)
    assert not again.accepted
    again.close()

    shown = stack.cloud("GET", f"/api/v1/devices/{NEW_DEVICE}")
    assert shown.json()["revoked_at"] is not None
    assert password not in shown.text
    # The box the stack provisioned at start is untouched by the reload.
    neighbour_box = MqttSession(port, stack.device.mqtt_username, stack.device.mqtt_password)
    assert neighbour_box.accepted
    neighbour_box.close()
