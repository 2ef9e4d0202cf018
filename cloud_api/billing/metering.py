"""Tonne-days (吨·天) and pieces: pure arithmetic, exact in integers.

Stock weight is a step function of time: every movement adds its signed weight delta at its
``occurred_at``. A business day's tonne-days are the integral of that level over the day,
cut at midnight in the tenant's time zone. Written out, for a day [S, E) with opening level
L and movements (tᵢ, δᵢ) inside it:

    ∫ level dt = L·(E − S) + Σ δᵢ·(E − tᵢ)

so a day needs only two sums over its own movements (Σδ and Σδ·(E − t)) and the level at its
start. The result does not depend on the order movements arrived in, and duplicates never
reach it (the ledger keeps one row per movement). This is Lago's ``weighted_sum`` turned
into an integral in gram·milliseconds; tonne-days = gram·ms ÷ (10⁶ g · 86 400 000 ms).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

MS_PER_DAY = 86_400_000
GRAM_MS_PER_TONNE_DAY = 1_000_000 * MS_PER_DAY
PIECE_TYPES_IN = frozenset({"receive"})
PIECE_TYPES_OUT = frozenset({"ship"})


@dataclass(frozen=True)
class DayWindow:
    day: date
    start_ms: int  # UTC epoch milliseconds of the local midnight starting the day
    end_ms: int


@dataclass(frozen=True)
class DaySums:
    """What one day's movements contribute: Σδ and Σδ·(E − t), plus pieces in and out."""

    delta_g: int = 0
    weighted_g_ms: int = 0
    pieces_in: int = 0
    pieces_out: int = 0


@dataclass(frozen=True)
class DayUsage:
    day: date
    gram_ms: int
    opening_g: int
    closing_g: int
    pieces_in: int
    pieces_out: int

    @property
    def tonne_days(self) -> Decimal:
        return to_tonne_days(self.gram_ms)

    @property
    def pieces(self) -> int:
        return self.pieces_in + self.pieces_out


def to_tonne_days(gram_ms: int) -> Decimal:
    return Decimal(gram_ms) / Decimal(GRAM_MS_PER_TONNE_DAY)


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Exact UTC epoch milliseconds (timestamps on the wire carry milliseconds)."""
    if moment.tzinfo is not UTC:  # ingest passes UTC already; converting again costs
        moment = moment.astimezone(UTC)
    return (moment - _UNIX_EPOCH) // _MS


def windows(zone: ZoneInfo, first: date, last: date) -> list[DayWindow]:
    """Local business days first..last with their UTC bounds (DST days are 23 or 25 h)."""
    result = []
    day = first
    while day <= last:
        start = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
        result.append(DayWindow(day, epoch_ms(start), epoch_ms(end)))
        day += timedelta(days=1)
    return result


def fixed_offset_ms(zone: ZoneInfo, first: date, last: date) -> int | None:
    """The zone's UTC offset when it is the same on every day of the range (no DST change),
    which lets the database bucket days by simple arithmetic."""
    offsets = {
        datetime.combine(day, time(), zone).utcoffset()
        for day in (
            first,
            last,
            *(first + timedelta(days=n) for n in range(0, (last - first).days, 30)),
        )
    }
    if len(offsets) != 1:
        return None
    offset = offsets.pop()
    return int(offset.total_seconds() * 1000) if offset is not None else None


def day_number(ms: int, offset_ms: int) -> int:
    """Days since 1970-01-01 in a fixed-offset zone."""
    return (ms + offset_ms) // MS_PER_DAY


def close(opening_g: int, sums: dict[date, DaySums], days: list[DayWindow]) -> list[DayUsage]:
    """Integrals of consecutive days from their movement sums and the first day's opening."""
    usage = []
    level = opening_g
    for window in days:
        part = sums.get(window.day, DaySums())
        gram_ms = level * (window.end_ms - window.start_ms) + part.weighted_g_ms
        closing = level + part.delta_g
        usage.append(DayUsage(window.day, gram_ms, level, closing, part.pieces_in, part.pieces_out))
        level = closing
    return usage


def sums_from_movements(
    movements: Iterable[tuple[int, int, str, int]], days: list[DayWindow]
) -> tuple[int, dict[date, DaySums]]:
    """(opening before the first day, per-day sums) from (t_ms, delta_g, type, qty) rows.

    The in-memory twin of the SQL aggregation in ``cloud_api.billing.usage_store``; the property
    tests check both against a step-by-step integration.
    """
    if not days:
        return 0, {}
    first_start = days[0].start_ms
    opening = 0
    buckets: dict[date, list[int]] = {}
    for t_ms, delta_g, kind, qty in movements:
        if t_ms < first_start:
            opening += delta_g
            continue
        window = _window_of(t_ms, days)
        if window is None:
            continue
        bucket = buckets.setdefault(window.day, [0, 0, 0, 0])
        bucket[0] += delta_g
        bucket[1] += delta_g * (window.end_ms - t_ms)
        if kind in PIECE_TYPES_IN:
            bucket[2] += qty
        elif kind in PIECE_TYPES_OUT:
            bucket[3] += qty
    return opening, {day: DaySums(*values) for day, values in buckets.items()}


def _window_of(t_ms: int, days: list[DayWindow]) -> DayWindow | None:
    low, high = 0, len(days) - 1
    while low <= high:
        middle = (low + high) // 2
        window = days[middle]
        if t_ms < window.start_ms:
            high = middle - 1
        elif t_ms >= window.end_ms:
            low = middle + 1
        else:
            return window
    return None


def integrate_stepwise(movements: Iterable[tuple[int, int]], start_ms: int, end_ms: int) -> int:
    """Brute force: walk the level through time and add level × duration. For tests."""
    ordered = sorted(movements)
    level = sum(delta for t, delta in ordered if t < start_ms)
    total = 0
    cursor = start_ms
    for t, delta in ordered:
        if t < start_ms:
            continue
        if t >= end_ms:
            break
        total += level * (t - cursor)
        level += delta
        cursor = t
    return total + level * (end_ms - cursor)
