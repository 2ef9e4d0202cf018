"""The broker side of security and robustness, on a real mosquitto with the ACLs the cloud
generates: a device cannot write another device's topics or read its downlink, and garbage
or oversized payloads become dead letters without hurting anyone else."""

from __future__ import annotations

import threading
import time

import orjson
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from cangyun import wire
from cloud_api import provisioning
from cloud_api.platform.schema import dead_letters, ledger

OCCURRED = "2026-11-26T01:00:00.000+00:00"


def connect(stack, username, password):
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-{username}-{time.time()}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(username, password)
    events = {"connected": threading.Event(), "messages": [], "acks": {}, "subacks": []}
    client.on_connect = lambda c, u, f, rc, p: (
        events["connected"].set() if not rc.is_failure else None
    )
    client.on_message = lambda c, u, m: events["messages"].append((m.topic, m.payload))
    client.on_publish = lambda c, u, mid, rc, p: events["acks"].__setitem__(mid, rc)
    client.on_subscribe = lambda c, u, mid, rcs, p: events["subacks"].append(rcs)
    client.connect("127.0.0.1", stack.ports["broker"])
    client.loop_start()
    assert events["connected"].wait(10), "could not connect"
    return client, events


def batch(device, seqs):
    items = [
        wire.encode_item(s, f"{device}-{s}", "receive", OCCURRED, {"sku": "X", "qty": 1})
        for s in seqs
    ]
    return wire.encode_batch(device, "f" * 32, 1, items, OCCURRED)


def ledger_devices(stack):
    with stack.engine.connect() as conn:
        return conn.execute(sa.select(ledger.c.device_id).distinct()).scalars().all()


def test_a_device_can_neither_write_nor_read_another_devices_topics(make_stack):
    stack = make_stack()
    provisioning.create_tenant(stack.engine, "bright", "Bright")
    provisioning.create_warehouse(stack.engine, "bright", "bj-01", "北京库")
    other = provisioning.create_device(
        stack.cloud_settings, stack.engine, tenant="bright", warehouse="bj-01", code="bj-edge"
    )
    time.sleep(0.5)  # mosquitto reloads its password/ACL files on the SIGHUP provisioning sent
    victim = wire.DeviceAddress("bright", "bj-01", "bj-edge")

    intruder, seen = connect(stack, stack.device.mqtt_username, stack.device.mqtt_password)
    subscribe = intruder.subscribe(victim.topic("down/#"), qos=1)
    assert subscribe[0] == mqtt.MQTT_ERR_SUCCESS
    info = intruder.publish(victim.topic(wire.UP_TX), batch("bj-edge", [1, 2]), qos=1)
    info.wait_for_publish(10)
    # Its own-name envelope on the victim's topic is refused too.
    intruder.publish(
        victim.topic(wire.UP_TX), batch(stack.device.device, [1]), qos=1
    ).wait_for_publish(10)
    time.sleep(1)
    assert seen["acks"][info.mid].is_failure  # MQTT 5: PUBACK "Not authorized"
    # mosquitto 2.0 may grant the SUBSCRIBE itself; its read ACL filters every delivery,
    # which is what the end of this test checks.

    # The victim itself works, and its ack is not leaked to the intruder.
    owner, owner_seen = connect(stack, other.mqtt_username, other.mqtt_password)
    owner.subscribe(victim.topic(wire.DOWN_ACK), qos=1)
    time.sleep(0.3)
    owner.publish(victim.topic(wire.UP_TX), batch("bj-edge", [1, 2]), qos=1).wait_for_publish(10)
    deadline = time.monotonic() + 10
    while not owner_seen["messages"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert wire.decode_ack(owner_seen["messages"][0][1]).acked_through == 2
    assert seen["messages"] == []
    with stack.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar() == 2
    for client in (intruder, owner):
        client.loop_stop()
        client.disconnect()


def test_garbage_and_oversized_payloads_never_stop_ingest(make_stack):
    stack = make_stack()
    own = wire.DeviceAddress("acme", "sh-01", stack.device.device)
    client, events = connect(stack, stack.device.mqtt_username, stack.device.mqtt_password)
    hostile = [
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        orjson.dumps(
            {
                "v": 1,
                "device": stack.device.device,
                "epoch": "f" * 32,
                "items": [{"seq": i, "id": "x"} for i in range(1, 5002)],
            }
        ),
        orjson.dumps(
            {
                "v": 1,
                "device": stack.device.device,
                "epoch": "f" * 32,
                "items": [
                    {
                        "seq": 1,
                        "id": "m",
                        "type": "receive",
                        "occurred_at": OCCURRED,
                        "body": {"sku": "X", "qty": 10**12},
                    }
                ],
            }
        ),
        b"{" * 50_000,
    ]
    for payload in hostile:
        client.publish(own.topic(wire.UP_TX), payload, qos=1).wait_for_publish(10)
    client.publish(own.topic(wire.UP_HELLO), b"not a hello", qos=1).wait_for_publish(10)
    # Bigger than the broker's max_packet_size: the broker drops the client, not the cloud.
    client.publish(own.topic(wire.UP_TX), b"x" * (5 * 1024 * 1024), qos=1)

    def reasons():
        with stack.engine.connect() as conn:
            return conn.execute(sa.select(dead_letters.c.reason)).scalars().all()

    deadline = time.monotonic() + 20
    while len(reasons()) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # nothing more may arrive: the oversized message never reaches ingest
    client.loop_stop()
    assert sorted(reasons()) == sorted(
        ["bad_json", "bad_envelope", "too_large", "invalid_quantity", "bad_json", "bad_json"]
    )
    assert all(p.alive() for n, p in stack.processes.items())

    # The real edge still syncs through the same ingest.
    response = stack.edge(
        "POST", "/api/v1/movements", json={"type": "receive", "sku": "OK", "qty": 1}
    )
    assert response.status_code == 201
    stack.wait_synced(response.json()["seq"])
