"""Undo of a movement by compensating movements. Pure: no SQL, no Flask.

The ledger is append-only (the cloud has already been told, or will be), so an undo never
deletes: it records what puts the stock back, each compensating movement naming the
original in ``reverses``.

- receive → adjust of minus the pieces and weight, where they were received;
- ship → adjust of plus the pieces and weight, back where they left (the dock if unnamed);
- adjust → the opposite adjust;
- putaway, transfer, pick from a named bin → transfer back from where they went;
- putaway from the dock → two adjusts in one commit: out of the bin, back onto the dock
  (no movement type moves goods *to* the dock, and the cloud's totals are unchanged);
- a pick that drew from several bins and a count cannot be undone: nobody knows which bins
  to put back, or what the count replaced.

The request ids are derived from the original's id, so a second tap on undo records nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from cangyun.movement import STAGING, Movement
from edge.stock import StockError


class CannotUndo(StockError):
    """This movement cannot be undone: refused like any movement the stock cannot take."""


def compensation(
    original: dict[str, Any], *, now: datetime, operator: str | None
) -> list[tuple[Movement, str]]:
    """The movements (with their request ids) that undo ``original`` (a stored movement)."""
    if original.get("reverses"):
        raise CannotUndo("cannot_undo", "this movement is itself an undo", reason="is_undo")
    kind = original["type"]
    qty = int(original["qty"])
    weight_g = _grams(original.get("weight_kg"))
    key = f"undo:{original['id']}"
    common = {
        "occurred_at": now,
        "gtin": original.get("gtin"),
        "sku": original.get("sku"),
        "lot": original.get("lot"),
        "expiry_date": _date(original.get("expiry_date")),
        "serial": original.get("serial"),
        "sscc": original.get("sscc"),
        "customer": original.get("customer"),
        "operator": operator,
        "reverses": original["id"],
    }
    source, target = original.get("location"), original.get("to_location")

    def adjust(pieces: int, grams: int | None, where: str | None) -> Movement:
        return Movement(type="adjust", qty=pieces, weight_g=grams, location=where, **common)

    if kind == "receive":
        return [(adjust(-qty, _neg(weight_g), source), key)]
    if kind == "ship":
        return [(adjust(qty, weight_g, source), key)]
    if kind == "adjust":
        return [(adjust(-qty, _neg(weight_g), source), key)]
    if kind in ("putaway", "transfer", "pick"):
        destination = target or (STAGING if kind == "pick" else None)
        if destination is None:  # not produced by parse_movement; refuse rather than guess
            raise CannotUndo(
                "cannot_undo", "the movement names no destination", reason="no_destination"
            )
        if source:
            back = Movement(
                type="transfer",
                qty=qty,
                weight_g=weight_g,
                location=destination,
                to_location=source,
                **common,
            )
            return [(back, key)]
        if kind == "putaway":
            return [
                (adjust(-qty, _neg(weight_g), destination), key),
                (adjust(qty, weight_g, None), f"{key}:dock"),
            ]
        raise CannotUndo(
            "cannot_undo",
            "this pick drew from several bins; move the goods back with a transfer",
            reason="several_bins",
        )
    raise CannotUndo(
        "cannot_undo",
        f"a {kind} cannot be undone; count the bin again instead",
        reason="not_undoable",
        type=kind,
    )


def _grams(weight_kg: Any) -> int | None:
    return None if weight_kg is None else round(float(weight_kg) * 1000)


def _neg(grams: int | None) -> int | None:
    return None if grams is None else -grams


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None
