"""续费提醒: which renewal reminders fire now. Pure: no SQL, no Flask, the clock is passed in.

The product has no auto-renewal, so a tenant learns that a prepaid package is running out only
from these reminders. Each threshold is edge-triggered: its key fires once when the position
drops to or below it while the key is armed, and the key re-arms only when the position rises
above the threshold again (a renewal). Repeating a reminder on every evaluation is the classic
complaint about quota alerts; never sending one after a renewal is the other.

Keys, as stored in ``reminder_state``:

- ``quota:<unit>:<percent>``: remaining fraction of the tonne-day or piece packages that still
  have something left. ``quota:<unit>:0`` is the "used up" message (``quota_exhausted``).
- ``period:<end date>:<days>``: days until the yearly packages end. The end date is part of the
  key, so a renewal that extends coverage starts a fresh set of keys.

When one evaluation crosses several thresholds at once (a big day, or the first evaluation of
a tenant already low), only the lowest is sent and all crossed keys are disarmed: one message
that tells the current state, not three that repeat it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Literal
from zoneinfo import ZoneInfo

QuotaUnit = Literal["tonne_day", "piece"]

RENEWAL_REMINDER = "renewal_reminder"
QUOTA_EXHAUSTED = "quota_exhausted"
PERIOD_ENDING = "period_ending"
MESSAGE_TYPES = (RENEWAL_REMINDER, QUOTA_EXHAUSTED, PERIOD_ENDING)

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # business days are cut in the tenant's zone
NO_AUTO_RENEWAL_ZH = "请及时手动续费。本产品不支持自动续费。"
NO_AUTO_RENEWAL_EN = "Please renew manually; there is no auto-renewal."

# (Chinese package name, Chinese amount unit, English package name, English amount unit)
_UNITS: dict[str, tuple[str, str, str, str]] = {
    "tonne_day": ("吨·天流量包", "吨·天", "tonne-day package", "tonne-days"),
    "piece": ("件数（ITEM）包", "件", "item package", "pieces"),
}


@dataclass(frozen=True)
class QuotaSnapshot:
    """The tenant's prepaid position in one unit.

    ``total`` counts only packages that still have something left, so buying a new package
    raises the fraction and re-arms the thresholds; ``remaining`` is their sum. ``days_left``
    is the scheduler's estimate at recent usage, if it has one.
    """

    unit: QuotaUnit
    remaining: Decimal
    total: Decimal
    days_left: Decimal | float | int | None = None


@dataclass(frozen=True)
class PeriodCoverage:
    """The end of the tenant's yearly packages: the latest expiry among the active ones."""

    ends_at: datetime


@dataclass(frozen=True)
class Reminder:
    """One message to send. ``params`` are the SMS template parameters (see docs/reminders.md)."""

    key: str
    message_type: str
    title: str
    body: str
    params: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    fire: tuple[Reminder, ...]
    disarm: tuple[str, ...]  # every key crossed now, fired or silenced by a lower one
    rearm: tuple[str, ...]  # keys whose condition cleared (a renewal)
    forget: tuple[str, ...]  # keys of coverage that has ended; they can never fire again


class ThresholdError(ValueError):
    """A threshold setting that is not a list of numbers in range."""


def parse_thresholds(text: str, *, upper: Decimal | None = None) -> tuple[Decimal, ...]:
    """``"20,10,0"`` → (20, 10, 0): distinct, highest first, each in 0..upper."""
    values: set[Decimal] = set()
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            value = Decimal(part.strip())
        except InvalidOperation as exc:
            raise ThresholdError(f"{part.strip()!r} is not a number") from exc
        if not value.is_finite() or value < 0 or (upper is not None and value > upper):
            raise ThresholdError(f"{value} is out of range")
        values.add(value)
    return tuple(sorted(values, reverse=True))


def quota_key(unit: str, threshold: Decimal) -> str:
    return f"quota:{unit}:{_number(threshold)}"


def period_key(ends_on: str, days: Decimal) -> str:
    return f"period:{ends_on}:{_number(days)}"


def decide(
    snapshots: Iterable[QuotaSnapshot],
    coverage: PeriodCoverage | None,
    armed: Mapping[str, bool],
    *,
    quota_thresholds: Sequence[Decimal],
    period_days: Sequence[Decimal],
    now: datetime,
    tz: tzinfo = DEFAULT_TZ,
) -> Decision:
    """What fires now, given the stored state (``armed``; a key not in it is armed)."""
    fire: list[Reminder] = []
    disarm: list[str] = []
    rearm: list[str] = []

    def edge(
        crossings: list[tuple[Decimal, str, bool]], text: Callable[[Decimal], Reminder]
    ) -> None:
        """One family of thresholds: disarm what is crossed now, send only the lowest."""
        fresh = [(t, key) for t, key, crossed in crossings if crossed and armed.get(key, True)]
        rearm.extend(
            key for _, key, crossed in crossings if not crossed and not armed.get(key, True)
        )
        if fresh:
            disarm.extend(key for _, key in fresh)
            fire.append(text(min(t for t, _ in fresh)))

    for snapshot in snapshots:
        edge(
            [
                (t, quota_key(snapshot.unit, t), _quota_crossed(snapshot, t))
                for t in quota_thresholds
            ],
            lambda t, snapshot=snapshot: _quota_reminder(snapshot, t),
        )

    ends_on = coverage.ends_at.astimezone(tz).date().isoformat() if coverage else None
    if coverage is not None and ends_on is not None:
        left = coverage.ends_at - now
        if left > timedelta(0):  # an ended period is the licence's business, not a reminder's
            edge(
                [(d, period_key(ends_on, d), left <= _days(d)) for d in period_days],
                lambda d: _period_reminder(ends_on, left, d),
            )
    # Keys of an end date already past can never fire again: drop them, keep the table small.
    today = now.astimezone(tz).date().isoformat()
    forget = [
        key
        for key in armed
        if key.startswith("period:") and key.split(":")[1] != ends_on and key.split(":")[1] < today
    ]
    return Decision(tuple(fire), tuple(disarm), tuple(rearm), tuple(forget))


def _days(value: Decimal) -> timedelta:
    return timedelta(days=float(value))


# --- when a threshold counts as crossed -------------------------------------------------------


def _quota_crossed(snapshot: QuotaSnapshot, threshold: Decimal) -> bool:
    remaining = Decimal(snapshot.remaining)
    if threshold == 0 or remaining <= 0:
        return remaining <= 0
    # remaining / total <= threshold %, without dividing (total may be 0 once all is used).
    return remaining * 100 <= threshold * Decimal(snapshot.total)


# --- texts ------------------------------------------------------------------------------------


def _quota_reminder(snapshot: QuotaSnapshot, threshold: Decimal) -> Reminder:
    name_zh, unit_zh, name_en, unit_en = _UNITS[snapshot.unit]
    key = quota_key(snapshot.unit, threshold)
    if threshold == 0:
        return Reminder(
            key=key,
            message_type=QUOTA_EXHAUSTED,
            title=f"【仓运通】{name_zh}已用尽，新入库已暂停",
            body=(
                f"【仓运通】您的{name_zh}已用尽。续费前将拒绝新的入库，出库不受影响。"
                f"{NO_AUTO_RENEWAL_ZH}\n"
                f"Your {name_en} is used up. New inbound is refused until you renew; outbound "
                f"goes on. {NO_AUTO_RENEWAL_EN}"
            ),
            params=(name_zh, "已用尽，新入库已暂停"),
        )
    percent = _percent(snapshot)
    amount = _amount(Decimal(snapshot.remaining), snapshot.unit)
    days = _days_text(snapshot.days_left)
    extra_zh = f"，{days[0]}" if days else ""
    extra_en = f", {days[1]}" if days else ""
    return Reminder(
        key=key,
        message_type=RENEWAL_REMINDER,
        title=f"【仓运通】{name_zh}剩余 {percent}，请及时续费",
        body=(
            f"【仓运通】您的{name_zh}剩余 {percent}（{amount} {unit_zh}{extra_zh}），"
            f"{NO_AUTO_RENEWAL_ZH}\n"
            f"Your {name_en} has {percent} left ({amount} {unit_en}{extra_en}). "
            f"{NO_AUTO_RENEWAL_EN}"
        ),
        params=(name_zh, f"剩余{percent}（{days[0]}）" if days else f"剩余{percent}"),
    )


def _period_reminder(ends_on: str, left: timedelta, threshold: Decimal) -> Reminder:
    days = max(1, math.ceil(left / timedelta(days=1)))
    return Reminder(
        key=period_key(ends_on, threshold),
        message_type=PERIOD_ENDING,
        title=f"【仓运通】包年服务将于 {ends_on} 到期",
        body=(
            f"【仓运通】您的包年服务将于 {ends_on} 到期（剩余 {days} 天），{NO_AUTO_RENEWAL_ZH}\n"
            f"Your yearly package ends on {ends_on} ({days} day{'s' if days != 1 else ''} "
            f"left). {NO_AUTO_RENEWAL_EN}"
        ),
        params=("包年服务", f"将于{ends_on}到期"),
    )


def _percent(snapshot: QuotaSnapshot) -> str:
    remaining, total = Decimal(snapshot.remaining), Decimal(snapshot.total)
    if total <= 0:
        return "0%"
    value = (remaining * 100 / total).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    if value == 0:
        return "<0.1%"  # "0%" would read as used up while there is still something left
    return f"{_number(value)}%"


def _amount(value: Decimal, unit: str) -> str:
    step = Decimal("0.1") if unit == "tonne_day" else Decimal(1)
    rounded = value.quantize(step, rounding=ROUND_DOWN)
    return f"{rounded:,.1f}".removesuffix(".0") if unit == "tonne_day" else f"{rounded:,.0f}"


def _days_text(days_left: Decimal | float | int | None) -> tuple[str, str] | None:
    if days_left is None:
        return None
    days = Decimal(str(days_left))
    if days < 1:
        return ("不足 1 天", "less than a day left")
    whole = int(days.to_integral_value(rounding=ROUND_DOWN))
    return (f"约 {whole} 天", f"about {whole} day{'s' if whole != 1 else ''}")


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"
