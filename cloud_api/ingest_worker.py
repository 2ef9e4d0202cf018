"""``cangyun cloud ingest``: the MQTT consumer that files uplink messages into the ledger.

Run as many as needed: workers in one shared-subscription group split the messages, and the
ledger's unique key plus the per-device lock keep them consistent. A worker acknowledges an
MQTT message (manual PUBACK) only after its database commit and after queueing the
``down/ack`` to the edge; killed in between, the edge simply resends.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa

from cangyun import wire
from cangyun.mqtt import Backoff, Link, make_client, parse_broker_url
from cloud_api.ingest import IngestService
from cloud_api.settings import CloudSettings

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 30.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


class IngestWorker:
    def __init__(
        self,
        settings: CloudSettings,
        service: IngestService,
        *,
        client_id: str | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.settings = settings
        self.service = service
        self.stats = collections.Counter[str]()
        self._stop = threading.Event()
        self._clock = clock
        m = settings.mqtt
        client = make_client(
            client_id or f"cangyun-ingest-{socket.gethostname()}-{os.getpid()}",
            username=m.username,
            password=m.password,
            protocol=m.protocol,
            tls=parse_broker_url(m.url).tls,
            ca_file=m.ca_file,
            manual_ack=True,
        )
        client.max_inflight_messages_set(64)
        client.on_message = self._on_message
        self.link = Link(
            client,
            parse_broker_url(m.url),
            keepalive=m.keepalive,
            backoff=Backoff(BACKOFF_BASE_S, BACKOFF_CAP_S),
            on_up=self._on_up,
            on_down=lambda reason: None,
            clock=clock,
        )
        self.client = client

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        last_stats = self._clock()
        # How soon a paid renewal reaches boxes that stay connected (no hello to answer).
        sweep_every = self.settings.cloud.licence_sweep_s
        last_sweep = self._clock() - sweep_every
        # How soon a new or cancelled expected line reaches boxes that stay connected.
        expected_every = self.settings.cloud.expected_sweep_s
        last_expected = self._clock() - expected_every
        while not self._stop.is_set():
            self.link.step(self._stop)
            if self._clock() - last_stats >= STATS_INTERVAL_S:
                last_stats = self._clock()
                if self.stats:
                    log.info("ingest stats: %s", dict(self.stats))
            if self.link.state == "connected" and self._clock() - last_sweep >= sweep_every:
                last_sweep = self._clock()
                self._sweep_licences()
            if self.link.state == "connected" and self._clock() - last_expected >= expected_every:
                last_expected = self._clock()
                self._sweep_expected()
        self.link.close()

    def _sweep_licences(self) -> None:
        try:
            replies = self.service.licence_sweep()
        except Exception:  # noqa: BLE001 - e.g. the database is down: next sweep
            log.exception("licence sweep failed")
            return
        for reply in replies:
            self.client.publish(reply.topic, reply.payload, qos=1)
        if replies:
            self.stats["licences_sent"] += len(replies)

    def _sweep_expected(self) -> None:
        try:
            replies = self.service.expected_sweep()
        except Exception:  # noqa: BLE001 - e.g. the database is down: next sweep
            log.exception("expected goods sweep failed")
            return
        for reply in replies:
            self.client.publish(reply.topic, reply.payload, qos=1)
        if replies:
            self.stats["expected_sent"] += len(replies)

    def _on_up(self) -> None:
        filters = wire.ingest_subscription(self.settings.mqtt.share_group or None)
        self.client.subscribe([(f, 1) for f in filters])
        log.info("subscribed to %s", ", ".join(filters))

    def _on_message(self, client: mqtt.Client, _ud: Any, message: mqtt.MQTTMessage) -> None:
        try:
            replies = self.service.handle(message.topic, message.payload)
        except sa.exc.SQLAlchemyError:
            # No commit, so no ack: the edge resends after its ack timeout.
            self.stats["db_errors"] += 1
            log.exception("database error while filing %s", message.topic)
            replies = []
        except Exception:  # a bug must not take the worker down with every message after it
            self.stats["errors"] += 1
            log.exception("unexpected error while filing %s", message.topic)
            replies = []
        for reply in replies:
            client.publish(reply.topic, reply.payload, qos=1)
        self.stats["messages"] += 1
        client.ack(message.mid, message.qos)
