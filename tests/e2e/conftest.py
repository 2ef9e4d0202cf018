from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.support.workload import expected_stock, receipts, shipments


@pytest.fixture
def make_stack(tmp_path):
    stacks: list[Stack] = []

    def make(database_url: str | None = None, *, ingest_workers: int = 1, start: bool = True):
        url = database_url or f"sqlite:///{tmp_path / 'cloud.sqlite'}"
        stack = Stack(tmp_path / f"stack{len(stacks)}", url, ingest_workers=ingest_workers)
        stacks.append(stack)
        if start:
            stack.start_all()
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()


def workload(n: int, seed: int = 1) -> list[list[dict[str, Any]]]:
    """n movements in two waves: 70% receipts, then shipments the receipts always cover.

    Waves are posted one after the other, so no shipment can overtake its receipt."""
    rng = random.Random(seed)
    received = receipts(int(n * 0.7), rng)
    shipped = shipments(received, n - len(received), rng)
    received += receipts(n - len(received) - len(shipped), rng)  # if a goods line ran dry
    return [received, shipped]


def cloud_stock(stack: Stack) -> dict[tuple, tuple[int, int]]:
    result = {}
    cursor = None
    while True:
        query = "/api/v1/stock?limit=5000" + (f"&cursor={cursor}" if cursor else "")
        page = stack.cloud("GET", query).json()
        for s in page["items"]:
            key = (s["customer"] or "", s["gtin"] or "", s["sku"] or "", s["lot"] or "")
            result[key] = (s["qty"], round(s["weight_kg"] * 1000))
        cursor = page["next"]
        if not cursor:
            return result


def edge_stock(stack: Stack) -> dict[tuple, tuple[int, int]]:
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for s in stack.edge("GET", "/api/v1/stock").json()["items"]:
        key = (s["customer"] or "", s["gtin"] or "", s["sku"] or "", s["lot"] or "")
        totals[key][0] += s["qty"]
        totals[key][1] += round(s["weight_kg"] * 1000)
    return {k: (v[0], v[1]) for k, v in totals.items() if v != [0, 0]}


def assert_converged(stack: Stack, accepted: list[dict[str, Any]], last_seq: int) -> None:
    """Nothing lost, nothing doubled: the cloud holds exactly the edge's movements."""
    counts = stack.wait_synced(last_seq)
    assert counts == {"rows": last_seq, "distinct_seqs": last_seq, "watermark": last_seq}
    status = stack.sync_status()
    assert (status["last_seq"], status["acked_through"], status["backlog"]) == (
        last_seq,
        last_seq,
        0,
    )
    expected = expected_stock(accepted)
    assert edge_stock(stack) == expected
    assert cloud_stock(stack) == expected
    view = stack.cloud("GET", "/api/v1/devices/sh-01-edge1/sync").json()
    assert (view["watermark"], view["lag"], view["dead_letters"], view["quarantined"]) == (
        last_seq,
        0,
        0,
        0,
    )
