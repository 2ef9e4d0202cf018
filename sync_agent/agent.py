"""The sync agent: ships the edge outbox to the cloud over MQTT and records the cloud's acks.

The outbox in SQLite is the only durable queue; paho's in-memory session is just a transmit
window. A movement counts as safe only when the cloud's ``down/ack {acked_through}`` covers
it (the cloud sends that after its database commit), so the agent may crash, the broker may
restart and the link may drop at any moment: on every (re)connect it says ``hello`` and
resends everything above the watermark; duplicates are harmless because the cloud keys
movements by (device, epoch, seq).

One thread drives everything (paho's ``loop()`` is called from this loop), so callbacks
and the sending logic never race.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from cangyun import wire
from cangyun.box_settings import EdgeSettings
from cangyun.licence import LicenceError
from cangyun.mqtt import Backoff, Link, make_client, parse_broker_url
from cangyun.timeutil import format_ts, utcnow
from edge import licence
from edge.gates.store import GateStore
from edge.store import Outbox

log = logging.getLogger(__name__)

HELLO_WAIT_S = 2.0  # wait this long for the cloud's answer to hello before sending batches
TRIM_INTERVAL_S = 60.0
SHUTDOWN_FLUSH_S = 2.0


class AgentAlreadyRunning(RuntimeError):
    pass


@dataclass
class _Window:
    """Batches published and not yet covered by the cloud's watermark."""

    last_seqs: collections.deque[int]
    last_progress: float = 0.0


class SyncAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        clock: Any = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sync = settings.sync
        self.address = wire.DeviceAddress(
            settings.device.tenant, settings.device.warehouse, settings.device.device
        )
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock_file = _take_agent_lock(settings.database_path)
        self.outbox = Outbox(settings.database_path)
        self.epoch = self.outbox.epoch
        self.acked_through = self.outbox.acked_through()
        self.send_cursor = self.acked_through
        self.window = _Window(collections.deque())
        self.batch_no = 0
        self.broker = parse_broker_url(settings.mqtt.url)
        self._stop = threading.Event()
        self._hello_sent_at: float | None = None
        self._hello_answered = False
        self._last_heartbeat = 0.0
        self._last_trim = 0.0
        self.stats = collections.Counter[str]()
        self._gates: GateStore | None = None  # opened on the first expected-goods command
        self.link = self._make_link()
        self.client = self.link.client

    # --- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        delay = self._rng.uniform(0, self.sync.startup_delay_max_s)
        if delay:
            log.info("waiting %.1f s before the first connect (start-up jitter)", delay)
            if self._stop.wait(delay):
                return
        self.outbox.set_link(False)
        log.info(
            "sync agent for %s epoch %s: acked through %d, last seq %d",
            self.address.prefix,
            self.epoch,
            self.acked_through,
            self.outbox.last_seq(),
        )
        try:
            while not self._stop.is_set():
                self._step()
        finally:
            self._shutdown()

    def _step(self) -> None:
        self.link.step(self._stop)
        if self.link.up:
            self._pump()
            self._check_ack_timeout()
        self._housekeeping()

    def _shutdown(self) -> None:
        flush = []
        if self.link.up:
            flush.append(
                self.client.publish(
                    self.address.topic(wire.STATUS),
                    wire.encode_status(wire.Status("offline", self.epoch, format_ts(utcnow()))),
                    qos=1,
                    retain=True,
                )
            )
        self.link.close(flush, SHUTDOWN_FLUSH_S)
        try:
            self.outbox.set_link(False)
        finally:
            self.outbox.close()
            if self._gates is not None:
                self._gates.close()
            self._lock_file.close()
        log.info("sync agent stopped; acked through %d", self.acked_through)

    # --- connection ---------------------------------------------------------------------

    def _make_link(self) -> Link:
        m = self.settings.mqtt
        client = make_client(
            self.address.device,
            username=m.username or self.address.device,
            password=m.password,
            protocol=m.protocol,
            tls=self.broker.tls,
            ca_file=m.ca_file,
        )
        client.will_set(
            self.address.topic(wire.STATUS),
            wire.encode_status(wire.Status("offline", self.epoch)),
            qos=1,
            retain=True,
        )
        client.max_inflight_messages_set(self.sync.max_inflight_batches + 8)
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        backoff = Backoff(self.sync.backoff_base_s, self.sync.backoff_cap_s, self._rng)
        return Link(
            client,
            self.broker,
            keepalive=m.keepalive,
            backoff=backoff,
            on_up=self._on_up,
            on_down=self._on_down,
            clock=self._clock,
        )

    def _on_down(self, reason: str) -> None:
        self.window.last_seqs.clear()
        self.outbox.set_link(False, reason)

    def _on_up(self) -> None:
        client = self.client
        client.subscribe(
            [(self.address.topic(wire.DOWN_ACK), 1), (self.address.topic(wire.DOWN_CMD), 1)]
        )
        client.publish(
            self.address.topic(wire.STATUS),
            wire.encode_status(wire.Status("online", self.epoch, format_ts(utcnow()))),
            qos=1,
            retain=True,
        )
        last_seq = self.outbox.last_seq()
        client.publish(
            self.address.topic(wire.UP_HELLO),
            wire.encode_hello(
                wire.Hello(
                    self.address.device,
                    self.epoch,
                    last_seq,
                    self.acked_through,
                    format_ts(utcnow()),
                )
            ),
            qos=1,
        )
        self._hello_sent_at = self._clock()
        self._hello_answered = False
        # Resend everything the cloud has not acknowledged: what was in flight may be lost.
        self.send_cursor = self.acked_through
        self.window.last_seqs.clear()
        self.window.last_progress = self._clock()
        self.outbox.set_link(True)
        log.info(
            "online; backlog %d (acked through %d)",
            last_seq - self.acked_through,
            self.acked_through,
        )

    def _on_publish(self, _c: mqtt.Client, _ud: Any, _mid: int, reason: Any, _p: Any) -> None:
        # MQTT 5 brokers say why they dropped a publish (e.g. not authorised by the ACL).
        if getattr(reason, "is_failure", False):
            self.stats["publish_refused"] += 1
            log.error("broker refused a publish: %s (check this device's ACL)", reason)

    # --- downlink -----------------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _ud: Any, message: mqtt.MQTTMessage) -> None:
        suffix = message.topic[len(self.address.prefix) + 1 :]
        try:
            if suffix == wire.DOWN_ACK:
                self._handle_ack(wire.decode_ack(message.payload))
            elif suffix == wire.DOWN_CMD:
                self._handle_command(wire.decode_command(message.payload))
        except wire.WireError as exc:
            self.stats["bad_downlink"] += 1
            log.warning("ignoring malformed %s message: %s", suffix, exc)

    def _handle_ack(self, ack: wire.Ack) -> None:
        if ack.epoch != self.epoch:
            log.debug("ack for epoch %s ignored (this database is epoch %s)", ack.epoch, self.epoch)
            return
        self.stats["acks"] += 1
        if ack.hello:
            self._hello_answered = True
            if ack.acked_through < self.acked_through:
                # The cloud knows less than we thought (restored database?): send it again
                # whatever the outbox still holds above its watermark.
                log.warning(
                    "cloud watermark %d is behind the local ack %d; resending from there",
                    ack.acked_through,
                    self.acked_through,
                )
                self.send_cursor = min(self.send_cursor, ack.acked_through)
                self.window.last_seqs.clear()
        if ack.acked_through > self.acked_through or ack.rejected:
            self.acked_through = self.outbox.record_ack(ack.acked_through, ack.rejected)
            self.window.last_progress = self._clock()
            for seq, code in ack.rejected:
                log.error("cloud dead-lettered movement seq %d: %s", seq, code)
        self.send_cursor = max(self.send_cursor, self.acked_through)
        window = self.window.last_seqs
        while window and window[0] <= self.acked_through:
            window.popleft()

    def _handle_command(self, command: wire.Command) -> None:
        handlers = {
            wire.CMD_RESEND: self._resend,
            wire.CMD_LICENCE: self._take_licence,
            wire.CMD_EXPECTED: self._take_expected,
        }
        handler = handlers.get(command.kind)
        if handler is None:
            log.info("ignoring downlink command %r (not handled by this version)", command.kind)
            return
        handler(command)

    def _resend(self, command: wire.Command) -> None:
        try:
            resend = wire.decode_resend(command)
        except wire.WireError as exc:
            log.warning("ignoring a resend the cloud sent: %s (%s)", exc.code, exc.message)
            return
        log.info("cloud asked to resend from seq %d", resend.from_seq)
        self.send_cursor = min(self.send_cursor, resend.from_seq - 1)
        self.window.last_seqs.clear()

    def _take_licence(self, command: wire.Command) -> None:
        # The token itself is checked by licence.install_token, with its own codes.
        self._install_licence(command.data.get("token"))

    def _install_licence(self, token: object) -> None:
        """Install a licence the cloud pushed. A bad token is logged and dropped: the licence
        in force stays, and the cloud sends a fresh one on the next hello."""
        try:
            outcome, granted = licence.install_token(
                self.outbox,
                token,
                public_key=self.settings.cloud.public_key,
                device=self.address,
                now=utcnow(),
            )
        except LicenceError as exc:
            self.stats["bad_licence"] += 1
            log.warning("ignoring a licence the cloud sent: %s (%s)", exc.code, exc.message)
            return
        except sqlite3.Error:
            self.stats["bad_licence"] += 1
            log.exception("could not store the licence the cloud sent; waiting for a resend")
            return
        self.stats[f"licence_{outcome}"] += 1
        log.info(
            "licence %s %s: edition %s, valid until %s",
            granted.serial,
            outcome,
            granted.edition,
            format_ts(granted.valid_until),
        )

    def _take_expected(self, command: wire.Command) -> None:
        """ASN and shipment lines the cloud sent for this warehouse, into the gate store.
        A command that does not check out is logged and dropped whole; the cloud sends the
        full set of open lines again on the next hello."""
        try:
            update = wire.decode_expected(command, warehouse=self.address.warehouse)
        except wire.WireError as exc:
            self.stats["bad_expected"] += 1
            log.warning("ignoring expected goods the cloud sent: %s (%s)", exc.code, exc.message)
            return
        try:
            if self._gates is None:
                self._gates = GateStore(self.settings.database_path)
            counts = self._gates.apply_cloud_lines(
                list(update.lines), version=update.version, span=update.span
            )
        except Exception:  # noqa: BLE001 - e.g. the database is locked; the outbox must go on
            self.stats["bad_expected"] += 1
            log.exception("could not store the expected goods the cloud sent; waiting for a resend")
            return
        self.stats["expected_commands"] += 1
        log.info(
            "expected goods v%d (%s): %d added, %d closed, %d unchanged",
            update.version,
            "full set" if update.span else "changes",
            counts["added"],
            counts["closed"],
            counts["unchanged"],
        )
        if counts["unplaced"]:
            log.warning(
                "%d expected lines name a gate this box lacks or one of another direction;"
                " they wait for such a gate",
                counts["unplaced"],
            )

    # --- uplink -------------------------------------------------------------------------

    def _pump(self) -> None:
        if not self._hello_answered and self._hello_sent_at is not None:
            if self._clock() - self._hello_sent_at < HELLO_WAIT_S:
                return
        window = self.window.last_seqs
        while len(window) < self.sync.max_inflight_batches:
            rows = self.outbox.items_after(self.send_cursor, self.sync.batch_size)
            if not rows:
                return
            self.batch_no += 1
            payload = wire.encode_batch(
                self.address.device,
                self.epoch,
                self.batch_no,
                [item for _, item in rows],
                format_ts(utcnow()),
            )
            info = self.client.publish(self.address.topic(wire.UP_TX), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("publish failed: %s", mqtt.error_string(info.rc))
                return
            if not window:
                self.window.last_progress = self._clock()
            window.append(rows[-1][0])
            self.send_cursor = rows[-1][0]
            self.stats["batches_sent"] += 1
            self.stats["items_sent"] += len(rows)

    def _check_ack_timeout(self) -> None:
        if not self.window.last_seqs:
            return
        if self._clock() - self.window.last_progress > self.sync.ack_timeout_s:
            log.warning(
                "no ack progress for %.0f s; resending from seq %d",
                self.sync.ack_timeout_s,
                self.acked_through + 1,
            )
            self.stats["ack_timeouts"] += 1
            self.send_cursor = self.acked_through
            self.window.last_seqs.clear()
            self.window.last_progress = self._clock()

    def _housekeeping(self) -> None:
        now = self._clock()
        if now - self._last_heartbeat >= self.sync.heartbeat_s:
            self._last_heartbeat = now
            self.outbox.heartbeat()
        if now - self._last_trim >= TRIM_INTERVAL_S:
            self._last_trim = now
            trimmed = self.outbox.trim(self.sync.retention_days * 86400)
            if trimmed:
                log.info("trimmed %d acknowledged outbox rows", trimmed)


def _take_agent_lock(database: Path) -> Any:
    """Only one agent per edge database: two would fight over the same MQTT client id."""
    database.parent.mkdir(parents=True, exist_ok=True)
    handle = open(database.with_suffix(".sync.lock"), "w")  # noqa: SIM115 - held for life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise AgentAlreadyRunning(f"another sync agent is already running for {database}") from exc
    return handle
