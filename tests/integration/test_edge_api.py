"""Edge HTTP API on a real SQLite file through the Flask test client."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

import pytest

from cangyun import movement
from tests.conftest import EDGE_TOKEN

TOKEN = EDGE_TOKEN


@pytest.fixture
def settings(edge_settings):
    return edge_settings


@pytest.fixture
def client(edge_client):
    return edge_client


def table_counts(settings) -> tuple[int, int, int]:
    with sqlite3.connect(settings.database_path) as conn:
        return tuple(
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("movements", "outbox", "stock")
        )


def test_receive_answers_201_with_id_and_seq_and_writes_all_three_tables(client, settings):
    response = client.post(
        "/api/v1/movements",
        json={"type": "receive", "gtin": "6901234567892", "qty": 10, "lot": "L1", "weight_kg": 20},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["seq"] == 1 and len(body["id"]) == 36 and body["synced"] is False
    assert response.headers["Location"].endswith(body["id"])
    assert table_counts(settings) == (1, 1, 1)


def test_seq_is_gapless_even_when_movements_are_refused(client):
    seqs = []
    for qty in (5, 0, 99, 5):  # the 0 is invalid, the 99-piece ship exceeds stock
        kind = "ship" if qty == 99 else "receive"
        response = client.post("/api/v1/movements", json={"type": kind, "sku": "A", "qty": qty})
        if response.status_code == 201:
            seqs.append(response.get_json()["seq"])
    assert seqs == [1, 2]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "<x/>", "content_type": "application/xml"}, 415, "unsupported_media_type"),
        ({"json": [1, 2]}, 422, "invalid_body"),
        ({"json": {"type": "teleport", "sku": "A", "qty": 1}}, 422, "unknown_type"),
        ({"json": {"type": "receive", "sku": "A", "qty": -1}}, 422, "invalid_quantity"),
        ({"json": {"type": "receive", "sku": "A", "qty": 10**9}}, 422, "invalid_quantity"),
        (
            {"json": {"type": "receive", "sku": "A", "qty": 1, "weight_kg": "heavy"}},
            422,
            "invalid_weight",
        ),
        ({"json": {"type": "ship", "sku": "A", "qty": 1}}, 409, "insufficient_stock"),
        (
            {"data": "x" * (300 * 1024), "content_type": "application/json"},
            413,
            "payload_too_large",
        ),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(client, settings, kwargs, status, code):
    response = client.post("/api/v1/movements", **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert set(response.get_json()["error"]) == {"code", "message", "details"}
    assert table_counts(settings) == (0, 0, 0)


def test_a_token_is_required(client):
    response = client.get("/api/v1/movements", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/api/v1/openapi.json", headers={"Authorization": ""}).status_code == 200


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/api/v1/nope").get_json()["error"]["code"] == "not_found"
    response = client.delete("/api/v1/movements")
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        405,
        "method_not_allowed",
    )


def test_idempotency_key_records_once(client, settings):
    headers = {"Idempotency-Key": "tap-1"}
    movement = {"type": "receive", "sku": "A", "qty": 3}
    first = client.post("/api/v1/movements", json=movement, headers=headers)
    second = client.post("/api/v1/movements", json=movement, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert table_counts(settings)[0] == 1


def test_concurrent_double_tap_records_once(settings, edge_app):
    app = edge_app
    results = []

    def tap():
        with app.test_client() as c:
            r = c.post(
                "/api/v1/movements",
                json={"type": "receive", "sku": "A", "qty": 1},
                headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "same"},
            )
            results.append(r.status_code)

    threads = [threading.Thread(target=tap) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 7 + [201]
    assert table_counts(settings)[0] == 1


def test_list_is_newest_first_with_cursor_and_total(client):
    for i in range(5):
        client.post("/api/v1/movements", json={"type": "receive", "sku": f"S{i}", "qty": 1})
    first = client.get("/api/v1/movements?limit=2").get_json()
    assert first["total"] == 5 and [m["seq"] for m in first["items"]] == [5, 4]
    second = client.get(f"/api/v1/movements?limit=2&cursor={first['next']}").get_json()
    assert [m["seq"] for m in second["items"]] == [3, 2]
    assert client.get("/api/v1/movements?sku=S1").get_json()["total"] == 1
    assert client.get("/api/v1/movements?limit=0").status_code == 400


def test_stock_follows_receive_putaway_pick_ship(client):
    post = lambda **m: client.post("/api/v1/movements", json=m)  # noqa: E731
    assert post(type="receive", sku="A", qty=10, weight_kg=10, customer="acme").status_code == 201
    assert post(type="putaway", sku="A", qty=10, to_location="B-01").status_code == 201
    assert post(type="pick", sku="A", qty=4, location="B-01").status_code == 201
    assert post(type="ship", sku="A", qty=3).status_code == 201  # owner and bin resolved
    stock = client.get("/api/v1/stock?sku=A").get_json()["items"]
    assert {(s["location"], s["qty"], s["weight_kg"], s["customer"]) for s in stock} == {
        ("B-01", 6, 6.0, "acme"),
        ("STAGING", 1, 1.0, "acme"),
    }


def test_storage_full_refuses_with_507_and_writes_nothing(settings, make_edge_app):
    tight = replace(settings, edge=replace(settings.edge, max_backlog=2))
    app = make_edge_app(tight)
    with app.test_client() as c:
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        for _ in range(2):
            assert (
                c.post(
                    "/api/v1/movements", json={"type": "receive", "sku": "A", "qty": 1}
                ).status_code
                == 201
            )
        response = c.post("/api/v1/movements", json={"type": "receive", "sku": "A", "qty": 1})
        assert response.status_code == 507
        assert response.get_json()["error"]["code"] == "storage_full"
    assert table_counts(tight)[0] == 2


def test_sync_status_before_any_agent(client):
    client.post("/api/v1/movements", json={"type": "receive", "sku": "A", "qty": 1})
    status = client.get("/api/v1/sync/status").get_json()
    assert status["online"] is False and status["agent_running"] is False
    assert (status["backlog"], status["acked_through"], status["last_seq"]) == (1, 0, 1)
    assert status["oldest_unacked_age_s"] >= 0


def test_the_documented_movement_is_the_one_parse_movement_takes(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    body = spec["paths"]["/api/v1/movements"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    assert schema == movement.movement_schema()
    assert set(schema["properties"]) == movement._API_FIELDS
    assert schema["properties"]["type"]["enum"] == list(movement.MOVEMENT_TYPES)
    assert schema["properties"]["qty"]["maximum"] == movement.MAX_QTY
    assert schema["properties"]["lot"]["maxLength"] == movement.MAX_LOT
    assert schema["properties"]["weight_kg"]["maximum"] == movement.MAX_WEIGHT_KG
    # What the schema refuses, the API refuses: a lot over its limit.
    too_long = {"type": "receive", "sku": "A", "qty": 1, "lot": "L" * (movement.MAX_LOT + 1)}
    refused = client.post("/api/v1/movements", json=too_long)
    assert (refused.status_code, refused.get_json()["error"]["details"]["field"]) == (422, "lot")
