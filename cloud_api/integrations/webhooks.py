"""Delivering webhooks: HMAC-signed POSTs, retried with exponential backoff and jitter.

Each delivery carries ``X-Cangyun-Event``, ``X-Cangyun-Delivery`` (an id receivers use to
drop repeats: delivery is at least once) and ``X-Cangyun-Signature: t=<unix>,v1=<hex>`` where
v1 is HMAC-SHA256 of ``"<t>.<body>"`` with the webhook's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from cangyun import retry
from cangyun.errors import Invalid
from cangyun.timeutil import utcnow
from cloud_api.integrations import store as integrations
from cloud_api.platform.workers import PeriodicWorker

log = logging.getLogger(__name__)

POLL_S = 1.0
TIMEOUT_S = 10
BACKOFF_BASE_S = 10.0
BACKOFF_CAP_S = 3600.0
MAX_URL = 500  # webhooks.url is VARCHAR(500)


class WebhookUrlError(Invalid):
    """A URL deliveries may not go to: not http(s), no host, or a private address."""

    code = "invalid_url"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="url")


def check_url(url: str, *, allow_private: bool) -> str:
    """Only http(s) to public addresses, unless private targets are allowed (tests, LAN)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # e.g. an unclosed [IPv6 literal
        raise WebhookUrlError(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host or len(url) > MAX_URL:
        raise WebhookUrlError("the URL must be http:// or https:// with a host")
    if allow_private:
        return url
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host IDNA cannot encode
        raise WebhookUrlError(f"cannot resolve {host}") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            raise WebhookUrlError(f"{host} resolves to a private address")
    return url


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Full jitter under an exponentially growing ceiling: uniform(0, 10 s), (0, 20 s),
    (0, 40 s) ... (0, 1 h). ``attempts`` counts the tries made so far (1 after the first)."""
    return retry.delay(attempts - 1, BACKOFF_BASE_S, BACKOFF_CAP_S, rng=rng or random)


def deliver_due(engine: Engine, *, limit: int = 20) -> int:
    """Send what is due now; returns how many were attempted."""
    batch = integrations.claim_due(engine, limit)
    for delivery in batch:
        body = delivery["payload"].encode()
        timestamp = int(time.time())
        request = urllib.request.Request(
            delivery["url"],
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "cangyun-webhooks/1",
                "X-Cangyun-Event": delivery["event"],
                "X-Cangyun-Delivery": str(delivery["id"]),
                "X-Cangyun-Signature": signature(delivery["secret"], timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                status = response.status
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if not error:
            integrations.delivered(engine, delivery["id"])
            continue
        attempts = delivery["attempts"]  # already counted when claimed
        retry_at = utcnow() + timedelta(seconds=retry_delay(attempts))
        log.warning(
            "webhook delivery %s to %s failed (%s); attempt %d",
            delivery["id"],
            delivery["url"],
            error,
            attempts,
        )
        integrations.failed(engine, delivery["id"], attempts, error, retry_at)
    return len(batch)


def delivery_worker(engine: Engine) -> PeriodicWorker:
    """Background sender inside ``cangyun cloud serve``."""
    return PeriodicWorker("webhooks", lambda: deliver_due(engine), POLL_S)
