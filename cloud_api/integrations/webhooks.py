"""Delivering webhooks: HMAC-signed POSTs, retried with exponential backoff and jitter.

Each delivery carries ``X-Cangyun-Event``, ``X-Cangyun-Delivery`` (an id receivers use to
drop repeats: delivery is at least once) and ``X-Cangyun-Signature: t=<unix>,v1=<hex>`` where
v1 is HMAC-SHA256 of ``"<t>.<body>"`` with the webhook's secret.

The target's address is checked when the webhook is made and again at every delivery, which
resolves the host once, checks every address (``forbidden_address``) and connects to the
checked one while sending the URL's own Host header and TLS server name: a DNS answer that
changes between the check and the connection (rebinding) cannot steer a delivery inside.
Redirects are never followed; a 3xx is a failed attempt, retried like any other.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart, with the one address a delivery may connect to."""

    scheme: str
    host: str  # as in the URL: what Host and the TLS server name say
    port: int
    path: str
    address: str  # the checked IP


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now (one lookup; tests replace this function)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def forbidden_address(address: str) -> bool:
    """The one rule for where webhooks may not go unless private targets are allowed."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def _parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:  # e.g. an unclosed [IPv6 literal, a port out of range
        raise WebhookUrlError(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host or len(url) > MAX_URL:
        raise WebhookUrlError("the URL must be http:// or https:// with a host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host once and check every address; the first is the one to use."""
    scheme, host, port, path = _parse(url)
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host IDNA cannot encode
        raise WebhookUrlError(f"cannot resolve {host}") from exc
    if not addresses:
        raise WebhookUrlError(f"cannot resolve {host}")
    if not allow_private and any(forbidden_address(a) for a in addresses):
        raise WebhookUrlError(f"{host} resolves to a private address")
    return Target(scheme, host, port, path, addresses[0])


def check_url(url: str, *, allow_private: bool) -> str:
    """Only http(s) to public addresses, unless private targets are allowed (tests, LAN)."""
    if allow_private:
        _parse(url)
        return url
    resolve_target(url, allow_private=False)
    return url


def tls_context() -> ssl.SSLContext:
    """Certificates checked against the system's CAs and the URL's host name."""
    return ssl.create_default_context()


def _connection(target: Target) -> http.client.HTTPConnection:
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            target.host, target.port, timeout=TIMEOUT_S, context=tls_context()
        )
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=TIMEOUT_S)

    # http.client opens its socket through this hook; HTTPSConnection then wraps it with
    # server_hostname=target.host, so SNI and the certificate check use the name, while the
    # TCP connection goes to the address that was checked and nowhere else.
    def pinned(_address: object, timeout: float, source: object = None) -> socket.socket:
        return socket.create_connection((target.address, target.port), timeout, source)  # type: ignore[arg-type]

    connection._create_connection = pinned  # type: ignore[attr-defined]
    return connection


def post(target: Target, body: bytes, headers: dict[str, str]) -> int:
    """One POST to the checked address; the status as answered (redirects not followed)."""
    connection = _connection(target)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)  # a little of the body, so the receiver is not cut off mid-send
        return response.status
    finally:
        connection.close()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Full jitter under an exponentially growing ceiling: uniform(0, 10 s), (0, 20 s),
    (0, 40 s) ... (0, 1 h). ``attempts`` counts the tries made so far (1 after the first)."""
    return retry.delay(attempts - 1, BACKOFF_BASE_S, BACKOFF_CAP_S, rng=rng or random)


def deliver_due(engine: Engine, *, allow_private: bool = False, limit: int = 20) -> int:
    """Send what is due now; returns how many were attempted. ``allow_private`` is the
    setting ``cloud.webhooks_allow_private``, applied again at every delivery."""
    batch = integrations.claim_due(engine, limit)
    for delivery in batch:
        body = delivery["payload"].encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "cangyun-webhooks/1",
            "X-Cangyun-Event": delivery["event"],
            "X-Cangyun-Delivery": str(delivery["id"]),
            "X-Cangyun-Signature": signature(delivery["secret"], timestamp, body),
        }
        try:
            target = resolve_target(delivery["url"], allow_private=allow_private)
            status = post(target, body, headers)
            if 200 <= status < 300:
                error = ""
            elif 300 <= status < 400:
                error = f"HTTP {status} (redirects are not followed)"
            else:
                error = f"HTTP {status}"
        except WebhookUrlError as exc:
            error = f"refused: {exc.message}"
        except (http.client.HTTPException, OSError, ValueError) as exc:
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


def delivery_worker(engine: Engine, *, allow_private: bool = False) -> PeriodicWorker:
    """Background sender inside ``cangyun cloud serve``."""
    return PeriodicWorker(
        "webhooks", lambda: deliver_due(engine, allow_private=allow_private), POLL_S
    )
