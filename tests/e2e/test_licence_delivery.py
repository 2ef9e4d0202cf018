"""A licence travels the real path: the tenant pays in the cloud API, the ingest worker signs a
licence and publishes it on down/cmd through mosquitto, the sync agent installs it, and the edge
box then answers to it offline: new receipts refused once the quota is used up, shipping on."""

from __future__ import annotations

import sqlalchemy as sa

from cloud_api.platform.schema import packages
from tests.support.cloud import confirm_over_http
from tests.support.polling import eventually

RECEIPT = {"type": "receive", "sku": "A-1", "qty": 5, "weight_kg": 10, "customer": "acme"}
SHIPMENT = {"type": "ship", "sku": "A-1", "qty": 1, "customer": "acme"}


def wait_for_licence(stack, predicate, timeout: float = 60.0) -> dict:
    """The box's licence once predicate holds for it; the sweep runs every second."""

    def licence() -> dict:
        return stack.edge("GET", "/api/v1/licence").json()

    def held() -> dict | None:
        body = licence()
        return body if predicate(body) else None

    return eventually(
        held,
        timeout=timeout,
        interval=0.2,
        what="the licence at the box",
        context=lambda: f"the box holds {licence()}\n{stack.tails()}",
    )


def test_a_paid_package_reaches_the_box_and_a_used_up_quota_locks_receipts(make_stack):
    stack = make_stack()
    assert stack.edge("GET", "/api/v1/licence").json()["state"] == "trial"
    assert stack.edge("POST", "/api/v1/movements", json=RECEIPT).status_code == 201

    order = stack.cloud(
        "POST",
        "/api/v1/orders",
        json={"edition": "professional", "billing_mode": "flow", "quantity": 1},
    )
    assert order.status_code == 201, order.text
    paid = confirm_over_http(stack.http, stack.cloud_url, stack.engine, order.json(), "E2E-1")
    assert paid.status_code == 200, paid.text

    held = wait_for_licence(stack, lambda h: h["state"] == "valid")
    assert held["state"] == "valid", held
    assert held["edition"] == "professional" and held["inbound_allowed"] is True
    assert stack.edge("POST", "/api/v1/movements", json=RECEIPT).status_code == 201

    # The quota runs out; the next day's licence says so, and the box refuses receipts alone.
    with stack.engine.begin() as conn:
        conn.execute(packages.update().values(consumed=packages.c.total))
    first_serial = held["serial"]
    with stack.engine.begin() as conn:  # make the box due now rather than tomorrow
        conn.execute(
            sa.text("UPDATE licences SET issued_at = issued_at - INTERVAL '2 days'")
            if stack.engine.dialect.name == "postgresql"
            else sa.text("UPDATE licences SET issued_at = datetime(issued_at, '-2 days')")
        )
    held = wait_for_licence(stack, lambda h: h["serial"] != first_serial)
    assert held["serial"] != first_serial and held["inbound_allowed"] is False, held
    refused = stack.edge("POST", "/api/v1/movements", json=RECEIPT)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "quota_exhausted")
    assert stack.edge("POST", "/api/v1/movements", json=SHIPMENT).status_code == 201
