"""Cloud ingest on real databases (SQLite file and PostgreSQL): idempotency, watermarks,
dead letters, quarantine, topic checks. No broker: IngestService.handle is transport-free."""

from __future__ import annotations

import concurrent.futures
import random

import orjson
import pytest
import sqlalchemy as sa

from cangyun import wire
from cloud_api import provisioning
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.db import make_engine
from cloud_api.platform.schema import alerts, dead_letters, device_sync, ledger, quarantine, stock
from cloud_api.settings import CloudSection, CloudSettings, MqttSection

EPOCH = "a" * 32
OCCURRED = "2026-11-26T01:00:00.000+00:00"


@pytest.fixture
def engine(database_url, tmp_path):
    settings = CloudSettings(
        cloud=CloudSection(data_dir=tmp_path / "cloud", database_url=database_url),
        mqtt=MqttSection(password="x"),
    )
    engine = provisioning.init(settings)
    for tenant, warehouse, device in (("acme", "sh-01", "edge-a"), ("bright", "bj-01", "edge-b")):
        provisioning.create_tenant(engine, tenant, tenant)
        provisioning.create_warehouse(engine, tenant, warehouse, warehouse)
        provisioning.create_device(
            settings, engine, tenant=tenant, warehouse=warehouse, code=device
        )
    yield engine
    engine.dispose()


ADDRESS = wire.DeviceAddress("acme", "sh-01", "edge-a")


def item(seq: int, qty: int = 1, kind: str = "receive", **body) -> bytes:
    return wire.encode_item(seq, f"m-{seq}", kind, OCCURRED, {"sku": "A", "qty": qty} | body)


def batch(items: list[bytes], device: str = "edge-a", epoch: str = EPOCH) -> bytes:
    return wire.encode_batch(device, epoch, 1, items, OCCURRED)


def send(service: IngestService, payload: bytes, address=ADDRESS, suffix=wire.UP_TX):
    replies = service.handle(address.topic(suffix), payload)
    return [wire.decode_ack(r.payload) for r in replies]


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


def test_batch_is_filed_once_and_acked_to_its_device(engine):
    service = IngestService(engine)
    replies = service.handle(ADDRESS.topic(wire.UP_TX), batch([item(s) for s in range(1, 6)]))
    assert [r.topic for r in replies] == [ADDRESS.topic(wire.DOWN_ACK)]
    assert wire.decode_ack(replies[0].payload).acked_through == 5
    # The same batch again: duplicates, nothing new, same ack.
    assert send(service, batch([item(s) for s in range(1, 6)]))[0].acked_through == 5
    assert count(engine, ledger) == 5
    with engine.connect() as conn:
        row = conn.execute(sa.select(device_sync)).mappings().one()
        qty = conn.execute(sa.select(stock.c.qty)).scalar()
    assert (row["filed"], row["duplicates"], row["batches"]) == (5, 5, 2)
    assert qty == 5


def test_watermark_waits_for_a_gap_then_jumps(engine):
    service = IngestService(engine)
    assert send(service, batch([item(s) for s in (1, 2)]))[0].acked_through == 2
    assert send(service, batch([item(s) for s in (5, 6)]))[0].acked_through == 2
    assert send(service, batch([item(4)]))[0].acked_through == 2
    assert send(service, batch([item(3)]))[0].acked_through == 6


def test_invalid_items_are_dead_lettered_and_do_not_block_the_window(engine):
    service = IngestService(engine)
    items = [item(1), item(2, qty=-5), item(3, kind="teleport"), item(4)]
    ack = send(service, batch(items))[0]
    assert ack.acked_through == 4
    assert sorted(ack.rejected) == [(2, "invalid_quantity"), (3, "unknown_type")]
    assert count(engine, ledger) == 2
    assert count(engine, dead_letters) == 2
    send(service, batch(items))  # resent: still two dead letters, not four
    assert count(engine, dead_letters) == 2


def test_same_key_different_body_is_quarantined_and_alerted_never_overwritten(engine):
    service = IngestService(engine)
    send(service, batch([item(1, qty=5)]))
    ack = send(service, batch([item(1, qty=500)]))[0]
    assert ack.acked_through == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(ledger.c.qty)).scalar() == 5
        assert conn.execute(sa.select(stock.c.qty)).scalar() == 5
    assert count(engine, quarantine) == 1
    assert count(engine, alerts, alerts.c.kind == "sync_conflict") == 1
    send(service, batch([item(1, qty=500)]))  # the same conflict again alerts once
    assert count(engine, alerts) == 1


@pytest.mark.parametrize(
    ("address", "payload", "reason"),
    [
        # edge-a's credentials cannot be used to write into bright's ledger
        (wire.DeviceAddress("bright", "bj-01", "edge-a"), None, "topic_mismatch"),
        (wire.DeviceAddress("acme", "sh-01", "ghost"), None, "unknown_device"),
        (ADDRESS, batch([item(1)], device="edge-b"), "device_mismatch"),
        (ADDRESS, b"\x00\x01garbage", "bad_json"),
        (ADDRESS, b'{"v": 9}', "bad_version"),
        (ADDRESS, b" " * (wire.MAX_PAYLOAD_BYTES + 10), "too_large"),
    ],
)
def test_hostile_messages_become_dead_letters(engine, address, payload, reason):
    service = IngestService(engine)
    replies = service.handle(address.topic(wire.UP_TX), payload or batch([item(1)]))
    assert replies == []
    assert count(engine, ledger) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(dead_letters.c.reason)).scalars().all() == [reason]


def test_bad_topic_is_dead_lettered(engine):
    assert IngestService(engine).handle("cangyun/v1/acme/+/x/up/tx", b"{}") == []
    assert count(engine, dead_letters) == 1


def test_hello_returns_the_watermark_and_records_the_edge_position(engine):
    service = IngestService(engine)
    send(service, batch([item(s) for s in (1, 2, 3)]))
    hello = wire.encode_hello(wire.Hello("edge-a", EPOCH, 10, 1))
    ack = send(service, hello, suffix=wire.UP_HELLO)[0]
    assert (ack.acked_through, ack.hello) == (3, True)
    new_epoch = send(
        service, wire.encode_hello(wire.Hello("edge-a", "b" * 32, 0, 0)), suffix=wire.UP_HELLO
    )[0]
    assert (new_epoch.epoch, new_epoch.acked_through) == ("b" * 32, 0)


def test_epochs_are_separate_sequences(engine):
    service = IngestService(engine)
    send(service, batch([item(1)]))
    assert send(service, batch([item(1)], epoch="c" * 32))[0].acked_through == 1
    assert count(engine, ledger) == 2


def test_status_messages_set_online(engine):
    service = IngestService(engine)
    assert (
        service.handle(ADDRESS.topic(wire.STATUS), wire.encode_status(wire.Status("online", EPOCH)))
        == []
    )
    assert service.handle(ADDRESS.topic(wire.STATUS), b"") == []  # cleared retained message
    from cloud_api.platform.schema import devices

    with engine.connect() as conn:
        assert conn.execute(sa.select(devices.c.online).where(devices.c.code == "edge-a")).scalar()


def test_concurrent_workers_out_of_order_converge_exactly_once(engine, database_url):
    """Four workers file shuffled, overlapping batches: one row per seq, one watermark."""
    batches = [
        batch([item(s, qty=s % 7 + 1) for s in range(start, start + 50)])
        for start in range(1, 1001, 50)
    ]
    work = batches * 3
    random.Random(7).shuffle(work)
    services = [IngestService(make_engine(database_url)) for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: send(services[p[0] % 4], p[1]), enumerate(work)))
    assert count(engine, ledger) == 1000
    with engine.connect() as conn:
        assert conn.execute(sa.select(device_sync.c.acked_through)).scalar() == 1000
        total = conn.execute(sa.select(stock.c.qty)).scalar()
    assert total == sum(s % 7 + 1 for s in range(1, 1001))
    for service in services:
        service.engine.dispose()


def test_malformed_item_shapes_are_dead_lettered_not_fatal(engine):
    payload = orjson.dumps(
        {
            "v": 1,
            "device": "edge-a",
            "epoch": EPOCH,
            "items": [
                {
                    "seq": 1,
                    "id": "m1",
                    "type": "receive",
                    "occurred_at": OCCURRED,
                    "body": {"sku": "A", "qty": 1},
                },
                {"seq": 2, "id": "m2", "type": "receive", "occurred_at": OCCURRED, "body": "nope"},
                {
                    "seq": 3,
                    "type": "receive",
                    "occurred_at": OCCURRED,
                    "body": {"sku": "A", "qty": 1},
                },
                {
                    "seq": 4,
                    "id": "m4",
                    "type": "receive",
                    "occurred_at": "1970-01-01T00:00:00Z",
                    "body": {"sku": "A", "qty": 1},
                },
                {"id": "no-seq"},
            ],
        }
    )
    ack = send(IngestService(engine), payload)[0]
    assert ack.acked_through == 4
    assert count(engine, ledger) == 1
    assert count(engine, dead_letters) == 4
