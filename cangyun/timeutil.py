"""Time on the wire: RFC 3339 timestamps that always carry a UTC offset."""

from __future__ import annotations

from datetime import UTC, date, datetime

# Business records from before the product existed or from a clock gone wild are refused:
# a PDA that booted at 1970 must not write history there.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class TimestampError(ValueError):
    """A timestamp that is not RFC 3339 with an offset, or out of the plausible range."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, e.g. ``2026-11-26T03:04:05.123+00:00``."""
    if moment.tzinfo is None:
        raise TimestampError("naive datetime cannot be put on the wire")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_ts(text: object) -> datetime:
    """Parse an RFC 3339 timestamp; the offset is mandatory, ``Z`` is accepted."""
    if not isinstance(text, str) or not 10 < len(text) <= 40:
        raise TimestampError(
            "expected an RFC 3339 timestamp string such as 2026-11-26T09:30:00+08:00"
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(f"not an RFC 3339 timestamp: {text!r}") from exc
    if moment.tzinfo is None:
        raise TimestampError(f"timestamp {text!r} has no UTC offset (add Z or +08:00)")
    # Convert first: comparing datetimes that share a tzinfo skips two utcoffset() calls,
    # which made this check the dearest line of cloud ingest.
    moment = moment.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise TimestampError(f"timestamp {text!r} is outside 2000-01-01..2100-01-01")
    return moment


def parse_date(text: object) -> date:
    """An ISO calendar date, YYYY-MM-DD."""
    if not isinstance(text, str) or len(text) != 10:
        raise TimestampError("expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(f"not a valid date: {text!r}") from exc
