"""Small helpers around paho-mqtt shared by the sync agent and cloud ingest."""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cangyun import retry

log = logging.getLogger(__name__)

PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}


class BrokerUrlError(ValueError):
    pass


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host:1883`` or ``mqtts://host:8883``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BrokerUrlError(f"broker URL must look like mqtt://host:1883, got {url!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls)


def make_client(
    client_id: str,
    *,
    username: str | None,
    password: str | None,
    protocol: str,
    tls: bool,
    ca_file: str | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    if protocol not in PROTOCOLS:
        raise BrokerUrlError(f"MQTT protocol must be one of {', '.join(PROTOCOLS)}")
    version = PROTOCOLS[protocol]
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version,
        clean_session=None if version == mqtt.MQTTv5 else True,
        manual_ack=manual_ack,
    )
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    return client


class Backoff:
    """Exponential backoff with full jitter (``cangyun.retry.delay``) over reconnects.

    Full jitter spreads a whole warehouse of reconnecting boxes over the window instead of
    having them retry in lockstep after a broker restart.
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        wait = retry.delay(self.attempts, self.base, self.cap, rng=self._rng)
        self.attempts = min(self.attempts + 1, retry.MAX_EXPONENT)
        return wait

    def reset(self) -> None:
        self.attempts = 0


class Link:
    """Drives a paho client from the caller's own loop: connect, pump the socket, and after a
    loss reconnect with jittered backoff. Nothing runs in a background thread, so the
    owner's callbacks and its sending code never race.

    ``on_up`` runs after a successful CONNACK (subscribe and announce there); ``on_down``
    runs with the reason whenever the connection is lost or refused.
    """

    LOOP_TIMEOUT_S = 0.05
    CONNACK_TIMEOUT_S = 10.0

    def __init__(
        self,
        client: mqtt.Client,
        broker: BrokerAddress,
        *,
        keepalive: int,
        backoff: Backoff,
        on_up: Any,
        on_down: Any,
        clock: Any,
    ) -> None:
        self.client = client
        self.broker = broker
        self.keepalive = keepalive
        self.backoff = backoff
        self._on_up = on_up
        self._on_down = on_down
        self._clock = clock
        self.state = "disconnected"  # disconnected | connecting | connected
        self._next_attempt = 0.0
        self._connect_started = 0.0
        self.connects = 0
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected

    @property
    def up(self) -> bool:
        return self.state == "connected"

    def step(self, idle: threading.Event) -> None:
        """One turn: connect when due, else let paho read/write; waits at most ~0.2 s."""
        now = self._clock()
        if self.state == "disconnected":
            if now >= self._next_attempt:
                self._connect()
            else:
                idle.wait(min(0.2, self._next_attempt - now))
            return
        rc = self.client.loop(timeout=self.LOOP_TIMEOUT_S)
        if rc != mqtt.MQTT_ERR_SUCCESS and self.state != "disconnected":
            self.lost(f"network loop: {mqtt.error_string(rc)}")
        elif self.state == "connecting" and now - self._connect_started > self.CONNACK_TIMEOUT_S:
            self.lost("no CONNACK from the broker")

    def lost(self, reason: str) -> None:
        was = self.state
        self.state = "disconnected"
        delay = self.backoff.next_delay()
        self._next_attempt = self._clock() + delay
        with contextlib.suppress(Exception):  # the socket may already be gone
            self.client.disconnect()
        log.warning("%s (was %s); retrying in %.1f s", reason, was, delay)
        self._on_down(reason)

    def close(self, flush: Any = None, timeout: float = 2.0) -> None:
        """Disconnect cleanly after ``flush`` (a list of MQTTMessageInfo) is sent."""
        if self.state == "connected":
            deadline = self._clock() + timeout
            for info in flush or []:
                while not info.is_published() and self._clock() < deadline:
                    if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                        break
            self.client.disconnect()
        self.state = "disconnected"

    def _connect(self) -> None:
        self.state = "connecting"
        self._connect_started = self._clock()
        kwargs: dict[str, Any] = {"keepalive": self.keepalive}
        if self.client.protocol == mqtt.MQTTv5:
            kwargs["clean_start"] = True
        try:
            self.client.connect(self.broker.host, self.broker.port, **kwargs)
        except (OSError, ValueError) as exc:
            self.lost(f"cannot reach broker {self.broker.url}: {exc}")

    def _connected(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.lost(f"broker refused the connection: {reason}")
            return
        self.state = "connected"
        self.connects += 1
        self.backoff.reset()
        log.info("connected to %s", self.broker.url)
        self._on_up()

    def _disconnected(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if self.state != "disconnected":
            self.lost(f"disconnected from broker: {reason}")
