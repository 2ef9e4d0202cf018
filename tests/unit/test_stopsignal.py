"""A stop signal that lands while the main thread holds the stop event's own lock still
stops the process (a handler calling Event.set() itself would deadlock right there)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from cangyun.stopsignal import on_stop_signal

    stopping = threading.Event()
    names = []
    on_stop_signal(lambda name: (names.append(name), stopping.set()))
    # Hold the event's condition lock, as Event.wait(timeout) does when it wakes, and
    # take the signal right then.
    with stopping._cond:
        os.kill(os.getpid(), signal.{signal})
        time.sleep(0.3)
    sys.exit(0 if stopping.wait(10) and names == ["{signal}"] else 3)
    """
)


def run(signal_name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(signal=signal_name)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sigterm_inside_the_events_lock_is_delivered():
    result = run("SIGTERM")
    assert result.returncode == 0, result.stderr


def test_sigint_is_a_stop_request_not_a_keyboard_interrupt():
    result = run("SIGINT")
    assert result.returncode == 0, result.stderr
    assert "KeyboardInterrupt" not in result.stderr
