"""Expected goods from the cloud reach the edge's gates: a real cloud (SQLite) makes the
``expected`` commands through its API and ingest service, the real sync agent takes them
through its downlink handler into the edge's real SQLite file, and the gates match them."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import replace

import orjson
import paho.mqtt.client as mqtt
import pytest

from cangyun import wire
from cangyun.timeutil import format_ts, utcnow
from cloud_api.ledger.ingest import IngestService
from edge.gates import outcomes, tracker
from edge.gates.store import GateStore
from tests.support.cloud import make_cloud

WAREHOUSE, DEVICE = "sh-01", "sh-edge-1"
EPOCH = "e" * 32
SSCC = ["069123456789012340", "069123456789012357", "069123456789012364"]
GTIN = "06901234567892"


class Site:
    """One tenant's cloud, and its edge box with a sync agent that is not on any broker."""

    def __init__(self, tmp_path, edge_settings, make_edge_app, make_sync_agent) -> None:
        self.cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
        owner = self.cloud.register("冷链仓储", "owner@edge-exp.test")
        self.token = owner["token"]
        self.cloud.buy(self.token, "professional", add_ons=())
        for path, body in [
            ("/api/v1/warehouses", {"code": WAREHOUSE, "name": "嘉定一号库"}),
            ("/api/v1/devices", {"warehouse": WAREHOUSE, "code": DEVICE, "kind": "edge"}),
        ]:
            assert self.cloud.call("POST", path, self.token, json=body).status_code == 201
        self.service = IngestService(self.cloud.engine)
        self.address = wire.DeviceAddress(owner["tenant"], WAREHOUSE, DEVICE)
        box = edge_settings.device
        self.settings = replace(
            edge_settings,
            device=replace(box, tenant=owner["tenant"], warehouse=WAREHOUSE, device=DEVICE),
        )
        self.app = make_edge_app(self.settings)
        self.client = self.app.test_client()
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.settings.edge.api_token}"
        self.agent = make_sync_agent(self.settings)

    # the cloud

    def expect(self, body) -> dict:
        response = self.cloud.call(
            "POST", f"/api/v1/warehouses/{WAREHOUSE}/expected", self.token, json=body
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def cancel(self, line_id: int) -> None:
        path = f"/api/v1/warehouses/{WAREHOUSE}/expected/{line_id}"
        assert self.cloud.call("DELETE", path, self.token).status_code == 200

    def hello(self) -> list[bytes]:
        payload = wire.encode_hello(wire.Hello(DEVICE, EPOCH, 0, 0, format_ts(utcnow())))
        return self.commands(self.service.handle(self.address.topic(wire.UP_HELLO), payload))

    def sweep(self) -> list[bytes]:
        return self.commands(self.service.expected_sweep())

    def commands(self, replies) -> list[bytes]:
        topic = self.address.topic(wire.DOWN_CMD)
        return [r.payload for r in replies if r.topic == topic and b'"expected"' in r.payload]

    # the edge

    def deliver(self, *payloads: bytes) -> None:
        """Hand down/cmd messages to the sync agent exactly as paho would."""
        for payload in payloads:
            message = mqtt.MQTTMessage(topic=self.address.topic(wire.DOWN_CMD).encode())
            message.payload = payload
            self.agent._on_message(self.agent.client, None, message)

    def edge_lines(self) -> list[tuple]:
        with sqlite3.connect(self.settings.database_path) as conn:
            return conn.execute(
                "SELECT * FROM gate_expected WHERE cloud_id IS NOT NULL ORDER BY id"
            ).fetchall()

    def status_of(self) -> dict[int, str]:
        with sqlite3.connect(self.settings.database_path) as conn:
            return dict(conn.execute("SELECT cloud_id, status FROM gate_expected"))

    def gate(self, code: str, direction: str = "in") -> None:
        response = self.client.post("/api/v1/gates", json={"code": code, "direction": direction})
        assert response.status_code == 201

    def listed(self, gate: str) -> list[dict]:
        return self.client.get(f"/api/v1/gates/{gate}/expected").get_json()["items"]

    def pallet_passes(self, gate: str, sscc: str | None, gtin: str | None = GTIN) -> dict:
        """A pallet pass settled as the gate worker would, without the camera (the SSCC label
        carries the GTIN too)."""
        store = self.app.extensions["cangyun.gate_store"]
        now = time.time()
        kind = "sscc" if sscc else "gtin"
        passage = tracker.PalletPass(0, kind, sscc, gtin, None, None, now, now, 2, ("cam-1",))
        event_id = store.open_event(gate, "in", passage)
        return outcomes.settle_event(store, self.app.extensions["cangyun.edge_store"], event_id)


@pytest.fixture
def site(tmp_path, edge_settings, make_edge_app, make_sync_agent):
    made = Site(tmp_path, edge_settings, make_edge_app, make_sync_agent)
    yield made
    made.cloud.engine.dispose()


def test_the_full_set_lands_once_however_often_it_is_sent(site):
    site.gate("dock-1")
    lines = site.expect(
        [
            {"direction": "in", "sscc": SSCC[0], "qty": 40, "gate": "dock-1", "reference": "A1"},
            {"direction": "in", "gtin": GTIN, "qty": 12, "customer": "acme", "reference": "A1"},
            {"direction": "in", "sscc": SSCC[1], "qty": 8, "gate": "dock-9"},  # not on this box
            {"direction": "out", "sscc": SSCC[2], "qty": 5},  # outbound: not at an inbound gate
        ]
    )["items"]
    commands = site.hello()
    site.deliver(*commands)
    stored = site.edge_lines()
    assert len(stored) == 4
    shown = site.listed("dock-1")
    assert sorted((x["cloud_id"], x["gate"], x["source"]) for x in shown) == [
        (lines[0]["id"], "dock-1", "cloud"),
        (lines[1]["id"], None, "cloud"),
    ]
    assert {x["status"] for x in shown} == {"open"}

    site.deliver(*commands, *site.hello())  # the same again, and a new hello
    assert site.edge_lines() == stored
    assert site.agent.stats["expected_commands"] == 3 and not site.agent.stats["bad_expected"]

    # The gate added later finds its line waiting (with the line for any inbound gate).
    site.gate("dock-9")
    assert [x["sscc"] for x in site.listed("dock-9")] == [SSCC[1], None]
    assert site.pallet_passes("dock-9", SSCC[1])["outcome"] == "received"


def test_a_cloud_line_is_received_at_the_gate_and_keeps_that_status(site):
    site.gate("dock-1")
    pallet = site.expect({"direction": "in", "sscc": SSCC[0], "gtin": GTIN, "qty": 40,
                          "weight_kg": 480, "customer": "acme"})  # fmt: skip
    loose = site.expect({"direction": "in", "gtin": GTIN, "qty": 12})
    site.deliver(*site.hello())

    event = site.pallet_passes("dock-1", SSCC[0])
    assert event["outcome"] == "received"
    (movement,) = site.client.get(f"/api/v1/movements?sscc={SSCC[0]}").get_json()["items"]
    assert (movement["qty"], movement["customer"], movement["weight_kg"]) == (40, "acme", 480.0)
    assert site.pallet_passes("dock-1", None, GTIN)["outcome"] == "received"

    # The cloud has not heard of the receipts yet: it still calls both lines open.
    site.deliver(*site.hello())
    assert site.status_of() == {pallet["id"]: "received", loose["id"]: "received"}
    assert len(site.client.get("/api/v1/movements").get_json()["items"]) == 2


def test_a_cancelled_line_goes_if_still_open_and_order_does_not_matter(site):
    site.gate("dock-1")
    first, second = site.expect([{"direction": "in", "sscc": s, "qty": 1} for s in SSCC[:2]])[
        "items"
    ]
    site.deliver(*site.hello())
    assert site.status_of() == {first["id"]: "open", second["id"]: "open"}

    site.cancel(second["id"])
    stale_full_set = site.hello()  # made now, delivered late
    third = site.expect({"direction": "in", "sscc": SSCC[2], "qty": 1})
    changes = site.sweep()
    site.deliver(*changes)  # the new line arrives before the older full set
    assert site.status_of()[third["id"]] == "open"
    site.deliver(*stale_full_set)
    assert site.status_of() == {first["id"]: "open", second["id"]: "cancelled", third["id"]: "open"}
    assert site.listed("dock-1")[0]["status"] == "open"
    assert site.pallet_passes("dock-1", SSCC[1])["outcome"] == "held"  # no longer expected

    site.cancel(first["id"])
    site.deliver(*site.sweep())
    assert site.status_of()[first["id"]] == "cancelled"


def command(data) -> bytes:
    return wire.encode_command(wire.Command("expected", data, id="hostile"))


GOOD_LINE = {"id": 90, "version": 3, "status": "open", "direction": "in", "sscc": SSCC[0],
             "qty": 4, "gate": None}  # fmt: skip


def full(lines, **extra) -> dict:
    return {"warehouse": WAREHOUSE, "version": 3, "full": True, "after_id": 0,
            "through_id": None, "lines": lines} | extra  # fmt: skip


HOSTILE = [
    b"not json",
    b'{"v": 1, "kind": "expected", "data": "lines"}',
    command({}),
    command(full([GOOD_LINE], warehouse="bj-01")),  # another warehouse's lines
    command(full("all")),
    command(full([GOOD_LINE] * 2)),  # one id twice
    command(full([GOOD_LINE | {"sscc": "069123456789012341"}])),  # bad check digit
    command(full([GOOD_LINE | {"qty": -5}])),
    command(full([GOOD_LINE | {"id": 0}])),
    command(full([GOOD_LINE | {"id": 2**63 - 1}])),
    command(full([GOOD_LINE])).replace(b'"id":90', b'"id":' + str(2**70).encode()),
    command(full([GOOD_LINE | {"version": "3"}])),
    command(full([GOOD_LINE | {"status": "lost"}])),
    command(full([GOOD_LINE | {"gate": "../../etc"}])),
    command(full([GOOD_LINE | {"direction": "sideways"}])),
    command(full([GOOD_LINE | {"status": "cancelled"}])),  # a full set lists open lines
    command(full([GOOD_LINE], after_id=95, through_id=99)),  # a line outside its span
    command(full([GOOD_LINE], after_id=9, through_id=9)),
    command(full([GOOD_LINE], full="yes")),
    command(full([GOOD_LINE], version=-1)),
    command(full([GOOD_LINE] + [7])),
    command(full([GOOD_LINE | {"id": n} for n in range(1, 5002)])),
]


def test_hostile_commands_are_logged_and_change_nothing(site, caplog):
    site.gate("dock-1")
    site.expect({"direction": "in", "sscc": SSCC[1], "qty": 1})
    site.deliver(*site.hello())
    before = site.edge_lines()
    with caplog.at_level(logging.WARNING, logger="sync_agent.agent"):
        for payload in HOSTILE:
            site.deliver(payload)
    assert site.edge_lines() == before
    assert site.agent.stats["bad_expected"] + site.agent.stats["bad_downlink"] == len(HOSTILE)
    assert (
        caplog.text.count("ignoring expected goods the cloud sent")
        == site.agent.stats["bad_expected"]
    )
    # Unknown line fields are left aside (the cloud may add some); the agent still works.
    site.deliver(command(full([GOOD_LINE | {"colour": "red"}], through_id=95)))
    assert site.status_of()[90] == "open"
    assert orjson.loads(site.client.get("/api/v1/gates/dock-1/expected").data)["total"] == 2


def test_a_database_error_is_logged_and_the_agent_goes_on(site, caplog, monkeypatch):
    site.expect({"direction": "in", "sscc": SSCC[0], "qty": 1})
    commands = site.hello()

    def locked(*_args, **_kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(GateStore, "apply_cloud_lines", locked)
    with caplog.at_level(logging.ERROR, logger="sync_agent.agent"):
        site.deliver(*commands)
    assert site.agent.stats["bad_expected"] == 1 and "could not store" in caplog.text
    monkeypatch.undo()
    site.deliver(*commands)  # the resend lands
    assert list(site.status_of().values()) == ["open"]
