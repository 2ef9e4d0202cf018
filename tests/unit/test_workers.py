"""The one background loop: busy rounds run back to back, idle rounds wait, a failing round
is logged and the loop goes on, stop ends it. Events, not clocks."""

from __future__ import annotations

import threading

from cloud_api.platform.workers import PeriodicWorker

LONG = 3600.0  # an idle wait that would hang the test if the worker ever took it wrongly


def test_busy_rounds_do_not_wait_and_stop_ends_the_loop():
    rounds: list[int] = []
    drained = threading.Event()

    def step() -> int:
        rounds.append(1)
        if len(rounds) == 5:
            drained.set()
            return 0  # the backlog is empty: now the worker waits
        return 1

    worker = PeriodicWorker("test", step, idle_s=LONG)
    worker.start()
    assert drained.wait(30)
    worker.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert len(rounds) == 5  # five rounds without any wait, then the idle wait, then stop


def test_a_failing_round_is_logged_and_the_loop_goes_on(caplog):
    calls: list[int] = []
    recovered = threading.Event()

    def step() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database restarted")
        recovered.set()
        return 0

    worker = PeriodicWorker("flaky", step, idle_s=0.01)
    worker.start()
    assert recovered.wait(30)
    worker.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert any("flaky worker: round failed" in r.getMessage() for r in caplog.records)
