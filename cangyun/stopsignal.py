"""SIGTERM and SIGINT as a plain "please stop" call, safe to take locks in.

A Python signal handler runs in the main thread between two bytecodes, possibly while that
thread holds the very lock the handler needs: ``Event.set()`` from a handler deadlocks when
the signal lands while the main thread is inside ``Event.wait(timeout)`` re-taking the
event's condition lock. Seen here as a demo that ignored Ctrl-C for good. So the handler
only writes the signal number to a pipe; a small thread reads it and makes the call.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(callback: Callable[[str], None]) -> None:
    """Call ``callback(signal name)`` from a helper thread on every SIGTERM or SIGINT.

    Must be called from the main thread (only it may install handlers). The callback may
    run more than once (a second Ctrl-C); make it idempotent."""
    read_fd, write_fd = os.pipe()

    def _handler(signum: int, _frame: object) -> None:
        os.write(write_fd, bytes([signum]))  # no lock taken: safe whatever main was doing

    def _deliver() -> None:
        while True:
            data = os.read(read_fd, 1)
            if not data:
                return
            callback(signal.Signals(data[0]).name)

    threading.Thread(target=_deliver, name="stop-signal", daemon=True).start()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handler)
