"""Expected goods travel the real path: a line made through the cloud API is sent by the ingest
worker on down/cmd through mosquitto, the sync agent stores it in the edge box's gate tables,
a pushed snapshot of that pallet becomes a receipt at the dock gate, the receipt syncs back to
the cloud ledger, and the cloud closes the line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.gate_media import make_pallets, snapshot_jpeg
from tests.support.labels import require_fonts


def wait_until(predicate: Callable[[], Any], what: str, stack, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert value, f"timed out waiting for {what}\n{stack.tails()}"
    return value


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
    paid = stack.cloud(
        "POST", f"/api/v1/orders/{order.json()['id']}/pay", json={"payment_reference": "E2E-7"}
    )
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

    arrived = wait_until(lambda: len(edge_lines()) == 2 and edge_lines(), "the lines", stack)
    assert arrived[line["id"]]["status"] == "open"
    assert arrived[line["id"]]["sscc"] == arriving.sscc

    # A line cancelled in the cloud is dropped by the box.
    cancel = stack.cloud("DELETE", f"/api/v1/warehouses/sh-01/expected/{other['id']}")
    assert cancel.status_code == 200, cancel.text
    wait_until(
        lambda: edge_lines()[other["id"]]["status"] == "cancelled", "the cancellation", stack
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

    settled = wait_until(event, "the gate event", stack)
    assert (settled["outcome"], settled["sscc"]) == ("received", arriving.sscc)
    assert edge_lines()[line["id"]]["status"] == "received"

    # The receipt syncs to the cloud ledger, and the cloud closes its line.
    def in_ledger() -> list[dict]:
        return stack.cloud("GET", "/api/v1/movements").json()["items"]

    (movement,) = wait_until(in_ledger, "the receipt in the cloud ledger", stack)
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

    closed = wait_until(lambda: cloud_line()["status"] == "received" and cloud_line(), "", stack)
    assert closed["movement_id"] == movement["movement_id"]
    assert edge_lines()[line["id"]]["status"] == "received"  # and the box keeps it so
