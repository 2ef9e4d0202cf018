"""The one background loop of ``cangyun cloud serve``: webhook deliveries, notifications and
the billing scheduler are each a ``PeriodicWorker`` around a function that does one round."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicWorker(threading.Thread):
    """Calls ``step`` until stopped. ``step`` returns how much it did: after a busy round the
    next one starts at once (a backlog drains at full speed), after an idle one the worker
    waits ``idle_s``. An exception is logged and the loop goes on after the wait: a database
    restart or one bad row must not end the deliveries of everyone."""

    def __init__(self, name: str, step: Callable[[], int], idle_s: float) -> None:
        super().__init__(name=name, daemon=True)
        self.step = step
        self.idle_s = idle_s
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = self.step()
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("%s worker: round failed", self.name)
                busy = 0
            if not busy:
                self.stopping.wait(self.idle_s)

    def stop(self) -> None:
        self.stopping.set()
