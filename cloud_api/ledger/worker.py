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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa

from cangyun import wire
from cangyun.mqtt import Backoff, Link, make_client, parse_broker_url
from cloud_api.ledger.ingest import IngestService, Reply
from cloud_api.settings import CloudSettings

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 30.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


@dataclass
class Sweep:
    """A periodic downlink: ``collect`` returns what is due to be published now."""

    name: str
    every_s: float
    collect: Callable[[], list[Reply]]
    last: float = 0.0


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
        # Downlinks for boxes that stay connected (no hello to answer): how soon a paid
        # renewal, or a new or cancelled expected line, reaches them.
        sweeps = [
            Sweep("licences", self.settings.cloud.licence_sweep_s, self.service.licence_sweep),
            Sweep("expected", self.settings.cloud.expected_sweep_s, self.service.expected_sweep),
        ]
        for sweep in sweeps:
            sweep.last = self._clock() - sweep.every_s
        while not self._stop.is_set():
            self.link.step(self._stop)
            if self._clock() - last_stats >= STATS_INTERVAL_S:
                last_stats = self._clock()
                if self.stats:
                    log.info("ingest stats: %s", dict(self.stats))
            for sweep in sweeps:
                if self.link.state == "connected" and self._clock() - sweep.last >= sweep.every_s:
                    sweep.last = self._clock()
                    self._publish_sweep(sweep)
        self.link.close()

    def _publish_sweep(self, sweep: Sweep) -> None:
        try:
            replies = sweep.collect()
        except Exception:  # noqa: BLE001 - e.g. the database is down: next sweep
            log.exception("%s sweep failed", sweep.name)
            return
        for reply in replies:
            self.client.publish(reply.topic, reply.payload, qos=1)
        if replies:
            self.stats[f"{sweep.name}_sent"] += len(replies)

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
