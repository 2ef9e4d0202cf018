"""The one retry delay of edge and cloud: exponential backoff with full jitter.

Full jitter (a uniform draw between zero and an exponentially growing, capped ceiling)
spreads a crowd of retrying clients over the whole window instead of having them retry in
lockstep: a warehouse of boxes after a broker restart, a queue of webhooks after a receiver
comes back. ``floor`` keeps a draw near zero from spending an attempt at once (a dead SMTP
server should not eat a notification's attempts in a second).
"""

from __future__ import annotations

import random
from typing import Protocol

MAX_EXPONENT = 32  # 2**32 times any sane base is past every cap; keeps the float finite


class Uniform(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


def ceiling(attempts: int, base: float, cap: float) -> float:
    """``min(cap, base * 2**attempts)``: the window the ``attempts``-th retry draws from."""
    return min(cap, base * 2 ** min(max(0, attempts), MAX_EXPONENT))


def delay(
    attempts: int,
    base: float,
    cap: float,
    floor: float = 0.0,
    rng: Uniform = random,  # type: ignore[assignment]
) -> float:
    """Seconds to wait before the next try: ``max(floor, uniform(0, min(cap, base*2**attempts)))``.

    ``attempts`` counts the tries already retried (0 for the first retry)."""
    return max(floor, rng.uniform(0.0, ceiling(attempts, base, cap)))
