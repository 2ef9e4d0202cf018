"""Warehouse-shaped movement streams for tests and benchmarks, with the stock they imply."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from cangyun.identifiers import gs1_check_digit

CUSTOMERS = ["acme-foods", "bright-pharma", "cold-chain"]


def gtin13(n: int) -> str:
    body = f"690{n:09d}"
    return body + str(gs1_check_digit(body))


def receipts(count: int, rng: random.Random, *, items: int = 40) -> list[dict[str, Any]]:
    movements = []
    for _ in range(count):
        item = rng.randrange(items)
        movement: dict[str, Any] = {
            "type": "receive",
            "qty": rng.randint(1, 40),
            "lot": f"L{rng.randrange(5)}",
            "customer": CUSTOMERS[item % len(CUSTOMERS)],
        }
        if item % 2:
            movement["gtin"] = gtin13(item)
        else:
            movement["sku"] = f"SKU-{item:03d}"
        movement["weight_kg"] = round(movement["qty"] * rng.uniform(0.2, 25.0), 3)
        movements.append(movement)
    return movements


def shipments(
    received: list[dict[str, Any]], count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """Shipments that never take more than was received of a goods/lot/owner, with explicit
    weights, so any order of arrival is valid and the final stock is exact."""
    left: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0])
    for m in received:
        entry = left[_key(m)]
        entry[0] += m["qty"]
    movements = []
    keys = [k for k, v in left.items() if v[0] > 0]
    for _ in range(count):
        key = rng.choice(keys)
        if left[key][0] == 0:
            continue
        qty = rng.randint(1, min(5, int(left[key][0])))
        left[key][0] -= qty
        customer, gtin, sku, lot = key
        movement: dict[str, Any] = {
            "type": "ship",
            "qty": qty,
            "lot": lot,
            "customer": customer,
            "weight_kg": round(qty * 0.5, 3),
        }
        if gtin:
            movement["gtin"] = gtin
        else:
            movement["sku"] = sku
        movements.append(movement)
    return movements


def _key(m: dict[str, Any]) -> tuple[str, str, str, str]:
    gtin = m.get("gtin", "")
    return (
        m.get("customer", ""),
        gtin.zfill(14) if gtin else "",
        m.get("sku", ""),
        m.get("lot", ""),
    )


def expected_stock(movements: list[dict[str, Any]]) -> dict[tuple, tuple[int, int]]:
    """(customer, gtin-14, sku, lot) -> (pieces, grams) after all movements."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for m in movements:
        sign = 1 if m["type"] == "receive" else -1
        total = totals[_key(m)]
        total[0] += sign * m["qty"]
        total[1] += sign * round(m["weight_kg"] * 1000)
    return {k: (v[0], v[1]) for k, v in totals.items() if v != [0, 0]}


def post_all(
    url: str,
    token: str,
    waves: list[list[dict[str, Any]]],
    *,
    threads: int = 6,
    on_result: Callable[[int, requests.Response | Exception], None] | None = None,
) -> list[requests.Response | Exception]:
    """POST every movement, concurrently within a wave, one wave after the other; return each
    response (or the exception it raised) in order."""
    results: list[requests.Response | Exception] = []
    for wave in waves:
        results += _post_wave(url, token, wave, threads, on_result)
    return results


def _post_wave(
    url: str,
    token: str,
    movements: list[dict[str, Any]],
    threads: int,
    on_result: Callable[[int, requests.Response | Exception], None] | None,
) -> list[requests.Response | Exception]:
    local = threading.local()

    def post(index: int) -> requests.Response | Exception:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
        try:
            result: requests.Response | Exception = session.post(
                url + "/api/v1/movements", json=movements[index], timeout=30
            )
        except requests.RequestException as exc:
            result = exc
        if on_result:
            on_result(index, result)
        return result

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, range(len(movements))))
