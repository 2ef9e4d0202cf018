"""What a movement does to the edge's bin-level stock. Pure functions, no SQL.

Stock is kept per (cargo owner, goods, lot, location). Location '' means "not in a bin yet"
(on the dock after receipt). Rules, documented in docs/movements.md:

- receive adds at ``location`` ('' when absent);
- putaway moves from ``location`` ('' when absent) to ``to_location``;
- transfer moves from ``location`` to ``to_location``;
- pick moves from ``location`` to ``to_location`` (STAGING when absent);
- ship removes from ``location``;
- adjust adds (qty > 0) or removes (qty < 0) at ``location``;
- count sets the pieces at ``location`` ('' when absent) to ``qty``.

When an outbound-like movement gives no source location, it draws across bins in a fixed
order (STAGING first for ship, bins by name, the dock last for pick). Nothing may take more
pieces than a bin holds: that answers 409 and records nothing. Weight removed without an
explicit weight is proportional to the pieces taken, so emptying a bin empties its weight.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cangyun.errors import Conflict
from cangyun.movement import STAGING, Movement

DOCK = ""


class StockError(Conflict):
    """A movement the stock cannot support (409); ``code`` is the API error code,
    ``details`` the facts a client words its own message from."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, code=code, details=details)


@dataclass(frozen=True, slots=True)
class BinStock:
    location: str
    qty: int
    weight_g: int
    expiry_date: str | None = None


@dataclass(frozen=True, slots=True)
class BinChange:
    location: str
    qty: int
    weight_g: int
    expiry_date: str | None = None


def resolve_customer(movement: Movement, holders: list[str]) -> Movement:
    """Fill a missing cargo owner from who holds the goods, when that is unambiguous.

    A receipt without owner stays ownerless; anything else takes the single holder, and
    refuses when several owners hold the same goods and lot (a 3PL must never mix them).
    """
    if movement.customer is not None or movement.type == "receive":
        return movement
    owners = sorted(set(holders))
    if len(owners) > 1:
        raise StockError(
            "ambiguous_customer",
            f"several cargo owners hold these goods ({', '.join(o or '-' for o in owners)});"
            " give customer",
            owners=[o or "" for o in owners],
        )
    return replace(movement, customer=owners[0] if owners and owners[0] else None)


def plan(movement: Movement, bins: list[BinStock]) -> tuple[Movement, list[BinChange]]:
    """The bin changes ``movement`` causes given current ``bins`` of the same goods and lot.

    Returns the movement completed with what the edge resolved (removed weight, count
    deltas) and the changes to apply; raises ``StockError`` when stock does not allow it.
    """
    by_location = {b.location: b for b in bins}
    kind = movement.type
    expiry = movement.expiry_date.isoformat() if movement.expiry_date else None

    if kind == "receive":
        where = movement.location or DOCK
        return movement, [BinChange(where, movement.qty, movement.weight_g or 0, expiry)]

    if kind == "adjust" and movement.qty > 0:
        where = movement.location or DOCK
        return movement, [BinChange(where, movement.qty, movement.weight_g or 0, expiry)]

    if kind == "count":
        where = movement.location or DOCK
        current = by_location.get(where, BinStock(where, 0, 0))
        if movement.weight_g is not None:
            counted_weight = movement.weight_g
        elif current.qty > 0:
            counted_weight = round(current.weight_g * movement.qty / current.qty)
        else:
            counted_weight = current.weight_g
        qty_delta = movement.qty - current.qty
        weight_delta = counted_weight - current.weight_g
        resolved = replace(movement, qty_delta=qty_delta, weight_delta_g=weight_delta)
        if qty_delta == 0 and weight_delta == 0:
            return resolved, []
        return resolved, [BinChange(where, qty_delta, weight_delta, current.expiry_date or expiry)]

    # Everything else takes pieces out of one or more bins.
    pieces = abs(movement.qty)
    if kind == "putaway":
        sources = [movement.location or DOCK]
    elif movement.location is not None:
        sources = [movement.location]
    else:
        sources = _draw_order(kind, by_location)
    takes = _take(pieces, [by_location.get(s, BinStock(s, 0, 0)) for s in sources])
    weights = _weights(takes, movement.weight_g)

    changes = [
        BinChange(b.location, -n, -w, b.expiry_date)
        for (b, n), w in zip(takes, weights, strict=True)
    ]
    removed_weight = sum(weights)
    destination = _destination(movement)
    if destination is not None:
        moved_expiry = next((b.expiry_date for b, _ in takes if b.expiry_date), expiry)
        changes.append(BinChange(destination, pieces, removed_weight, moved_expiry))
    if kind == "adjust":
        resolved = replace(movement, weight_g=-removed_weight)
    else:
        resolved = replace(movement, weight_g=removed_weight)
    return resolved, changes


def _destination(movement: Movement) -> str | None:
    if movement.type in ("putaway", "transfer"):
        return movement.to_location
    if movement.type == "pick":
        return movement.to_location or STAGING
    return None


def _draw_order(kind: str, by_location: dict[str, BinStock]) -> list[str]:
    held = sorted(loc for loc, b in by_location.items() if b.qty > 0)
    if kind == "ship":
        first = [loc for loc in (STAGING, DOCK) if loc in held]
        return first + [loc for loc in held if loc not in first]
    if kind == "pick":
        # Picking draws from storage bins; goods already staged or still on the dock come last.
        bins = [loc for loc in held if loc not in (STAGING, DOCK)]
        return bins + [loc for loc in (DOCK, STAGING) if loc in held]
    return [DOCK] + [loc for loc in held if loc != DOCK]


def _take(pieces: int, sources: list[BinStock]) -> list[tuple[BinStock, int]]:
    takes: list[tuple[BinStock, int]] = []
    remaining = pieces
    for source in sources:
        if remaining == 0:
            break
        n = min(source.qty, remaining)
        if n > 0:
            takes.append((source, n))
            remaining -= n
    if remaining:
        available = pieces - remaining
        where = sources[0].location if len(sources) == 1 else "any bin"
        raise StockError(
            "insufficient_stock",
            f"only {available} of {pieces} pieces on hand at {where or 'the dock'}",
            available=available,
            requested=pieces,
            # "": the dock (no bin); "*": summed over every bin holding the goods
            location=sources[0].location if len(sources) == 1 else "*",
        )
    return takes


def _weights(takes: list[tuple[BinStock, int]], explicit_g: int | None) -> list[int]:
    """Weight removed from each bin: the given total split by pieces, or proportional."""
    if explicit_g is not None:
        total = abs(explicit_g)
        pieces = sum(n for _, n in takes)
        shares = [total * n // pieces for _, n in takes]
        shares[-1] += total - sum(shares)
        return shares
    weights = []
    for source, n in takes:
        if n == source.qty:
            weights.append(source.weight_g)  # emptying a bin takes all its weight
        else:
            weights.append(round(source.weight_g * n / source.qty))
    return weights
