"""What a settled gate event means for stock: a receipt, a shipment, or a pallet held for an
operator. No SQL here: the gate store claims expected lines and keeps holds and alerts, the
edge store records movements.

Exactly once: the movement of an event is recorded with the idempotency key
``gate-event:{id}`` (an accepted hold uses ``gate-hold:{id}``), and an event claims its
expected line before the movement is recorded. If the box dies in between, the event is
still open on restart, claims the same line again and gets the same movement back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cangyun.movement import MovementError, grams_to_kg, parse_movement
from cangyun.timeutil import format_ts
from edge.gates.model import Acceptance, GateInputError
from edge.gates.store import GateStore, HoldResolved
from edge.licence import LicenceRefused
from edge.stock import StockError
from edge.store import EdgeStore, StorageFull

log = logging.getLogger(__name__)

MOVEMENT_OF = {"in": "receive", "out": "ship"}
DONE_OUTCOME = {"in": "received", "out": "shipped"}
UNEXPECTED_ALERT = {"in": "unexpected_inbound", "out": "unexpected_outbound"}
# Holds for these reasons raise an alert of the same name; any other refusal is a gate_hold.
ALERTED_REFUSALS = {
    "insufficient_stock",
    "storage_full",
    "quota_exhausted",
    "licence_expired",
    "licence_invalid",
}

# Raises LicenceRefused for a movement type the box's licence does not allow now.
Admit = Callable[[str], None]

# What recording a gate's movement may refuse. A settled event that meets one is held, not
# lost; an operator's accept answers it as the movement API does (403, 422, 409, 507).
REFUSALS = (LicenceRefused, MovementError, StockError, StorageFull)


def settle_event(
    gates: GateStore, edge: EdgeStore, event_id: int, admit: Admit | None = None
) -> dict[str, Any] | None:
    """Decide and record what event ``event_id`` means; a repeat call changes nothing.

    A receipt the licence refuses (quota used up, licence lapsed) is held, not dropped: the
    pallet can be accepted once the licence allows it again."""
    event = gates.get_event(event_id)
    if event is None or event["outcome"] != "open":
        return event
    if event["kind"] == "plate" or (event["kind"] == "container" and not event["gtin"]):
        # Containers and trucks are logged: expected goods are pallets (SSCC or GTIN), not
        # boxes of steel or the vehicles that bring them.
        gates.finish_event(event_id, "logged")
        return gates.get_event(event_id)
    match = gates.match_event(event_id)
    identity = event["identity"]
    if match.line is None:
        if match.duplicate_of is not None:
            done = match.duplicate_of
            gates.finish_event(
                event_id,
                "duplicate",
                reason=f"SSCC {event['sscc']} was {done['status']} already (event "
                f"{done['event_id']}, expected line {done['id']})",
            )
        else:
            direction = match.direction
            gates.hold_event(
                event_id,
                direction=direction,
                reason="unexpected",
                message=f"{identity} passed gate {event['gate']} ({_direction_text(direction)})"
                " but is not expected there",
                alert=UNEXPECTED_ALERT.get(direction, "unexpected_goods"),
            )
        return gates.get_event(event_id)

    line = match.line
    direction = match.direction
    body = {
        "type": MOVEMENT_OF[direction],
        "gtin": line["gtin"] or event["gtin"],
        "lot": line["lot"] or event["lot"],
        "qty": line["qty"],
        "weight_kg": line["weight_kg"],
        "customer": line["customer"],
        "sscc": event["sscc"] or line["sscc"],
        "occurred_at": event["first_seen"],
    }
    try:
        recorded = _record(edge, body, request_id=f"gate-event:{event_id}", admit=admit)
    except REFUSALS as exc:
        gates.hold_event(
            event_id,
            direction=direction,
            reason=exc.code,
            message=f"{identity} at gate {event['gate']}: expected line {line['id']}"
            f" could not be {DONE_OUTCOME[direction]}: {exc.message}",
            alert=exc.code if exc.code in ALERTED_REFUSALS else "gate_hold",
        )
        return gates.get_event(event_id)
    gates.finish_event(event_id, DONE_OUTCOME[direction], movement_id=recorded)
    log.info("gate %s: %s %s (event %s)", event["gate"], MOVEMENT_OF[direction], identity, event_id)
    return gates.get_event(event_id)


def accept_hold(
    gates: GateStore,
    edge: EdgeStore,
    gate: str,
    hold_id: int,
    acceptance: Acceptance,
    admit: Admit | None = None,
) -> dict[str, Any]:
    """Record the receipt or shipment of a held pallet with what the operator confirmed."""
    hold = gates.get_hold(gate, hold_id)
    if hold["status"] == "rejected":
        raise HoldResolved(f"held pallet {hold_id} was rejected already")
    if hold["status"] == "accepted":
        return hold
    direction = acceptance.direction or hold["direction"]
    if direction not in MOVEMENT_OF:
        raise GateInputError(
            "missing_field", "say whether this pallet came in or went out: direction", "direction"
        )
    event = hold["event"]
    line = hold["expected"] or {}
    qty = acceptance.qty or line.get("qty")
    if qty is None:
        raise GateInputError("missing_field", "give the pieces on this pallet: qty", "qty")
    gtin = acceptance.gtin or line.get("gtin") or event["gtin"]
    if gtin is None:
        raise GateInputError(
            "missing_item", "no GTIN was read off this pallet; give it: gtin", "gtin"
        )
    weight_g = acceptance.weight_g
    body = {
        "type": MOVEMENT_OF[direction],
        "gtin": gtin,
        "lot": acceptance.lot or line.get("lot") or event["lot"],
        "qty": qty,
        "weight_kg": grams_to_kg(weight_g) if weight_g is not None else line.get("weight_kg"),
        "customer": acceptance.customer or line.get("customer"),
        "sscc": event["sscc"],
        "occurred_at": event["first_seen"] or format_ts(datetime.now(UTC)),
    }
    movement_id = _record(edge, body, request_id=f"gate-hold:{hold_id}", admit=admit)
    gates.resolve_hold(gate, hold_id, "accepted", movement_id=movement_id, note=acceptance.note)
    return gates.get_hold(gate, hold_id)


def reject_hold(gates: GateStore, gate: str, hold_id: int, note: str | None) -> dict[str, Any]:
    gates.resolve_hold(gate, hold_id, "rejected", movement_id=None, note=note)
    return gates.get_hold(gate, hold_id)


def _record(edge: EdgeStore, body: dict[str, Any], *, request_id: str, admit: Admit | None) -> str:
    data = {k: v for k, v in body.items() if v is not None}
    movement = parse_movement(data, source="api")
    # A movement recorded before the licence lapsed is answered as before, like the API.
    if admit is not None and not edge.movement_id_for_request(request_id):
        admit(movement.type)
    return edge.record_movement(movement, request_id=request_id).id


def _direction_text(direction: str) -> str:
    return {"in": "inbound", "out": "outbound"}.get(direction, "either direction")


__all__ = ["REFUSALS", "accept_hold", "reject_hold", "settle_event"]
