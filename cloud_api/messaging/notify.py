"""Sending queued notifications: email through SMTP, SMS through the configured provider.

Each channel runs in its own thread with its own claimed batch, so an SMTP server that hangs
cannot hold up SMS (or the other way round), and one recipient's failure only reschedules that
one row. A failure is retried with backoff (``store.messaging.failed``) until it gives up; a
channel with no server or provider configured fails at once, since retrying cannot fix that.

Delivery is at least once: if the process dies after the provider accepted a message but
before the row is marked sent, the row is sent again when its lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from cangyun.timeutil import utcnow
from cloud_api.messaging import store as messaging
from cloud_api.platform.mail import Mail, MailError, SmtpMailer
from cloud_api.platform.sms import SmsError, SmsNotConfigured, SmsSender, sender_for
from cloud_api.platform.workers import PeriodicWorker
from cloud_api.settings import CloudSettings

log = logging.getLogger(__name__)

POLL_S = 2.0
BATCH = 10  # per channel and round; with the 15 s timeouts this stays well inside the lease


class ChannelFailure(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


Send = Callable[[dict[str, Any]], None]


def deliver_due(
    engine: Engine,
    settings: CloudSettings,
    *,
    now: datetime | None = None,
    limit: int = BATCH,
    mailer: SmtpMailer | None = None,
    sms: SmsSender | None = None,
) -> int:
    """Send what is due; returns how many notifications were attempted."""
    moment = now or utcnow()
    senders: dict[str, Send] = {
        "email": _email_sender(mailer or SmtpMailer(settings.smtp)),
        "sms": _sms_sender(sms, settings),
    }
    with ThreadPoolExecutor(len(senders), thread_name_prefix="notify") as pool:
        rounds = [
            pool.submit(_deliver_channel, engine, channel, send, moment, limit)
            for channel, send in senders.items()
        ]
        return sum(r.result() for r in rounds)


def _deliver_channel(engine: Engine, channel: str, send: Send, now: datetime, limit: int) -> int:
    batch = messaging.claim_due(engine, now, channel=channel, limit=limit)
    for item in batch:
        try:
            send(item)
        except ChannelFailure as exc:
            _failed(engine, item, str(exc), now, permanent=exc.permanent)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("notification %s: unexpected error", item["id"])
            _failed(engine, item, f"{type(exc).__name__}: {exc}", now, permanent=False)
        else:
            messaging.sent(engine, item["id"], now)
    return len(batch)


def _failed(
    engine: Engine, item: dict[str, Any], error: str, now: datetime, *, permanent: bool
) -> None:
    gave_up = messaging.failed(
        engine, item["id"], item["attempts"], error, now, permanent=permanent
    )
    log.warning(
        "%s to %s failed (attempt %d%s): %s",
        item["channel"],
        item["recipient"],
        item["attempts"],
        ", giving up" if gave_up else ", will retry",
        error,
    )


def _email_sender(mailer: SmtpMailer) -> Send:
    def send(item: dict[str, Any]) -> None:
        if not mailer.configured:
            raise ChannelFailure("no SMTP server configured ([smtp] host)", permanent=True)
        try:
            mailer.send(Mail(item["recipient"], item["subject"], item["body"]))
        except MailError as exc:
            raise ChannelFailure(str(exc), permanent=False) from exc

    return send


def _sms_sender(sender: SmsSender | None, settings: CloudSettings) -> Send:
    unavailable = ""
    if sender is None:
        try:
            sender = sender_for(settings.sms)
        except SmsNotConfigured as exc:
            unavailable = str(exc)

    def send(item: dict[str, Any]) -> None:
        if sender is None:
            raise ChannelFailure(unavailable, permanent=True)
        try:
            sender.send(
                item["recipient"], item["params"] or [], reference=f"notification:{item['id']}"
            )
        except SmsError as exc:
            raise ChannelFailure(str(exc), permanent=exc.permanent) from exc

    return send


def notification_worker(engine: Engine, settings: CloudSettings) -> PeriodicWorker:
    """Background sender for ``cangyun cloud serve``, next to the webhook worker."""
    return PeriodicWorker("notifications", lambda: deliver_due(engine, settings), POLL_S)
