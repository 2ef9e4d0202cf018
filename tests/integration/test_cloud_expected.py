"""Expected goods in the cloud on real databases (SQLite and PostgreSQL): the API, and how the
lines travel to the warehouse's edge boxes through the ingest service (hello, sweep, ledger).
Every command the cloud makes is read back with the decoder the edge box uses
(``wire.decode_expected``), so both sides agree."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from cangyun import wire
from cangyun.timeutil import format_ts, utcnow
from cloud_api.expected import sync as expected_sync
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.schema import expected_lines
from tests.support.cloud import STRONG, make_cloud

EPOCH = "e" * 32
SSCC = ["069123456789012340", "069123456789012357", "069123456789012364"]
GTIN = "06901234567892"
WAREHOUSE, DEVICE = "sh-01", "sh-edge-1"


@pytest.fixture
def site(database_url, tmp_path):
    cloud = make_cloud(tmp_path, database_url)
    owner = cloud.register("冷链仓储", "owner@exp.test")
    cloud.buy(owner["token"], "professional", add_ons=())
    for path, body in [
        ("/api/v1/warehouses", {"code": WAREHOUSE, "name": "嘉定一号库"}),
        ("/api/v1/warehouses", {"code": "sh-02", "name": "二号库"}),
        ("/api/v1/devices", {"warehouse": WAREHOUSE, "code": DEVICE, "kind": "edge"}),
    ]:
        response = cloud.call("POST", path, owner["token"], json=body)
        assert response.status_code == 201, response.get_json()
    yield Site(cloud, owner["token"], owner["tenant"])
    cloud.engine.dispose()


class Site:
    def __init__(self, cloud, token, tenant) -> None:
        self.cloud = cloud
        self.token = token
        self.service = IngestService(cloud.engine)
        self.address = wire.DeviceAddress(tenant, WAREHOUSE, DEVICE)

    def call(self, method, path, body=None, token=None):
        return self.cloud.call(method, path, token or self.token, json=body)

    def expect(self, body, warehouse=WAREHOUSE, token=None):
        return self.call("POST", f"/api/v1/warehouses/{warehouse}/expected", body, token)

    def listed(self, query="", warehouse=WAREHOUSE):
        response = self.call("GET", f"/api/v1/warehouses/{warehouse}/expected{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def hello(self):
        payload = wire.encode_hello(wire.Hello(DEVICE, EPOCH, 0, 0, format_ts(utcnow())))
        return self.service.handle(self.address.topic(wire.UP_HELLO), payload)

    def commands(self, replies):
        """The expected-goods commands among replies, read as the edge box reads them."""
        found = []
        for reply in replies:
            if reply.topic != self.address.topic(wire.DOWN_CMD):
                continue
            command = wire.decode_command(reply.payload)
            if command.kind == wire.CMD_EXPECTED:
                found.append(wire.decode_expected(command, warehouse=WAREHOUSE))
        return found

    def receive(self, seq, sscc, kind="receive"):
        item = wire.encode_item(
            seq,
            f"{DEVICE}-{seq}",
            kind,
            format_ts(utcnow()),
            {"gtin": GTIN, "qty": 40, "sscc": sscc, "customer": "acme"},
        )
        batch = wire.encode_batch(DEVICE, EPOCH, seq, [item], format_ts(utcnow()))
        (ack,) = self.service.handle(self.address.topic(wire.UP_TX), batch)
        assert orjson.loads(ack.payload)["acked_through"] == seq

    def rows(self):
        with self.cloud.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(expected_lines)).scalar()


LINE = {
    "direction": "in",
    "sscc": SSCC[0],
    "gtin": "6901234567892",
    "lot": "L2401",
    "qty": 40,
    "weight_kg": 480.5,
    "customer": "acme",
    "reference": "ASN-1",
    "gate": "dock-1",
}


# --- the API ---------------------------------------------------------------------------------


def test_a_line_is_checked_stored_and_listed(site):
    response = site.expect(LINE)
    assert response.status_code == 201, response.get_json()
    line = response.get_json()
    assert line | {"id": 0, "created_at": None} == {
        "id": 0,
        "warehouse": WAREHOUSE,
        "direction": "in",
        "sscc": SSCC[0],
        "gtin": GTIN,  # as GTIN-14, like the edge
        "lot": "L2401",
        "qty": 40,
        "weight_kg": 480.5,
        "customer": "acme",
        "reference": "ASN-1",
        "gate": "dock-1",
        "status": "open",
        "movement_id": None,
        "created_at": None,
        "closed_at": None,
    }
    page = site.listed()
    assert page["total"] == 1 and page["items"] == [line] and page["next"] is None


def test_a_list_is_taken_whole_and_pages_go_newest_first(site):
    body = [
        {"direction": "in", "sscc": SSCC[1], "qty": 10, "reference": "ASN-2"},
        {"direction": "in", "gtin": GTIN, "qty": 12, "reference": "ASN-2"},
        {"direction": "out", "gtin": GTIN, "lot": "L1", "qty": 5, "reference": "SO-9"},
    ]
    response = site.expect(body)
    assert response.status_code == 201
    created = response.get_json()
    assert created["total"] == 3 and created["next"] is None
    ids = [item["id"] for item in created["items"]]
    assert ids == sorted(ids)

    first = site.listed("?limit=2")
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next"]
    rest = site.listed(f"?limit=2&cursor={first['next']}")
    assert [i["id"] for i in first["items"] + rest["items"]] == ids[::-1]
    assert rest["next"] is None
    assert site.listed("?direction=out")["total"] == 1
    assert site.listed("?reference=ASN-2&gtin=6901234567892")["total"] == 1
    assert site.listed(f"?sscc={SSCC[1]}")["items"][0]["qty"] == 10
    assert site.listed("?status=open")["total"] == 3
    assert site.listed(warehouse="sh-02")["total"] == 0
    audit = site.call("GET", "/api/v1/audit").get_json()["items"]
    entry = next(e for e in audit if e["action"] == "expected.created")
    assert entry["details"]["lines"] == 3 and entry["details"]["references"] == ["ASN-2", "SO-9"]


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        ({**LINE, "direction": None}, 422, "missing_field", {"field": "direction"}),
        ({**LINE, "sscc": "069123456789012341"}, 422, "invalid_sscc", {"field": "sscc"}),
        ({**LINE, "gtin": "6901234567891"}, 422, "invalid_gtin", {"field": "gtin"}),
        ({"direction": "in", "qty": 3}, 422, "missing_item", {"field": "sscc"}),
        ({**LINE, "qty": 0}, 422, "invalid_quantity", {"field": "qty"}),
        ({**LINE, "weight_kg": -1}, 422, "invalid_weight", {"field": "weight_kg"}),
        ({**LINE, "gate": "dock 1"}, 422, "invalid_code", {"field": "gate"}),
        ({**LINE, "colour": "red"}, 422, "unknown_field", {"field": "colour"}),
        ({**LINE, "reference": "x" * 65}, 422, "invalid_field", {"field": "reference"}),
        ({**LINE, "reference": "ASN\x1b-1"}, 422, "invalid_field", {"field": "reference"}),
        ({**LINE, "gate": "dock-1\n"}, 422, "invalid_code", {"field": "gate"}),
        ([LINE, {**LINE, "sscc": SSCC[1], "qty": "40"}], 422, "invalid_quantity", None),
        ([], 422, "no_lines", None),
        ([LINE] * 1001, 422, "too_many_lines", None),
        ("ASN-1", 400, "invalid_body", None),
        ([LINE, 7], 400, "invalid_body", None),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_stored(site, body, status, code, details):
    response = site.expect(body)
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (status, code), error
    if details is not None:
        assert error["details"] == details
    if code == "invalid_quantity" and isinstance(body, list):
        assert error["details"] == {"field": "qty", "index": 1}
    assert site.rows() == 0


def test_an_sscc_is_expected_once_while_its_line_is_open(site):
    first = site.expect(LINE).get_json()
    again = site.expect([{**LINE, "sscc": SSCC[1]}, LINE])
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_expected"
    assert again.get_json()["error"]["details"] == {
        "field": "sscc",
        "sscc": SSCC[0],
        "expected_id": first["id"],
        "index": 1,
    }
    twice = site.expect([{**LINE, "sscc": SSCC[1]}, {**LINE, "sscc": SSCC[1]}])
    assert twice.get_json()["error"]["details"]["index"] == 1
    assert site.rows() == 1
    # The same pallet may be expected inbound and outbound, and again once cancelled.
    assert site.expect({**LINE, "direction": "out"}).status_code == 201
    path = f"/api/v1/warehouses/{WAREHOUSE}/expected/{first['id']}"
    assert site.call("DELETE", path).status_code == 200
    assert site.expect(LINE).status_code == 201


def test_an_open_line_can_be_cancelled_a_done_one_cannot(site):
    line = site.expect(LINE).get_json()
    path = f"/api/v1/warehouses/{WAREHOUSE}/expected/{line['id']}"
    cancelled = site.call("DELETE", path)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled" and cancelled.get_json()["closed_at"]
    assert site.call("DELETE", path).get_json() == cancelled.get_json()  # repeated: same
    assert site.call("DELETE", f"/api/v1/warehouses/sh-02/expected/{line['id']}").status_code == 404
    assert site.call("DELETE", f"/api/v1/warehouses/{WAREHOUSE}/expected/999999").status_code == 404
    assert (
        site.call("DELETE", f"/api/v1/warehouses/{WAREHOUSE}/expected/2147483648").status_code
        == 404
    )

    received = site.expect({**LINE, "sscc": SSCC[1]}).get_json()
    site.receive(1, SSCC[1])
    refused = site.call("DELETE", f"/api/v1/warehouses/{WAREHOUSE}/expected/{received['id']}")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (409, "line_closed")
    assert site.listed("?status=received")["items"][0]["id"] == received["id"]


@pytest.mark.parametrize(
    ("query", "code", "parameter"),
    [
        ("?status=lost", "invalid_parameter", "status"),
        ("?direction=up", "invalid_parameter", "direction"),
        ("?gtin=123", "invalid_parameter", "gtin"),
        ("?limit=0", "invalid_parameter", "limit"),
        (f"?sscc={'0' * 65}", "invalid_parameter", "sscc"),
        ("?reference=ASN%1B-1", "invalid_parameter", "reference"),
        ("?cursor=abc", "invalid_cursor", None),
        ("?cursor=WzFd", "invalid_cursor", None),  # [1]: not a line id
    ],
)
def test_bad_list_parameters_are_400(site, query, code, parameter):
    response = site.call("GET", f"/api/v1/warehouses/{WAREHOUSE}/expected{query}")
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (400, code), error
    if parameter is not None:
        assert error["details"] == {"parameter": parameter}


def test_roles_and_the_edition_decide_who_may_expect_goods(site):
    for role in ("viewer", "operator"):
        created = site.call(
            "POST",
            "/api/v1/users",
            {"email": f"{role}@exp.test", "password": STRONG, "role": role, "name": role},
        )
        assert created.status_code == 201, created.get_json()
    viewer = site.cloud.login("viewer@exp.test").get_json()["token"]
    operator = site.cloud.login("operator@exp.test").get_json()["token"]
    refused = site.expect(LINE, token=viewer)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (403, "forbidden")
    seen = site.call("GET", f"/api/v1/warehouses/{WAREHOUSE}/expected", token=viewer)
    assert seen.status_code == 200
    assert site.expect(LINE, token=operator).status_code == 201

    newcomer = site.cloud.register("新仓储", "new@exp.test")["token"]
    site.call("POST", "/api/v1/warehouses", {"code": "n-01", "name": "新库"}, token=newcomer)
    unpaid = site.expect(LINE, warehouse="n-01", token=newcomer)
    assert unpaid.status_code == 403
    assert unpaid.get_json()["error"]["details"] == {"feature": "inbound", "edition": None}
    listing = site.call("GET", "/api/v1/warehouses/n-01/expected", token=newcomer)
    assert listing.status_code == 200 and listing.get_json()["total"] == 0


# --- delivery to the edge boxes -----------------------------------------------------------


def test_a_warehouse_without_expected_goods_sends_nothing_on_hello(site):
    replies = site.hello()
    assert [r.topic for r in replies] == [site.address.topic(wire.DOWN_ACK)]
    assert site.service.expected_sweep() == []


def test_hello_sends_every_open_line_in_self_contained_parts(site, monkeypatch):
    monkeypatch.setattr(expected_sync, "CHUNK_LINES", 2)
    created = site.expect(
        [{"direction": "in", "sscc": s, "qty": 1} for s in SSCC]
        + [{"direction": "out", "gtin": GTIN, "qty": n} for n in (1, 2)]
    ).get_json()["items"]
    ids = [line["id"] for line in created]
    site.call("DELETE", f"/api/v1/warehouses/{WAREHOUSE}/expected/{ids[1]}")
    open_ids = [i for i in ids if i != ids[1]]

    parts = site.commands(site.hello())
    assert [p.span for p in parts] == [(0, open_ids[1]), (open_ids[1], None)]
    assert [[line.id for line in p.lines] for p in parts] == [open_ids[:2], open_ids[2:]]
    assert {p.version for p in parts} == {2}  # created, then one cancel
    first = parts[0].lines[0]
    assert (first.status, first.gate, first.line.sscc, first.line.direction) == (
        "open",
        None,
        SSCC[0],
        "in",
    )
    assert site.service.expected_sweep() == []  # the box has everything

    # A warehouse whose lines are all done still tells its boxes so, in one empty part.
    for line_id in open_ids:
        site.call("DELETE", f"/api/v1/warehouses/{WAREHOUSE}/expected/{line_id}")
    (empty,) = site.commands(site.hello())
    assert (empty.span, empty.lines) == ((0, None), ())


def test_the_sweep_sends_each_change_once(site):
    first = site.expect(LINE).get_json()
    site.hello()
    assert site.service.expected_sweep() == []
    second = site.expect({**LINE, "sscc": SSCC[1], "gate": None}).get_json()
    (change,) = site.commands(site.service.expected_sweep())
    assert change.span is None and [line.id for line in change.lines] == [second["id"]]
    # Another ingest worker sweeping at the same moment finds nothing left to send.
    assert IngestService(site.cloud.engine).expected_sweep() == []

    site.call("DELETE", f"/api/v1/warehouses/{WAREHOUSE}/expected/{first['id']}")
    (change,) = site.commands(site.service.expected_sweep())
    assert [(line.id, line.status) for line in change.lines] == [(first["id"], "cancelled")]
    assert site.service.expected_sweep() == []


def test_a_box_never_sent_anything_gets_the_full_set_from_the_sweep(site):
    line = site.expect(LINE).get_json()
    (full,) = site.commands(site.service.expected_sweep())
    assert full.span == (0, None) and [item.id for item in full.lines] == [line["id"]]
    assert site.service.expected_sweep() == []


def test_a_revoked_box_is_sent_nothing(site):
    site.expect(LINE)
    assert site.call("DELETE", f"/api/v1/devices/{DEVICE}").status_code in (200, 204)
    assert site.service.expected_sweep() == []


def test_a_receipt_of_the_sscc_closes_its_line_and_the_boxes_hear_of_it(site):
    inbound = site.expect(LINE).get_json()
    outbound = site.expect({**LINE, "sscc": SSCC[1], "direction": "out"}).get_json()
    site.hello()
    site.receive(1, SSCC[0])
    site.receive(2, SSCC[1])  # received, but that line expects it to leave: stays open
    site.receive(3, SSCC[0])  # received again (another pallet label?): nothing to close
    lines = {item["id"]: item for item in site.listed()["items"]}
    assert lines[inbound["id"]]["status"] == "received"
    assert lines[inbound["id"]]["movement_id"] == f"{DEVICE}-1"
    assert lines[outbound["id"]]["status"] == "open"
    (change,) = site.commands(site.service.expected_sweep())
    assert [(line.id, line.status) for line in change.lines] == [(inbound["id"], "received")]

    site.receive(4, SSCC[1], kind="ship")
    assert site.listed(f"?sscc={SSCC[1]}")["items"][0]["status"] == "shipped"


def test_lines_of_other_warehouses_never_reach_this_box(site):
    site.expect(LINE, warehouse="sh-02")
    assert site.commands(site.hello()) == []
    assert site.service.expected_sweep() == []
