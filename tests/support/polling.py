"""Waiting in tests: ask a real signal until it holds, never sleep a guessed time.

Timeouts only bound a slow CI machine (a busy 2-core box); a passing test returns as soon as
its signal holds, so they can be generous.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    context: Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    An exception from ``predicate`` counts as "not yet" (a server still starting, a row not
    yet written). Once ``timeout`` seconds have passed, fail with an AssertionError naming
    ``what``, the last value seen and the last exception; ``context``, called only then, adds
    what helps to explain it (the tail of a process's log).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    error: Exception | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - reported below if it never comes right
            error = exc
        else:
            if value:
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    message = f"timed out after {timeout} s waiting for {what}; last value {last!r}"
    if error is not None:
        message += f"; last error {type(error).__name__}: {error}"
    if context is not None:
        message += "\n" + context()
    raise AssertionError(message) from error
