"""Expected goods travel to the edge boxes of their warehouse as ``down/cmd`` ``expected``
(``wire.ExpectedUpdate``, encoded by ``wire.encode_expected``).

- **Hello**: every box that says hello is sent the full set of its warehouse's open lines,
  in parts of ``CHUNK_LINES`` lines by cloud id. Each part says which id range it covers
  (``after_id``, ``through_id``; the last part is open-ended), so each part stands on its
  own: the box takes the listed lines and drops its open cloud lines of that range that are
  missing (cancelled, or done elsewhere, while it was away). A part lost on the way heals on
  the next hello.
- **Sweep**: the ingest worker asks every ``[cloud] expected_sweep_s`` which boxes are behind
  their warehouse's change stamp and sends them the lines that changed, whatever their
  status, so a new or cancelled line reaches connected boxes within seconds. The stamp sent
  is recorded per box (``expected_deliveries``); with several workers only the one that
  moves it sends.
- **Ledger**: a receipt or shipment of an SSCC filed from any box of the warehouse closes its
  open line (``received``/``shipped``); the next sweep tells the boxes.

A line only ever goes from ``open`` to ``cancelled``, ``received`` or ``shipped``, and the box
never reopens one, so commands may arrive twice or out of order (two workers, a hello racing
a sweep) and the box still ends with the cloud's state.

Command data: ``{"warehouse", "version", "full", "after_id"?, "through_id"?, "lines": [...]}``,
each line a ``wire.CloudLine``; the box reads it back with ``wire.decode_expected``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.engine import Engine

from cangyun import wire
from cloud_api.expected import store as expected
from cloud_api.sites.registry import DeviceRef

log = logging.getLogger(__name__)

CHUNK_LINES = 500  # lines per command: about 150 kB, far under the broker's message limit
SWEEP_BOXES = 500  # boxes looked at per sweep; the rest wait for the next one

Outgoing = tuple[str, bytes]  # (topic, payload)


def full_set(address: wire.DeviceAddress, version: int, lines: list[wire.CloudLine]) -> list[bytes]:
    """The open lines (in id order) as self-contained parts, at least one even when empty."""
    parts = []
    after = 0
    for start in range(0, max(len(lines), 1), CHUNK_LINES):
        chunk = tuple(lines[start : start + CHUNK_LINES])
        last = start + CHUNK_LINES >= len(lines)
        through = None if last else chunk[-1].id
        update = wire.ExpectedUpdate(address.warehouse, version, (after, through), chunk)
        parts.append(_command(update, len(parts)))
        if through is not None:
            after = through
    return parts


def changes(address: wire.DeviceAddress, version: int, lines: list[wire.CloudLine]) -> list[bytes]:
    """Changed lines (any status) in parts; each part applies on its own."""
    return [
        _command(
            wire.ExpectedUpdate(
                address.warehouse, version, None, tuple(lines[start : start + CHUNK_LINES])
            ),
            start // CHUNK_LINES,
        )
        for start in range(0, len(lines), CHUNK_LINES)
    ]


def on_hello(engine: Engine, device: DeviceRef) -> list[Outgoing]:
    """The full set for a box that (re)connected; nothing where expected goods never were."""
    address = wire.DeviceAddress(device.tenant, device.warehouse, device.code)
    version = expected.warehouse_stamp(engine, device.warehouse_id)
    if version == 0:
        return []
    lines = expected.open_lines(engine, device.warehouse_id)
    payloads = full_set(address, version, lines)
    expected.record_sent(engine, device.id, device.tenant_id, version)
    log.info("expected goods for %s: full set v%d, %d open lines", device.code, version, len(lines))
    return [(address.topic(wire.DOWN_CMD), p) for p in payloads]


def sweep(engine: Engine) -> list[Outgoing]:
    """What changed since each box's last stamp; the full set for a box never sent any."""
    outgoing: list[Outgoing] = []
    for box in expected.boxes_behind(engine, SWEEP_BOXES):
        address = wire.DeviceAddress(box.tenant, box.warehouse, box.code)
        if box.sent is None:
            lines = expected.open_lines(engine, box.warehouse_id)
            payloads = full_set(address, box.latest, lines)
        else:
            lines = expected.changed_lines(engine, box.warehouse_id, box.sent, box.latest)
            payloads = changes(address, box.latest, lines)
        # Built first, claimed second: a worker that loses the claim sends nothing.
        if expected.record_sent(engine, box.device_id, box.tenant_id, box.latest):
            outgoing += [(address.topic(wire.DOWN_CMD), p) for p in payloads]
            log.info(
                "expected goods for %s: v%s -> v%d, %d lines",
                box.code,
                box.sent,
                box.latest,
                len(lines),
            )
    return outgoing


def close_from_ledger(engine: Engine, device: DeviceRef, rows: list[dict[str, Any]]) -> int:
    """Lines whose pallet these ledger rows (just filed from ``device``) received or shipped."""
    closed = expected.close_from_ledger(engine, device.tenant_id, device.warehouse_id, rows)
    if closed:
        log.info("expected goods: %d lines of %s closed by the ledger", closed, device.warehouse)
    return closed


def _command(update: wire.ExpectedUpdate, part: int) -> bytes:
    command_id = f"expected-{update.version}-{part}-{uuid.uuid4().hex[:8]}"
    return wire.encode_expected(update, command_id)


__all__ = ["CHUNK_LINES", "changes", "close_from_ledger", "full_set", "on_hello", "sweep"]
