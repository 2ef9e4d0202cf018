"""Reminder state, 消息订阅 (subscriptions), in-site messages and the notifications outbox.
All their SQL.

Firing a reminder is one transaction: the key is disarmed, an in-site message is written for
every recipient and one notification per channel and recipient is queued. So a crash either
leaves the key armed and nothing queued (the next evaluation fires it) or everything queued
(it is never fired again); nothing is sent twice by the evaluation and nothing is lost.

Notifications leave through ``claim_due``: a worker takes due rows with a lease (their
``next_attempt_at`` moves past the lease), so several processes may send side by side and a
row whose worker died is taken again when the lease runs out.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun import retry
from cangyun.errors import Invalid, NotFound
from cloud_api.accounts.security import PLATFORM_STAFF
from cloud_api.messaging import reminders
from cloud_api.messaging.reminders import PeriodCoverage, QuotaSnapshot, Reminder
from cloud_api.platform.db import atomic, insert_for
from cloud_api.platform.schema import (
    messages,
    notifications,
    reminder_state,
    subscriptions,
    tenants,
    users,
)
from cloud_api.platform.sms import to_e164
from cloud_api.platform.tenancy import Caller, TenantStore, audit, audit_caller
from cloud_api.settings import BillingSection, CloudSettings

log = logging.getLogger(__name__)

CUSTOM_SERVICE = "custom_service"  # 定制服务: a request, its quote, messages on it
MESSAGE_TYPES = (*reminders.MESSAGE_TYPES, CUSTOM_SERVICE)
MESSAGE_TYPE_LABELS = {
    reminders.RENEWAL_REMINDER: "续费提醒 renewal reminder",
    reminders.QUOTA_EXHAUSTED: "流量包用尽 quota used up",
    reminders.PERIOD_ENDING: "包年到期 yearly package ending",
    CUSTOM_SERVICE: "定制服务进度 custom service progress",
}
# The one approved SMS template ([sms] template_id) is the reminders': other types go by
# email and in-site message only, whatever their subscription lists.
SMS_TYPES = reminders.MESSAGE_TYPES
CHANNELS = ("sms", "email", "in_site")
OUTBOX_CHANNELS = ("sms", "email")  # in-site messages are rows of their own, always written
DEFAULT_CHANNELS = ("sms", "email", "in_site")  # the seed: SMS and email by default

LEASE = timedelta(minutes=5)  # longer than a claimed batch can take (see messaging.notify)
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
BACKOFF_FLOOR_S = 5.0  # full jitter can draw ~0; a dead server should not eat attempts at once


class InvalidSubscription(Invalid):
    """A subscription that names users outside the tenant, or a channel its type lacks."""

    code = "invalid_recipients"

    def __init__(self, message: str, field: str, code: str | None = None) -> None:
        super().__init__(message, field=field, code=code)


@dataclass(frozen=True)
class Subscription:
    channels: tuple[str, ...]
    recipients: tuple[int, ...]


class TenantMessaging(TenantStore):
    """Every query filtered by the one tenant the object was built with."""

    # in-site messages (站内信)

    def inbox(
        self, user_id: int, *, unread_only: bool, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        """The user's messages, newest first: (total, page, id to continue before)."""
        conditions = [messages.c.tenant_id == self.tenant_id, messages.c.user_id == user_id]
        if unread_only:
            conditions.append(messages.c.read_at.is_(None))
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(messages).where(*conditions)
            ).scalar_one()
            if before_id is not None:
                conditions.append(messages.c.id < before_id)
            rows = (
                conn.execute(
                    sa.select(messages)
                    .where(*conditions)
                    .order_by(messages.c.id.desc())
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return total, [_message_json(r) for r in rows], rows[-1]["id"] if more else None

    def mark_read(self, user_id: int, message_id: int, now: datetime) -> dict[str, Any]:
        mine = (
            messages.c.tenant_id == self.tenant_id,
            messages.c.user_id == user_id,
            messages.c.id == message_id,
        )
        with atomic(self.engine) as conn:
            conn.execute(
                messages.update().where(*mine, messages.c.read_at.is_(None)).values(read_at=now)
            )
            row = conn.execute(sa.select(messages).where(*mine)).mappings().first()
        if row is None:
            raise NotFound(f"no message {message_id}")
        return _message_json(row)

    # 消息订阅

    def subscriptions(self) -> dict[str, dict[str, Any]]:
        """Every message type with its channels and recipients; defaults where none is set."""
        with self.engine.connect() as conn:
            stored = {
                r["message_type"]: r
                for r in conn.execute(
                    sa.select(subscriptions).where(subscriptions.c.tenant_id == self.tenant_id)
                )
                .mappings()
                .all()
            }
            people = {
                r["id"]: r
                for r in conn.execute(
                    sa.select(users.c.id, users.c.email, users.c.name, users.c.phone, users.c.role)
                    .where(users.c.tenant_id == self.tenant_id, users.c.active.is_(True))
                    .order_by(users.c.id)
                )
                .mappings()
                .all()
            }
        owners = [uid for uid, r in people.items() if r["role"] == "owner"]
        result: dict[str, dict[str, Any]] = {}
        for message_type in MESSAGE_TYPES:
            row = stored.get(message_type)
            recipients = list(row["recipients"]) if row else owners
            result[message_type] = {
                "label": MESSAGE_TYPE_LABELS[message_type],
                "channels": _channels(row["channels"] if row else DEFAULT_CHANNELS, message_type),
                "recipients": recipients,
                "users": [
                    {
                        "id": uid,
                        "email": people[uid]["email"],
                        "name": people[uid]["name"],
                        "has_phone": bool(people[uid]["phone"]),
                    }
                    for uid in recipients
                    if uid in people
                ],
                "default": row is None,
                "updated_at": row["updated_at"].isoformat(timespec="seconds") if row else None,
            }
        return result

    def set_subscriptions(
        self, changes: dict[str, Subscription], caller: Caller, ip: str, now: datetime
    ) -> dict[str, dict[str, Any]]:
        before = self.subscriptions()
        insert = insert_for(self.engine)
        with atomic(self.engine) as conn:
            members = set(
                conn.execute(
                    sa.select(users.c.id).where(
                        users.c.tenant_id == self.tenant_id, users.c.active.is_(True)
                    )
                )
                .scalars()
                .all()
            )
            for message_type, wanted in changes.items():
                if "sms" in wanted.channels and message_type not in SMS_TYPES:
                    raise InvalidSubscription(
                        f"{message_type} goes by email and in-site message only: the one"
                        " approved SMS template is the reminders'",
                        f"{message_type}.channels",
                        code="channel_not_offered",
                    )
                strangers = [uid for uid in wanted.recipients if uid not in members]
                if strangers:
                    raise InvalidSubscription(
                        f"not active users of this tenant: {strangers}",
                        f"{message_type}.recipients",
                    )
                values = {
                    "channels": _channels(wanted.channels, message_type),
                    "recipients": list(dict.fromkeys(wanted.recipients)),
                    "updated_at": now,
                }
                conn.execute(
                    insert(subscriptions)
                    .values(tenant_id=self.tenant_id, message_type=message_type, **values)
                    .on_conflict_do_update(
                        index_elements=["tenant_id", "message_type"], set_=values
                    )
                )
            audit_caller(
                conn,
                self.tenant_id,
                caller,
                "subscriptions.updated",
                target="subscriptions",
                details={
                    mt: {
                        "before": {k: before[mt][k] for k in ("channels", "recipients")},
                        "after": {
                            "channels": _channels(s.channels, mt),
                            "recipients": list(dict.fromkeys(s.recipients)),
                        },
                    }
                    for mt, s in changes.items()
                },
                ip=ip,
            )
        return self.subscriptions()

    # reminder state, for the console and for support

    def reminder_state(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reminder_state).where(reminder_state.c.tenant_id == self.tenant_id)
            ).mappings()
            return {
                r["key"]: {
                    "armed": bool(r["armed"]),
                    "fired_at": r["fired_at"].isoformat(timespec="seconds")
                    if r["fired_at"]
                    else None,
                }
                for r in rows
            }


# --- the billing scheduler's entry point ---------------------------------------------------


def evaluate_and_queue(
    engine: Engine,
    tenant_id: int,
    snapshots: list[QuotaSnapshot],
    coverage: PeriodCoverage | None,
    settings: CloudSettings | BillingSection,
    now: datetime,
) -> list[Reminder]:
    """Decide which reminders fire for this tenant now and queue them; returns those fired.

    Safe to call as often as the scheduler likes: a crossing fires once, however many times
    the same position is evaluated, and several schedulers racing on one tenant fire it once.
    """
    billing = settings.billing if isinstance(settings, CloudSettings) else settings
    quota_thresholds = reminders.parse_thresholds(billing.quota_thresholds, upper=Decimal(100))
    period_days = reminders.parse_thresholds(billing.period_days)
    fired: list[Reminder] = []
    with atomic(engine) as conn:
        armed = {
            r.key: bool(r.armed)
            for r in conn.execute(
                sa.select(reminder_state.c.key, reminder_state.c.armed).where(
                    reminder_state.c.tenant_id == tenant_id
                )
            )
        }
        decision = reminders.decide(
            snapshots,
            coverage,
            armed,
            quota_thresholds=quota_thresholds,
            period_days=period_days,
            now=now,
            tz=_tenant_zone(conn, tenant_id),
        )
        mine = reminder_state.c.tenant_id == tenant_id
        if decision.rearm:
            conn.execute(
                reminder_state.update()
                .where(mine, reminder_state.c.key.in_(decision.rearm))
                .values(armed=True)
            )
        if decision.forget:
            conn.execute(
                reminder_state.delete().where(mine, reminder_state.c.key.in_(decision.forget))
            )
        fired_keys = {r.key for r in decision.fire}
        for key in decision.disarm:
            if key not in fired_keys:
                _take_key(conn, tenant_id, key, fired_at=None)  # silenced by a lower threshold
        for reminder in decision.fire:
            if not _take_key(conn, tenant_id, reminder.key, fired_at=now):
                continue  # a concurrent evaluation fired it first
            recipients = queue_message(
                conn,
                tenant_id,
                reminder.message_type,
                reminder.title,
                reminder.body,
                reminder.params,
                now,
                reference=reminder.key,
            )
            audit(
                conn,
                tenant_id,
                "system",
                "reminder.fired",
                target=reminder.key,
                details={"message_type": reminder.message_type, "recipients": recipients},
            )
            fired.append(reminder)
    return fired


def queue_message(
    conn: sa.Connection,
    tenant_id: int,
    message_type: str,
    title: str,
    body: str,
    params: Sequence[str],
    now: datetime,
    *,
    reference: str = "",
) -> list[int]:
    """In-site message for every subscribed user, and SMS/email rows per the subscription.

    Returns the ids of the users it went to. Runs inside the caller's transaction.
    """
    channels, people = _audience(conn, tenant_id, message_type)
    queued: set[tuple[str, str]] = set()  # two users sharing a phone get one SMS
    for person in people:
        conn.execute(
            messages.insert().values(
                tenant_id=tenant_id,
                user_id=person["id"],
                message_type=message_type,
                title=title[:200],
                body=body,
                created_at=now,
            )
        )
        for channel in channels:
            address = _address(person, channel, reference or message_type)
            if address is None or (channel, address) in queued:
                continue
            queued.add((channel, address))
            conn.execute(
                notifications.insert().values(
                    tenant_id=tenant_id,
                    message_type=message_type,
                    channel=channel,
                    recipient=address,
                    subject=title[:200],
                    body=body,
                    params=list(params),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return [p["id"] for p in people]


# --- the outbox, for cloud_api.messaging.notify ----------------------------------------


def claim_due(
    engine: Engine, now: datetime, *, channel: str | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Take up to ``limit`` due notifications under a lease; their attempt is counted now."""
    due = [notifications.c.status == "pending", notifications.c.next_attempt_at <= now]
    if channel is not None:
        due.append(notifications.c.channel == channel)
    with atomic(engine) as conn:
        ids = (
            conn.execute(
                sa.select(notifications.c.id)
                .where(*due)
                .order_by(notifications.c.next_attempt_at, notifications.c.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        # The due condition is repeated: a row another worker claimed meanwhile is skipped.
        claimed = (
            conn.execute(
                notifications.update()
                .where(notifications.c.id.in_(ids), *due)
                .values(next_attempt_at=now + LEASE, attempts=notifications.c.attempts + 1)
                .returning(notifications.c.id)
            )
            .scalars()
            .all()
        )
        if not claimed:
            return []
        rows = (
            conn.execute(
                sa.select(notifications)
                .where(notifications.c.id.in_(claimed))
                .order_by(notifications.c.id)
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def sent(engine: Engine, notification_id: int, now: datetime) -> None:
    with atomic(engine) as conn:
        conn.execute(
            notifications.update()
            .where(notifications.c.id == notification_id)
            .values(status="sent", sent_at=now, last_error="")
        )


def failed(
    engine: Engine,
    notification_id: int,
    attempts: int,
    error: str,
    now: datetime,
    *,
    permanent: bool = False,
    rng: random.Random | None = None,
) -> bool:
    """Record a failed attempt and schedule the next; returns True when it gave up for good."""
    give_up = permanent or attempts >= MAX_ATTEMPTS
    values: dict[str, Any] = {"last_error": error[:500]}
    if give_up:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = now + timedelta(seconds=retry_delay(attempts, rng))
    with atomic(engine) as conn:
        conn.execute(
            notifications.update().where(notifications.c.id == notification_id).values(**values)
        )
    return give_up


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Full jitter under a ceiling that doubles per attempt: 30 s, 60 s ... capped at 1 h,
    and never under the 5 s floor. ``attempts`` counts the tries made so far (1 after the
    first)."""
    return retry.delay(attempts - 1, BACKOFF_BASE_S, BACKOFF_CAP_S, BACKOFF_FLOOR_S, rng or random)


# --- helpers --------------------------------------------------------------------------------


def _take_key(conn: sa.Connection, tenant_id: int, key: str, *, fired_at: datetime | None) -> bool:
    """Disarm ``key``; True only if this call disarmed it (it was armed, or had no row)."""
    values: dict[str, Any] = {"armed": False}
    if fired_at is not None:
        values["fired_at"] = fired_at
    taken = conn.execute(
        reminder_state.update()
        .where(
            reminder_state.c.tenant_id == tenant_id,
            reminder_state.c.key == key,
            reminder_state.c.armed.is_(True),
        )
        .values(**values)
    ).rowcount
    if taken:
        return True
    insert = insert_for(conn)
    # RETURNING rather than rowcount: drivers disagree on rowcount for ON CONFLICT inserts.
    created = conn.execute(
        insert(reminder_state)
        .values(tenant_id=tenant_id, key=key, armed=False, fired_at=fired_at)
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        .returning(reminder_state.c.key)
    ).first()
    return created is not None


def _audience(
    conn: sa.Connection, tenant_id: int, message_type: str
) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """(outbox channels, recipient users) of a message type; the owner when none is set."""
    row = (
        conn.execute(
            sa.select(subscriptions.c.channels, subscriptions.c.recipients).where(
                subscriptions.c.tenant_id == tenant_id,
                subscriptions.c.message_type == message_type,
            )
        )
        .mappings()
        .first()
    )
    channels = _channels(row["channels"] if row else DEFAULT_CHANNELS, message_type)
    active = sa.select(users.c.id, users.c.email, users.c.phone).where(
        users.c.tenant_id == tenant_id, users.c.active.is_(True)
    )
    people: list[dict[str, Any]] = []
    if row and row["recipients"]:
        chosen = [int(uid) for uid in row["recipients"]]
        found = {
            r["id"]: dict(r)
            for r in conn.execute(active.where(users.c.id.in_(chosen))).mappings().all()
        }
        people = [found[uid] for uid in chosen if uid in found]
        if not people:
            # Every chosen user left or was disabled: a reminder nobody reads is worse than one
            # the owner did not ask for.
            log.warning(
                "tenant %s: no active recipient left for %s; sending to the owner",
                tenant_id,
                message_type,
            )
    if not people:
        people = [
            dict(r)
            for r in conn.execute(active.where(users.c.role == "owner").order_by(users.c.id))
            .mappings()
            .all()
        ]
    if not people:  # the platform's own tenant has no owner: its staff read its messages
        people = [
            dict(r)
            for r in conn.execute(active.where(users.c.role == PLATFORM_STAFF).order_by(users.c.id))
            .mappings()
            .all()
        ]
    return tuple(c for c in channels if c in OUTBOX_CHANNELS), people


def _address(person: dict[str, Any], channel: str, reference: str) -> str | None:
    if channel == "email":
        return person["email"]
    if not person["phone"]:
        log.warning("user %s has no phone number: no SMS for %s", person["id"], reference)
        return None
    try:
        return to_e164(person["phone"])
    except ValueError as exc:
        log.warning("user %s: no SMS for %s: %s", person["id"], reference, exc)
        return None


def _channels(chosen: Iterable[str], message_type: str) -> list[str]:
    """Known channels in a fixed order; in-site is always on, SMS only for the reminders."""
    wanted = set(chosen) | {"in_site"}
    if message_type not in SMS_TYPES:
        wanted.discard("sms")
    return [c for c in CHANNELS if c in wanted]


def _tenant_zone(conn: sa.Connection, tenant_id: int) -> ZoneInfo:
    name = conn.execute(sa.select(tenants.c.timezone).where(tenants.c.id == tenant_id)).scalar()
    try:
        return ZoneInfo(name) if name else reminders.DEFAULT_TZ
    except (ZoneInfoNotFoundError, ValueError):
        return reminders.DEFAULT_TZ


def _message_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "message_type": row["message_type"],
        "title": row["title"],
        "body": row["body"],
        "created_at": row["created_at"].isoformat(timespec="seconds"),
        "read_at": row["read_at"].isoformat(timespec="seconds") if row["read_at"] else None,
        "read": row["read_at"] is not None,
    }
