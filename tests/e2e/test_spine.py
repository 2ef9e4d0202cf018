"""End to end with real processes and a real mosquitto: every acknowledged movement reaches
the cloud ledger exactly once, whatever is killed along the way."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests

from tests.e2e.conftest import assert_converged, workload
from tests.support.polling import eventually
from tests.support.workload import post_all

N = 10_000
# How long each killed process stays down: a fault to heal from, not a wait for anything.
SYNC_DOWN_S, INGEST_DOWN_S, BROKER_DOWN_S = 0.5, 1.0, 1.5
OUTAGE_S, OUTAGE_POST_EVERY_S = 120, 2  # the two-minute outage, posting a chunk every 2 s


def post_with_fault(stack, movements, fault, at_fractions):
    """Post all movements concurrently; call fault(i) when i-th fraction is reached."""
    done = 0
    lock = threading.Lock()
    total = sum(len(wave) for wave in movements)
    triggers = sorted(int(f * total) for f in at_fractions)
    fired = threading.Event()
    pending = list(triggers)

    def on_result(_index, _result):
        nonlocal done
        with lock:
            done += 1
            if pending and done >= pending[0]:
                pending.pop(0)
                fired.set()

    faults = threading.Thread(target=_fault_loop, args=(fired, fault, len(triggers)), daemon=True)
    faults.start()
    results = post_all(stack.edge_url, stack.device.api_token, movements, on_result=on_result)
    faults.join(timeout=60)
    return results


def _fault_loop(fired, fault, times):
    for i in range(times):
        fired.wait()
        fired.clear()
        fault(i)


def flat(waves):
    return [m for wave in waves for m in wave]


def starts(stack, name):
    """How many times a process of the stack logged its start."""
    marker = {"sync": "sync agent for", "ingest-0": "subscribed to", "ingest-1": "subscribed to"}
    return stack.processes[name].log_path.read_text().count(marker[name])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ten_thousand_movements_arrive_exactly_once(make_stack, backend, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    stack = make_stack(url)
    movements = workload(N)
    results = post_all(stack.edge_url, stack.device.api_token, movements)
    assert [r.status_code for r in results] == [201] * N
    assert sorted(r.json()["seq"] for r in results) == list(range(1, N + 1))
    assert_converged(stack, flat(movements), N)


def test_kill9_of_the_sync_agent_mid_stream(make_stack):
    stack = make_stack()
    movements = workload(N, seed=2)

    def fault(_i):
        stack.kill("sync")
        time.sleep(SYNC_DOWN_S)
        stack.start("sync")

    results = post_with_fault(stack, movements, fault, [0.25, 0.5, 0.8])
    assert all(r.status_code == 201 for r in results)
    assert_converged(stack, flat(movements), N)
    assert starts(stack, "sync") == 4  # the faults really happened


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill9_of_ingest_mid_stream(make_stack, backend, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    # Two workers on a shared subscription; one is killed repeatedly, so the other carries on
    # and the dead one's in-flight messages are redelivered or resent.
    stack = make_stack(url, ingest_workers=2)
    movements = workload(N, seed=3)

    def fault(i):
        victim = stack.ingest_names[i % 2]
        stack.kill(victim)
        time.sleep(INGEST_DOWN_S)
        stack.start(victim)

    results = post_with_fault(stack, movements, fault, [0.2, 0.45, 0.7])
    assert all(r.status_code == 201 for r in results)
    assert_converged(stack, flat(movements), N)
    assert starts(stack, "ingest-0") + starts(stack, "ingest-1") >= 5


def test_broker_killed_and_restarted_mid_stream(make_stack):
    stack = make_stack()
    movements = workload(N, seed=4)

    def fault(_i):
        stack.kill("broker")
        time.sleep(BROKER_DOWN_S)
        stack.start("broker")

    results = post_with_fault(stack, movements, fault, [0.3, 0.7])
    assert all(r.status_code == 201 for r in results)
    assert_converged(stack, flat(movements), N)
    sync_log = stack.processes["sync"].log_path.read_text()
    assert sync_log.count("connected to mqtt://") >= 3  # first connect plus two reconnects


def test_kill9_of_the_edge_loses_no_acknowledged_movement(make_stack):
    stack = make_stack()
    movements = workload(6000, seed=5)[0]  # receipts only: any subset is valid
    accepted_ids: list[str] = []
    lock = threading.Lock()

    def on_result(_index, result):
        if isinstance(result, requests.Response) and result.status_code == 201:
            with lock:
                accepted_ids.append(result.json()["id"])

    killer = threading.Timer(2.0, stack.kill, args=("edge",))
    killer.start()
    results = post_all(stack.edge_url, stack.device.api_token, [movements], on_result=on_result)
    killer.join()
    failed = [r for r in results if not isinstance(r, requests.Response) or r.status_code != 201]
    assert failed, "the edge was killed mid-stream, some requests must have failed"

    database = stack.edge_settings.database_path
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT id FROM movements")}
        last_seq = conn.execute("SELECT MAX(seq) FROM movements").fetchone()[0]
        outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert set(accepted_ids) <= stored  # every 201 survived
    assert len(stored) == last_seq == outbox  # gapless, outbox complete

    stack.start("edge")
    # Movements the edge committed but never answered are in the ledger too: the client
    # must treat a failed request as "maybe", which is what Idempotency-Key is for.
    counts = stack.wait_synced(last_seq)
    assert counts["rows"] == counts["distinct_seqs"] == last_seq


@pytest.mark.slow
def test_two_minute_broker_outage_edge_keeps_accepting_then_drains(make_stack):
    stack = make_stack()
    waves = workload(4000, seed=6)
    before = [waves[0][:1000]]
    assert all(
        r.status_code == 201 for r in post_all(stack.edge_url, stack.device.api_token, before)
    )
    stack.wait_synced(1000)

    stack.kill("broker")
    outage_started = time.monotonic()
    during = waves[0][1000:] + waves[1]  # 3000 movements spread over two minutes
    posted = 0
    statuses = []
    while time.monotonic() - outage_started < OUTAGE_S:
        chunk = during[posted : posted + 50]
        if chunk:
            results = post_all(stack.edge_url, stack.device.api_token, [chunk], threads=2)
            assert [r.status_code for r in results] == [201] * len(chunk)
            posted += len(chunk)
        statuses.append(stack.sync_status())
        time.sleep(OUTAGE_POST_EVERY_S)
    rest = during[posted:]
    if rest:
        assert all(
            r.status_code == 201 for r in post_all(stack.edge_url, stack.device.api_token, [rest])
        )
    status = stack.sync_status()
    assert status["online"] is False
    assert status["backlog"] == 3000
    assert status["oldest_unacked_age_s"] >= 110
    assert any(s["online"] is False for s in statuses[1:])

    stack.start("broker")
    assert_converged(stack, waves[0] + waves[1], 4000)
    assert stack.sync_status()["online"] is True


def test_sigterm_stops_the_sync_agent_cleanly_and_the_cloud_sees_it_offline(make_stack):
    stack = make_stack()
    response = stack.edge(
        "POST", "/api/v1/movements", json={"type": "receive", "sku": "A", "qty": 1}
    )
    stack.wait_synced(response.json()["seq"])

    def online() -> bool:
        return stack.cloud("GET", "/api/v1/devices/sh-01-edge1/sync").json()["online"]

    eventually(online, timeout=30, interval=0.2, what="the box online", context=stack.tails)
    assert stack.processes["sync"].stop() == 0
    eventually(
        lambda: not online(),
        timeout=30,
        interval=0.2,
        what="the cloud to see the box offline",
        context=stack.tails,
    )
    assert "sync agent stopped" in stack.processes["sync"].tail()
    assert stack.sync_status()["online"] is False
