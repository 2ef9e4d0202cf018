"""Filing uplink messages: topic → device → envelope → ledger rows, dead letters and acks.

``IngestService.handle`` is transport-free (the MQTT worker calls it, tests may too). It
never raises on bad input: whatever cannot be filed becomes a dead letter with the reason.
A database error does raise, and then no ack is sent, so the edge will resend.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from cangyun import wire
from cangyun.movement import MovementError, parse_movement, warehouse_delta
from cangyun.timeutil import TimestampError, parse_ts, utcnow
from cloud_api.billing import licensing
from cloud_api.billing.metering import epoch_ms
from cloud_api.expected import sync as expected_sync
from cloud_api.ledger import store as ledger
from cloud_api.ledger.store import DeadItem
from cloud_api.sites import registry
from cloud_api.sites.registry import DeviceRef

log = logging.getLogger(__name__)

DEVICE_CACHE_TTL_S = 30.0  # a revoked device stops being accepted within this time


@dataclass(frozen=True)
class Reply:
    topic: str
    payload: bytes


def prepare_items(
    batch: wire.Batch, device: DeviceRef, received_at: datetime
) -> tuple[list[dict[str, Any]], list[DeadItem], dict[int, str]]:
    """Validate each item into a ledger row, or a dead item with the reason.

    Returns (rows, dead items, raw JSON of each item by seq).
    """
    rows: list[dict[str, Any]] = []
    dead: list[DeadItem] = []
    raw_items: dict[int, str] = {}
    for index, reason in batch.malformed:
        dead.append(DeadItem(None, "bad_item", f"item {index}: {reason}", ""))
    for item in batch.items:
        canonical = orjson.dumps(
            {"id": item.id, "type": item.type, "occurred_at": item.occurred_at, "body": item.body},
            option=orjson.OPT_SORT_KEYS,
        )
        raw = canonical.decode()
        raw_items[item.seq] = raw
        if not item.id:
            dead.append(DeadItem(item.seq, "bad_item", "item has no id", raw))
            continue
        if not isinstance(item.body, dict):
            dead.append(DeadItem(item.seq, "bad_item", "item body is not an object", raw))
            continue
        data = dict(item.body)
        data["type"] = item.type
        data["occurred_at"] = item.occurred_at
        try:
            movement = parse_movement(data, source="wire")
        except MovementError as exc:
            dead.append(DeadItem(item.seq, exc.code, exc.message, raw))
            continue
        qty_delta, weight_delta = warehouse_delta(movement)
        rows.append(
            {
                "tenant_id": device.tenant_id,
                "warehouse_id": device.warehouse_id,
                "device_id": device.id,
                "epoch": batch.epoch,
                "seq": item.seq,
                "movement_id": item.id,
                "type": movement.type,
                "gtin": movement.gtin or "",
                "sku": movement.sku or "",
                "lot": movement.lot or "",
                "expiry_date": movement.expiry_date,
                "serial": movement.serial,
                "sscc": movement.sscc,
                "qty": movement.qty,
                "weight_g": movement.weight_g,
                "qty_delta": qty_delta,
                "weight_delta_g": weight_delta,
                "customer": movement.customer or "",
                "location": movement.location,
                "to_location": movement.to_location,
                "operator": movement.operator,
                "reverses": movement.reverses,
                "occurred_at": movement.occurred_at,
                "occurred_ms": epoch_ms(movement.occurred_at),
                "received_at": received_at,
                "body_hash": hashlib.blake2b(canonical, digest_size=16).hexdigest(),
            }
        )
    return rows, dead, raw_items


class IngestService:
    def __init__(
        self,
        engine: Engine,
        licence_key: Ed25519PrivateKey | None = None,
        licence_terms: licensing.Terms = licensing.DEFAULT_TERMS,
    ) -> None:
        self.engine = engine
        self.licence_key = licence_key  # None: this service hands out no licences
        self.licence_terms = licence_terms
        self._devices: dict[str, tuple[float, DeviceRef | None]] = {}
        self._lock = threading.Lock()

    def handle(self, topic: str, payload: bytes) -> list[Reply]:
        received_at = utcnow()
        try:
            address, suffix = wire.parse_topic(topic)
        except wire.WireError as exc:
            self._dead(topic, exc.code, exc.message, payload, received_at)
            return []
        if suffix == wire.STATUS and not payload:
            return []  # a cleared retained status
        device = self._device(address.device)
        if device is None:
            self._dead(
                topic, "unknown_device", f"no device {address.device!r}", payload, received_at
            )
            return []
        if device.revoked:
            self._dead(
                topic,
                "revoked_device",
                f"device {device.code} is revoked",
                payload,
                received_at,
                device,
            )
            return []
        if (device.tenant, device.warehouse) != (address.tenant, address.warehouse):
            self._dead(
                topic,
                "topic_mismatch",
                f"device {device.code} belongs to {device.tenant}/{device.warehouse}",
                payload,
                received_at,
                device,
            )
            return []
        try:
            if suffix == wire.UP_TX:
                return self._batch(topic, address, device, payload, received_at)
            if suffix == wire.UP_HELLO:
                return self._hello(topic, address, device, payload, received_at)
            if suffix == wire.STATUS:
                status = wire.decode_status(payload)
                ledger.record_status(self.engine, device, status.state == "online", received_at)
                return []
            if suffix == wire.UP_RECON:
                # Reconciliation manifests are accepted but not yet compared (later issue).
                log.debug("reconciliation manifest from %s ignored", device.code)
                return []
        except wire.WireError as exc:
            self._dead(topic, exc.code, exc.message, payload, received_at, device)
            return []
        self._dead(
            topic, "bad_topic", f"{suffix} is not an uplink topic", payload, received_at, device
        )
        return []

    def _batch(
        self,
        topic: str,
        address: wire.DeviceAddress,
        device: DeviceRef,
        payload: bytes,
        received_at: datetime,
    ) -> list[Reply]:
        batch = wire.decode_batch(payload)
        if batch.device != address.device:
            raise wire.WireError(
                "device_mismatch", f"envelope device {batch.device!r} on {address.device}'s topic"
            )
        rows, dead, raw_items = prepare_items(batch, device, received_at)
        outcome = ledger.commit_batch(
            self.engine,
            device,
            batch.epoch,
            rows,
            dead,
            raw_items=raw_items,
            topic=topic,
            received_at=received_at,
            clock_skew_s=_skew(batch.sent_at, received_at),
        )
        if outcome.conflicts:
            log.error(
                "device %s: %d conflicting repeats quarantined", device.code, outcome.conflicts
            )
        if dead:
            log.warning("device %s: %d items dead-lettered", device.code, len(dead))
        try:
            expected_sync.close_from_ledger(self.engine, device, rows)
        except Exception:  # noqa: BLE001 - filed and safe; a line left open can be cancelled
            log.exception("device %s: closing expected lines failed", device.code)
        ack = wire.Ack(batch.epoch, outcome.acked_through, tuple(outcome.rejected))
        return [Reply(address.topic(wire.DOWN_ACK), wire.encode_ack(ack))]

    def _hello(
        self,
        topic: str,
        address: wire.DeviceAddress,
        device: DeviceRef,
        payload: bytes,
        received_at: datetime,
    ) -> list[Reply]:
        hello = wire.decode_hello(payload)
        if hello.device != address.device:
            raise wire.WireError(
                "device_mismatch", f"hello from {hello.device!r} on {address.device}'s topic"
            )
        acked = ledger.record_hello(self.engine, device, hello.epoch, hello.last_seq, received_at)
        log.info(
            "hello from %s epoch %s: edge at %d, cloud watermark %d",
            device.code,
            hello.epoch,
            hello.last_seq,
            acked,
        )
        ack = wire.Ack(hello.epoch, acked, hello=True)
        replies = [Reply(address.topic(wire.DOWN_ACK), wire.encode_ack(ack))]
        if self.licence_key is not None:
            box = licensing.EdgeBox(
                device.id, device.code, device.tenant_id, device.tenant, device.warehouse
            )
            token = licensing.licence_token(
                self.engine, self.licence_key, box, received_at, terms=self.licence_terms
            )
            if token is not None:
                replies.append(Reply(address.topic(wire.DOWN_CMD), licensing.command(token)))
        try:
            replies += [Reply(t, p) for t, p in expected_sync.on_hello(self.engine, device)]
        except Exception:  # noqa: BLE001 - the ack must go out; the sweep sends the lines later
            log.exception("expected goods for %s could not be sent on hello", device.code)
        return replies

    def licence_sweep(self, now: datetime | None = None) -> list[Reply]:
        """Fresh licences for boxes that are due one (daily, or after their tenant paid)."""
        if self.licence_key is None:
            return []
        now = now or utcnow()
        replies = []
        for box in licensing.boxes_due(self.engine, now):
            token = licensing.licence_token(
                self.engine, self.licence_key, box, now, terms=self.licence_terms, reuse=False
            )
            if token is not None:
                address = wire.DeviceAddress(box.tenant, box.warehouse, box.code)
                replies.append(Reply(address.topic(wire.DOWN_CMD), licensing.command(token)))
        return replies

    def expected_sweep(self) -> list[Reply]:
        """Expected lines created, cancelled or closed since each box was last sent them."""
        return [Reply(t, p) for t, p in expected_sync.sweep(self.engine)]

    def _device(self, code: str) -> DeviceRef | None:
        now = time.monotonic()
        with self._lock:
            cached = self._devices.get(code)
            if cached and now - cached[0] < DEVICE_CACHE_TTL_S:
                return cached[1]
        device = registry.device_ref(self.engine, code)
        with self._lock:
            if len(self._devices) > 100_000:
                self._devices.clear()
            self._devices[code] = (now, device)
        return device

    def _dead(
        self,
        topic: str,
        reason: str,
        detail: str,
        payload: bytes,
        received_at: datetime,
        device: DeviceRef | None = None,
    ) -> None:
        log.warning("dead letter on %s: %s (%s)", topic[:200], reason, detail[:200])
        ledger.dead_letter(
            self.engine,
            topic=topic,
            reason=reason,
            detail=detail,
            payload=payload,
            received_at=received_at,
            device=device,
        )


def _skew(sent_at: str | None, received_at: datetime) -> float | None:
    """Seconds the edge clock is behind the cloud (negative: ahead). Recorded, never rejected."""
    if sent_at is None:
        return None
    try:
        return round((received_at - parse_ts(sent_at)).total_seconds(), 3)
    except TimestampError:
        return None
