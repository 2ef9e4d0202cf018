"""Tonne-days: the per-day formula equals a step-by-step integration for any history."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from cloud_api.billing.metering import (
    GRAM_MS_PER_TONNE_DAY,
    close,
    epoch_ms,
    integrate_stepwise,
    sums_from_movements,
    to_tonne_days,
    windows,
)

START = datetime(2026, 3, 27, tzinfo=UTC)  # spans Europe's switch to summer time
SPAN_MS = 5 * 86_400_000

movements = st.lists(
    st.tuples(st.integers(-3 * 86_400_000, SPAN_MS), st.integers(-2_000_000, 5_000_000)),
    max_size=60,
)


@given(movements, st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC"]))
def test_days_equal_brute_force_integration(history, zone_name):
    zone = ZoneInfo(zone_name)
    base = epoch_ms(START)
    rows = [(base + t, delta, "receive", 1) for t, delta in history]
    days = windows(zone, date(2026, 3, 27), date(2026, 3, 31))
    opening, sums = sums_from_movements(rows, days)
    usage = close(opening, sums, days)
    for day in usage:
        window = next(w for w in days if w.day == day.day)
        assert day.gram_ms == integrate_stepwise(
            [(t, d) for t, d, _, _ in rows], window.start_ms, window.end_ms
        )
    # Shuffled input and the closing level chain give the same answer.
    assert [u.closing_g for u in usage][-1] == sum(d for t, d, _, _ in rows if t < days[-1].end_ms)


def test_daylight_saving_days_have_their_real_length():
    days = windows(ZoneInfo("Europe/Berlin"), date(2026, 3, 28), date(2026, 3, 30))
    lengths = [(w.end_ms - w.start_ms) // 3_600_000 for w in days]
    assert lengths == [24, 23, 24]


def test_one_tonne_all_day_is_one_tonne_day():
    zone = ZoneInfo("Asia/Shanghai")
    day = date(2026, 11, 26)
    days = windows(zone, day, day)
    midnight = datetime(2026, 11, 26, tzinfo=zone)
    rows = [
        (epoch_ms(midnight - timedelta(hours=1)), 1_000_000, "receive", 10),
        (epoch_ms(midnight + timedelta(hours=12)), -500_000, "ship", 5),
    ]
    opening, sums = sums_from_movements(rows, days)
    (usage,) = close(opening, sums, days)
    assert usage.tonne_days == to_tonne_days(
        GRAM_MS_PER_TONNE_DAY * 3 // 4
    )  # 1 t ½ day + ½ t ½ day
    assert (usage.pieces_in, usage.pieces_out) == (0, 5)
