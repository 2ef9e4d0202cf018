"""续费提醒 decisions: once per crossing, only the lowest of a big drop, re-armed on renewal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_api.messaging.reminders import (
    PERIOD_ENDING,
    QUOTA_EXHAUSTED,
    RENEWAL_REMINDER,
    Decision,
    PeriodCoverage,
    QuotaSnapshot,
    ThresholdError,
    decide,
    parse_thresholds,
    quota_key,
)

QUOTA = parse_thresholds("20,10,0", upper=Decimal(100))
DAYS = parse_thresholds("30,7,1")
NOW = datetime(2027, 5, 1, 4, 0, tzinfo=UTC)


class Tenant:
    """Applies decisions to a state dict the way the store does, one evaluation at a time."""

    def __init__(self) -> None:
        self.armed: dict[str, bool] = {}
        self.sent: list[str] = []

    def evaluate(
        self,
        *snapshots: QuotaSnapshot,
        coverage: PeriodCoverage | None = None,
        now: datetime = NOW,
        quota: tuple[Decimal, ...] = QUOTA,
    ) -> Decision:
        decision = decide(
            snapshots, coverage, self.armed, quota_thresholds=quota, period_days=DAYS, now=now
        )
        for key in decision.rearm:
            self.armed[key] = True
        for key in decision.forget:
            del self.armed[key]
        for key in decision.disarm:
            self.armed[key] = False
        self.sent.extend(r.key for r in decision.fire)
        return decision

    def tonne_days(self, remaining: float, total: float = 100, days_left=None) -> list[str]:
        snapshot = QuotaSnapshot("tonne_day", Decimal(str(remaining)), Decimal(str(total)))
        if days_left is not None:
            snapshot = QuotaSnapshot(snapshot.unit, snapshot.remaining, snapshot.total, days_left)
        return [r.key for r in self.evaluate(snapshot).fire]


def test_a_threshold_fires_once_per_crossing():
    tenant = Tenant()
    assert tenant.tonne_days(50) == []
    assert tenant.tonne_days(19.5) == ["quota:tonne_day:20"]
    for remaining in (19, 15, 12, 19.9, 20):
        assert tenant.tonne_days(remaining) == []


def test_a_slow_decline_fires_20_then_10_then_0_exactly_once_each():
    tenant = Tenant()
    for remaining in range(100, -1, -1):
        tenant.tonne_days(remaining)
    assert tenant.sent == ["quota:tonne_day:20", "quota:tonne_day:10", "quota:tonne_day:0"]


def test_a_big_drop_fires_only_the_lowest_threshold_crossed():
    tenant = Tenant()
    decision = tenant.evaluate(QuotaSnapshot("tonne_day", Decimal(5), Decimal(100)))
    assert [(r.key, r.message_type) for r in decision.fire] == [
        ("quota:tonne_day:10", RENEWAL_REMINDER)
    ]
    assert set(decision.disarm) == {"quota:tonne_day:20", "quota:tonne_day:10"}
    assert tenant.tonne_days(4) == []
    assert tenant.tonne_days(0) == ["quota:tonne_day:0"]
    # Straight from plenty to nothing: one "used up" message, not three.
    other = Tenant()
    assert other.tonne_days(60) == []
    assert other.tonne_days(0) == ["quota:tonne_day:0"]
    assert other.tonne_days(0) == []


def test_a_renewal_re_arms_and_the_next_decline_fires_again():
    tenant = Tenant()
    assert tenant.tonne_days(15) == ["quota:tonne_day:20"]
    # A new package: the packages with something left now hold 115 of 200.
    decision = tenant.evaluate(QuotaSnapshot("tonne_day", Decimal(115), Decimal(200)))
    assert decision.fire == () and decision.rearm == ("quota:tonne_day:20",)
    assert tenant.tonne_days(30, 200) == ["quota:tonne_day:20"]


def test_a_partial_renewal_re_arms_only_the_thresholds_it_rose_above():
    tenant = Tenant()
    assert tenant.tonne_days(5) == ["quota:tonne_day:10"]
    decision = tenant.evaluate(QuotaSnapshot("tonne_day", Decimal(15), Decimal(100)))
    assert decision.rearm == ("quota:tonne_day:10",)
    assert tenant.tonne_days(12) == []
    assert tenant.tonne_days(8) == ["quota:tonne_day:10"]


def test_all_packages_used_up_is_the_exhausted_message():
    # Exhausted packages drop out of the total, so "nothing left" is remaining 0 of total 0.
    decision = Tenant().evaluate(QuotaSnapshot("piece", Decimal(0), Decimal(0)))
    assert [(r.key, r.message_type) for r in decision.fire] == [("quota:piece:0", QUOTA_EXHAUSTED)]
    text = decision.fire[0].body
    assert "件数（ITEM）包已用尽" in text and "拒绝新的入库" in text and "出库不受影响" in text
    assert "不支持自动续费" in text and "outbound goes on" in text


def test_units_are_tracked_separately():
    tenant = Tenant()
    tonnes = QuotaSnapshot("tonne_day", Decimal(15), Decimal(100))
    pieces = QuotaSnapshot("piece", Decimal(80), Decimal(100))
    assert [r.key for r in tenant.evaluate(tonnes, pieces).fire] == ["quota:tonne_day:20"]
    pieces = QuotaSnapshot("piece", Decimal(9), Decimal(100))
    assert [r.key for r in tenant.evaluate(tonnes, pieces).fire] == ["quota:piece:10"]


def test_the_reminder_text_says_how_much_is_left_and_that_renewal_is_manual():
    decision = Tenant().evaluate(
        QuotaSnapshot("tonne_day", Decimal("1234.56"), Decimal(14000), days_left=12.7)
    )
    (reminder,) = decision.fire
    assert reminder.title == "【仓运通】吨·天流量包剩余 8.8%，请及时续费"
    zh, en = reminder.body.split("\n")
    assert zh == (
        "【仓运通】您的吨·天流量包剩余 8.8%（1,234.5 吨·天，约 12 天），"
        "请及时手动续费。本产品不支持自动续费。"
    )
    assert en.startswith("Your tonne-day package has 8.8% left (1,234.5 tonne-days, about 12")
    assert "no auto-renewal" in en
    assert reminder.params == ("吨·天流量包", "剩余8.8%（约 12 天）")
    # Without an estimate there is no guess at the days.
    (plain,) = Tenant().evaluate(QuotaSnapshot("piece", Decimal(900), Decimal(10000))).fire
    assert "约" not in plain.body and "9%（900 件）" in plain.body


def test_thresholds_are_configurable():
    tenant = Tenant()
    quota = parse_thresholds("50, 25", upper=Decimal(100))
    assert quota == (Decimal(50), Decimal(25))
    snapshot = QuotaSnapshot("tonne_day", Decimal(40), Decimal(100))
    assert [r.key for r in tenant.evaluate(snapshot, quota=quota).fire] == ["quota:tonne_day:50"]
    for bad in ("abc", "120", "-5", "nan"):
        with pytest.raises(ThresholdError):
            parse_thresholds(bad, upper=Decimal(100))


# --- yearly (period) packages ------------------------------------------------------------


def period_keys(tenant: Tenant, ends_at: datetime, now: datetime) -> list[str]:
    return [r.key for r in tenant.evaluate(coverage=PeriodCoverage(ends_at), now=now).fire]


def test_period_reminders_at_30_7_and_1_days_once_each():
    ends = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
    tenant = Tenant()
    fired = []
    moment = ends - timedelta(days=45)
    while moment < ends:
        fired += period_keys(tenant, ends, moment)
        moment += timedelta(hours=6)
    assert fired == ["period:2027-06-30:30", "period:2027-06-30:7", "period:2027-06-30:1"]
    assert period_keys(tenant, ends, ends + timedelta(hours=1)) == []  # ended: nothing more


def test_the_period_text_names_the_end_date_and_the_days_left():
    ends = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
    decision = Tenant().evaluate(coverage=PeriodCoverage(ends), now=ends - timedelta(days=6.5))
    (reminder,) = decision.fire
    assert reminder.message_type == PERIOD_ENDING and reminder.key == "period:2027-06-30:7"
    assert "将于 2027-06-30 到期（剩余 7 天）" in reminder.body
    assert "不支持自动续费" in reminder.body and "ends on 2027-06-30" in reminder.body


def test_extended_coverage_starts_a_fresh_set_of_period_reminders():
    ends = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
    tenant = Tenant()
    assert period_keys(tenant, ends, ends - timedelta(days=6)) == ["period:2027-06-30:7"]
    renewed = ends + timedelta(days=365)
    assert period_keys(tenant, renewed, ends - timedelta(days=5)) == []
    assert period_keys(tenant, renewed, renewed - timedelta(days=20)) == ["period:2028-06-29:30"]
    # The old end date is past: its keys are dropped, they can never fire again.
    assert not any(k.startswith("period:2027-06-30") for k in tenant.armed)


def test_the_end_date_is_the_tenants_calendar_day():
    ends = datetime(2027, 6, 30, 17, 0, tzinfo=UTC)  # 01:00 on 1 July in Shanghai
    decision = Tenant().evaluate(coverage=PeriodCoverage(ends), now=ends - timedelta(days=3))
    assert [r.key for r in decision.fire] == ["period:2027-07-01:7"]


# --- the property ------------------------------------------------------------------------

positions = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 1000)).map(
        lambda p: (min(p), max(p))  # (remaining, total): never more left than bought
    ),
    min_size=1,
    max_size=40,
)


@given(positions)
def test_messages_match_downward_crossings(sequence):
    """A threshold is crossed downwards when the position goes from above it to at or below
    it. Every step with crossings sends exactly one message, for the lowest threshold crossed;
    every crossing disarms its key, so no crossing is reported twice or missed."""
    tenant = Tenant()
    below = {t: False for t in QUOTA}  # before anything is known, every key is armed
    expected_messages: list[str] = []
    crossings = {t: 0 for t in QUOTA}
    disarmed = {t: 0 for t in QUOTA}
    for remaining, total in sequence:
        now_below = {
            t: remaining <= 0 if t == 0 else remaining * 100 <= t * total or remaining <= 0
            for t in QUOTA
        }
        crossed = [t for t in QUOTA if now_below[t] and not below[t]]
        for t in crossed:
            crossings[t] += 1
        if crossed:
            expected_messages.append(quota_key("tonne_day", min(crossed)))
        below = now_below
        decision = tenant.evaluate(QuotaSnapshot("tonne_day", Decimal(remaining), Decimal(total)))
        assert len(decision.fire) <= 1
        for key in decision.disarm:
            disarmed[Decimal(key.rsplit(":", 1)[1])] += 1
    assert tenant.sent == expected_messages
    assert disarmed == crossings
