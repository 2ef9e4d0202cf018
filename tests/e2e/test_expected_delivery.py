"""Expected goods travel the real path: a line made through the cloud API is sent by the ingest
worker on down/cmd through mosquitto, the sync agent stores it in the edge box's gate tables,
a pushed snapshot of that pallet becomes a receipt at the dock gate, the receipt syncs back to
the cloud ledger, and the cloud closes the line."""

from __future__ import annotations

import pytest

from tests.support.cloud import confirm_over_http
from tests.support.gate_media import make_pallets, snapshot_jpeg
from tests.support.labels import require_fonts
from tests.support.polling import eventually

ARRIVAL_S = 60.0  # the sweeps run every half second; this bounds a busy CI box


@pytest.fixture(scope="module")
def pallets():
    require_fonts()
    return make_pallets(2, seed=33)


def test_a_cloud_asn_line_reaches_the_gate_and_its_receipt_comes_back(make_stack, pallets):
    stack = make_stack()
    # Inbound (入库管理) comes with every edition; this tenant buys one.
    order = stack.cloud(
        "POST", "/api/v1/orders", json={"edition": "basic", "billing_mode": "flow", "quantity": 1}
    )
    assert order.status_code == 201, order.text
    paid = confirm_over_http(stack.http, stack.cloud_url, stack.engine, order.json(), "E2E-7")
    assert paid.status_code == 200, paid.text
    gate = stack.edge("POST", "/api/v1/gates", json={"code": "dock-1", "direction": "in"})
    assert gate.status_code == 201, gate.text
    camera_token = gate.json()["camera_token"]

    arriving, cancelled = pallets
    created = stack.cloud(
        "POST",
        "/api/v1/warehouses/sh-01/expected",
        json=[
            {
                "direction": "in",
                "sscc": arriving.sscc,
                "gtin": arriving.gtin,
                "lot": arriving.lot,
                "qty": arriving.quantity,
                "weight_kg": 350.0,
                "customer": "acme",
                "reference": "ASN-E2E-1",
                "gate": "dock-1",
            },
            {"direction": "in", "sscc": cancelled.sscc, "qty": 10, "reference": "ASN-E2E-1"},
        ],
    )
    assert created.status_code == 201, created.text
    line, other = created.json()["items"]

    def edge_lines() -> dict[int, dict]:
        items = stack.edge("GET", "/api/v1/gates/dock-1/expected").json()["items"]
        return {item["cloud_id"]: item for item in items if item["source"] == "cloud"}

    arrived = eventually(
        lambda: len(edge_lines()) == 2 and edge_lines(),
        timeout=ARRIVAL_S,
        what="both lines at the box",
        context=stack.tails,
    )
    assert arrived[line["id"]]["status"] == "open"
    assert arrived[line["id"]]["sscc"] == arriving.sscc

    # A line cancelled in the cloud is dropped by the box.
    cancel = stack.cloud("DELETE", f"/api/v1/warehouses/sh-01/expected/{other['id']}")
    assert cancel.status_code == 200, cancel.text
    eventually(
        lambda: edge_lines()[other["id"]]["status"] == "cancelled",
        timeout=ARRIVAL_S,
        what="the cancellation at the box",
        context=stack.tails,
    )

    # The pallet comes through the door: a camera pushes a snapshot with its label.
    pushed = stack.http.post(
        f"{stack.edge_url}/api/v1/gates/dock-1/frames?camera=cam-1",
        data=snapshot_jpeg(arriving),
        headers={"Authorization": f"Bearer {camera_token}", "Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert pushed.status_code == 202, pushed.text

    def event() -> dict | None:
        items = stack.edge("GET", "/api/v1/gates/dock-1/events").json()["items"]
        return next((e for e in items if e["outcome"] != "open"), None)

    settled = eventually(event, timeout=ARRIVAL_S, what="the gate event", context=stack.tails)
    assert (settled["outcome"], settled["sscc"]) == ("received", arriving.sscc)
    assert edge_lines()[line["id"]]["status"] == "received"

    # The receipt syncs to the cloud ledger, and the cloud closes its line.
    def in_ledger() -> list[dict]:
        return stack.cloud("GET", "/api/v1/movements").json()["items"]

    (movement,) = eventually(
        in_ledger, timeout=ARRIVAL_S, what="the receipt in the cloud ledger", context=stack.tails
    )
    assert (movement["type"], movement["sscc"], movement["qty"], movement["customer"]) == (
        "receive",
        arriving.sscc,
        arriving.quantity,
        "acme",
    )
    assert movement["movement_id"] == settled["movement_id"]

    def cloud_line() -> dict:
        items = stack.cloud("GET", "/api/v1/warehouses/sh-01/expected?reference=ASN-E2E-1")
        return {item["id"]: item for item in items.json()["items"]}[line["id"]]

    closed = eventually(
        lambda: cloud_line()["status"] == "received" and cloud_line(),
        timeout=ARRIVAL_S,
        what="the cloud to close its line",
        context=stack.tails,
    )
    assert closed["movement_id"] == movement["movement_id"]
    assert edge_lines()[line["id"]]["status"] == "received"  # and the box keeps it so
