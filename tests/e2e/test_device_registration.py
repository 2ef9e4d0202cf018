"""An edge box registered and revoked through the cloud API, against a real mosquitto that
loads the password and ACL files the cloud (a real `cangyun cloud serve` process) writes and
reloads on SIGHUP: the box may publish under its own topics only, and once revoked the
broker turns it away."""

from __future__ import annotations

import threading
import time
import tomllib
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cangyun import wire
from tests.support.stack import DEVICE, TENANT, WAREHOUSE

NEW_DEVICE = "sh-01-edge2"
BROKER_RELOAD_S = 10.0  # SIGHUP is handled at once; this only bounds a slow CI box


class Session:
    """One MQTT 5 connection attempt and what the broker answered to it."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{username}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.answered = threading.Event()
        self.dropped = threading.Event()
        self.pubacks: dict[int, ReasonCode] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.dropped.set()
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.answered.wait(10), "the broker never answered CONNECT"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any):
        if self.connack is None:
            self.connack = rc
            self.answered.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish with QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 10
        while info.mid not in self.pubacks and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


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

    box = _connect_until(port, username, password, accepted=True)
    own = wire.DeviceAddress(TENANT, WAREHOUSE, NEW_DEVICE)
    assert not box.publish(own.topic(wire.STATUS), b"online").is_failure
    assert not box.publish(own.topic(wire.UP_HELLO), b"{}").is_failure
    neighbour = wire.DeviceAddress(TENANT, WAREHOUSE, DEVICE)
    refused = box.publish(neighbour.topic(wire.UP_TX), b"{}")
    assert refused.is_failure  # MQTT 5 PUBACK "Not authorized"
    assert not box.publish(own.topic(wire.UP_TX), b"{}").is_failure  # still connected

    wrong = Session(port, username, "not-the-password")
    assert wrong.connack is not None and wrong.connack.is_failure
    wrong.close()

    revoked = stack.cloud("DELETE", f"/api/v1/devices/{NEW_DEVICE}")
    assert revoked.status_code == 204, revoked.text
    refused_session = _connect_until(port, username, password, accepted=False)
    assert refused_session.connack.is_failure  # CONNACK: bad user name or password
    # mosquitto re-checks live clients against the reloaded files and drops this one too.
    assert box.dropped.wait(BROKER_RELOAD_S)
    box.close()
    again = Session(port, username, password)
    assert not again.accepted
    again.close()

    shown = stack.cloud("GET", f"/api/v1/devices/{NEW_DEVICE}")
    assert shown.json()["revoked_at"] is not None
    assert password not in shown.text
    # The box the stack provisioned at start is untouched by the reload.
    neighbour_box = Session(port, stack.device.mqtt_username, stack.device.mqtt_password)
    assert neighbour_box.accepted
    neighbour_box.close()


def _connect_until(port: int, username: str, password: str, *, accepted: bool) -> Session:
    """Connect until the broker's answer is the expected one (it reloads its files on the
    SIGHUP the cloud sent, a moment after the API answered)."""
    deadline = time.monotonic() + BROKER_RELOAD_S
    while True:
        session = Session(port, username, password)
        if session.accepted == accepted or time.monotonic() > deadline:
            assert session.accepted == accepted, f"CONNACK {session.connack}"
            return session
        session.close()
        time.sleep(0.2)
