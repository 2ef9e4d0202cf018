"""The broker side of security and robustness, on a real mosquitto with the ACLs the cloud
generates: a device cannot write another device's topics or read its downlink, and garbage
or oversized payloads become dead letters without hurting anyone else."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from cangyun import wire
from cloud_api import provisioning
from cloud_api.platform.schema import dead_letters, ledger
from tests.support.polling import eventually

OCCURRED = "2026-11-26T01:00:00.000+00:00"
ARRIVAL_S = 60.0  # ingest files a message at once; this bounds a busy CI box
OVERSIZED = 5 * 1024 * 1024  # more than the broker's max_packet_size


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
    # mosquitto reloads its password/ACL files on the SIGHUP provisioning sent: the new
    # device is let in once it has.
    owner = stack.mqtt(other.mqtt_username, other.mqtt_password)
    victim = wire.DeviceAddress("bright", "bj-01", "bj-edge")

    intruder = stack.mqtt(stack.device.mqtt_username, stack.device.mqtt_password)
    intruder.subscribe(victim.topic("down/#"))  # the request itself is sent (asserted there)
    refused = intruder.publish(victim.topic(wire.UP_TX), batch("bj-edge", [1, 2]))
    # Its own-name envelope on the victim's topic is refused too.
    own_name = intruder.publish(victim.topic(wire.UP_TX), batch(stack.device.device, [1]))
    assert refused.is_failure  # MQTT 5: PUBACK "Not authorized"
    assert own_name.is_failure
    # mosquitto 2.0 may grant the SUBSCRIBE itself; its read ACL filters every delivery,
    # which is what the end of this test checks.

    # The victim itself works, and its ack is not leaked to the intruder.
    owner.subscribe(victim.topic(wire.DOWN_ACK))
    owner.publish(victim.topic(wire.UP_TX), batch("bj-edge", [1, 2]))
    eventually(lambda: owner.messages, timeout=ARRIVAL_S, what="the victim's ack")
    assert wire.decode_ack(owner.messages[0][1]).acked_through == 2
    # A leak would have been routed to the intruder with the ack, so before a marker the
    # cloud sends now on the intruder's own downlink: once the marker is in, nothing
    # else can come.
    marker = wire.DeviceAddress("acme", "sh-01", stack.device.device).topic("down/test-marker")
    intruder.subscribe(marker)
    cloud = stack.ingest_mqtt()
    assert not cloud.publish(marker, b"marker").is_failure
    eventually(lambda: intruder.messages, timeout=ARRIVAL_S, what="the marker")
    assert intruder.messages == [(marker, b"marker")]  # and nothing of the victim's
    with stack.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar() == 2
    for session in (intruder, owner, cloud):
        session.close()


def test_garbage_and_oversized_payloads_never_stop_ingest(make_stack):
    stack = make_stack()
    own = wire.DeviceAddress("acme", "sh-01", stack.device.device)
    client = stack.mqtt(stack.device.mqtt_username, stack.device.mqtt_password)
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
        client.publish(own.topic(wire.UP_TX), payload)
    client.publish(own.topic(wire.UP_HELLO), b"not a hello")
    # Bigger than the broker's max_packet_size: the broker drops the client, not the cloud.
    client.client.publish(own.topic(wire.UP_TX), b"x" * OVERSIZED, qos=1)
    eventually(client.dropped.is_set, timeout=ARRIVAL_S, what="the broker to drop the client")
    client.close()  # or paho would reconnect and send it again

    def reasons():
        with stack.engine.connect() as conn:
            return conn.execute(sa.select(dead_letters.c.reason)).scalars().all()

    eventually(lambda: len(reasons()) >= 6, timeout=ARRIVAL_S, what="six dead letters")
    assert all(p.alive() for n, p in stack.processes.items())

    # The real edge still syncs through the same ingest.
    response = stack.edge(
        "POST", "/api/v1/movements", json={"type": "receive", "sku": "OK", "qty": 1}
    )
    assert response.status_code == 201
    stack.wait_synced(response.json()["seq"])
    # Its batch came on the same topic after the oversized message, and the one ingest
    # worker files in order: had that message got through, it would be a seventh reason.
    assert sorted(reasons()) == sorted(
        ["bad_json", "bad_envelope", "too_large", "invalid_quantity", "bad_json", "bad_json"]
    )
