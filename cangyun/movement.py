"""Stock movements: the one business record the edge writes and the cloud ledger keeps.

Pure validation shared by the edge HTTP API (strict: unknown fields are refused so an
integrator's typo is caught) and cloud ingest (lenient: a newer edge may add fields).
Weights are kept as integer grams so sums of stock weight are exact.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from cangyun.errors import Invalid
from cangyun.identifiers import IdentifierError, normalize_gtin, validate_sscc
from cangyun.timeutil import TimestampError, format_ts, parse_date, parse_ts

MOVEMENT_TYPES = ("receive", "putaway", "pick", "ship", "adjust", "transfer", "count")
INBOUND_TYPES = frozenset({"receive"})
OUTBOUND_TYPES = frozenset({"ship"})
# Movements that only move goods between bins: the warehouse total does not change.
INTERNAL_TYPES = frozenset({"putaway", "transfer", "pick"})

MAX_QTY = 1_000_000  # pieces in one movement; more is a typo (or 10^9 from a stuck key)
MAX_WEIGHT_KG = 100_000  # 100 t in one movement, more than any truck carries
MAX_TEXT = 64
MAX_LOT = 20  # GS1 AI (10) and (21) allow at most 20 characters
STAGING = "STAGING"  # where picked goods wait for shipping when no destination is given

_API_FIELDS = frozenset(
    {
        "type",
        "gtin",
        "sku",
        "qty",
        "lot",
        "expiry_date",
        "weight_kg",
        "customer",
        "location",
        "to_location",
        "sscc",
        "serial",
        "occurred_at",
    }
)
# Fields only the edge itself sets; they arrive from the wire, never from an HTTP client.
_EDGE_FIELDS = frozenset({"operator", "qty_delta", "weight_delta_kg", "reverses"})


class MovementError(Invalid):
    """A movement that cannot be recorded; ``code`` is stable, ``field`` names the culprit."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, code=code, field=field)


# A value: code derives changed copies with dataclasses.replace and never assigns fields.
# Not frozen because a frozen dataclass's __init__ costs three times as much, and cloud
# ingest builds one per movement.
@dataclass(slots=True)
class Movement:
    type: str
    qty: int
    occurred_at: datetime
    gtin: str | None = None
    sku: str | None = None
    lot: str | None = None
    expiry_date: date | None = None
    serial: str | None = None
    sscc: str | None = None
    weight_g: int | None = None
    customer: str | None = None
    location: str | None = None
    to_location: str | None = None
    operator: str | None = None
    # Set by the edge for counts (counted minus book stock); None elsewhere.
    qty_delta: int | None = None
    weight_delta_g: int | None = None
    # id of the movement this one compensates (undo), if any.
    reverses: str | None = None

    @property
    def item_key(self) -> tuple[str, str]:
        """(gtin, sku) with '' for a missing part: what identifies the goods in stock tables."""
        return (self.gtin or "", self.sku or "")


def warehouse_delta(movement: Movement) -> tuple[int, int]:
    """Change of the warehouse's stock (pieces, grams) that ``movement`` causes."""
    kind = movement.type
    if kind == "receive":
        return movement.qty, movement.weight_g or 0
    if kind == "ship":
        return -movement.qty, -(movement.weight_g or 0)
    if kind == "adjust":
        return movement.qty, movement.weight_g or 0
    if kind == "count":
        return movement.qty_delta or 0, movement.weight_delta_g or 0
    return 0, 0


def parse_movement(data: Mapping[str, Any], *, source: Literal["api", "wire"]) -> Movement:
    """Validate a movement from an HTTP client (``api``) or from an edge (``wire``)."""
    if type(data) is not dict and not isinstance(data, Mapping):  # the ABC check is slow
        raise MovementError("invalid_body", "a movement must be a JSON object")
    if source == "api":
        unknown = set(data) - _API_FIELDS
        if unknown:
            name = sorted(unknown)[0]
            raise MovementError("unknown_field", f"unknown field {name!r}", name)

    kind = data.get("type")
    if kind not in MOVEMENT_TYPES:
        raise MovementError(
            "unknown_type",
            f"type must be one of {', '.join(MOVEMENT_TYPES)}; got {kind!r}",
            "type",
        )

    gtin = _optional_text(data, "gtin", MAX_TEXT)
    if gtin is not None:
        try:
            gtin = _gtin14(gtin)
        except IdentifierError as exc:
            raise MovementError("invalid_gtin", str(exc), "gtin") from exc
    sku = _optional_text(data, "sku", MAX_TEXT)
    if gtin is None and sku is None:
        raise MovementError("missing_item", "give the goods as gtin or sku", "gtin")

    qty = _qty(data.get("qty"), kind)
    weight_g = _weight_g(data.get("weight_kg"), "weight_kg", signed=kind == "adjust")

    sscc = _optional_text(data, "sscc", MAX_TEXT)
    if sscc is not None:
        try:
            sscc = validate_sscc(sscc)
        except IdentifierError as exc:
            raise MovementError("invalid_sscc", str(exc), "sscc") from exc

    expiry = data.get("expiry_date")
    if expiry is not None:
        try:
            expiry = parse_date(expiry)
        except TimestampError as exc:
            raise MovementError("invalid_date", str(exc), "expiry_date") from exc

    occurred = data.get("occurred_at")
    if occurred is None:
        raise MovementError("missing_field", "occurred_at is required", "occurred_at")
    try:
        occurred = parse_ts(occurred)
    except TimestampError as exc:
        raise MovementError("invalid_timestamp", str(exc), "occurred_at") from exc

    location = _optional_text(data, "location", MAX_TEXT)
    to_location = _optional_text(data, "to_location", MAX_TEXT)
    _check_locations(kind, location, to_location)

    qty_delta = weight_delta_g = None
    if source == "wire":
        if kind == "count":
            qty_delta = _int(data.get("qty_delta"), "qty_delta", -MAX_QTY, MAX_QTY)
            weight_delta_g = _weight_g(data.get("weight_delta_kg"), "weight_delta_kg", signed=True)
            if weight_delta_g is None:
                weight_delta_g = 0
        operator = _optional_text(data, "operator", MAX_TEXT)
        reverses = _optional_text(data, "reverses", MAX_TEXT)
    else:
        operator = reverses = None

    return Movement(
        type=kind,
        qty=qty,
        occurred_at=occurred,
        gtin=gtin,
        sku=sku,
        lot=_optional_text(data, "lot", MAX_LOT),
        expiry_date=expiry,
        serial=_optional_text(data, "serial", MAX_LOT),
        sscc=sscc,
        weight_g=weight_g,
        customer=_optional_text(data, "customer", MAX_TEXT),
        location=location,
        to_location=to_location,
        operator=operator,
        qty_delta=qty_delta,
        weight_delta_g=weight_delta_g,
        reverses=reverses,
    )


def movement_body(movement: Movement) -> dict[str, Any]:
    """The JSON form of a movement (without ``type``/``occurred_at``, which the envelope item
    carries). Absent values are left out to keep batches small."""
    body: dict[str, Any] = {"qty": movement.qty}
    for name in ("gtin", "sku", "lot", "serial", "sscc", "customer", "location", "to_location"):
        value = getattr(movement, name)
        if value is not None:
            body[name] = value
    if movement.expiry_date is not None:
        body["expiry_date"] = movement.expiry_date.isoformat()
    if movement.weight_g is not None:
        body["weight_kg"] = grams_to_kg(movement.weight_g)
    if movement.operator is not None:
        body["operator"] = movement.operator
    if movement.reverses is not None:
        body["reverses"] = movement.reverses
    if movement.qty_delta is not None:
        body["qty_delta"] = movement.qty_delta
        body["weight_delta_kg"] = grams_to_kg(movement.weight_delta_g or 0)
    return body


def movement_json(movement: Movement) -> dict[str, Any]:
    """Flat JSON form for APIs: the body plus type and occurred_at."""
    return {"type": movement.type, "occurred_at": format_ts(movement.occurred_at)} | movement_body(
        movement
    )


def grams_to_kg(grams: int) -> float:
    return grams / 1000


# --- field checks ------------------------------------------------------------------------

# A warehouse handles the same goods all day: remembering valid GTINs saves the check-digit
# sum on nearly every movement (errors are not cached, so a bad GTIN is re-checked).
_gtin14 = functools.lru_cache(maxsize=65_536)(normalize_gtin)


def _optional_text(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    return None if value is None else _text(value, name, limit)


def _text(value: Any, name: str, limit: int) -> str | None:
    if not isinstance(value, str):
        raise MovementError("invalid_field", f"{name} must be a string", name)
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise MovementError("invalid_field", f"{name} is longer than {limit} characters", name)
    if not value.isprintable():
        raise MovementError("invalid_field", f"{name} contains control characters", name)
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MovementError("invalid_quantity", f"{name} must be a whole number", name)
    if isinstance(value, float):
        if not value.is_integer():
            raise MovementError("invalid_quantity", f"{name} must be a whole number", name)
        value = int(value)
    if not low <= value <= high:
        raise MovementError("invalid_quantity", f"{name} must be between {low} and {high}", name)
    return value


def _qty(value: Any, kind: str) -> int:
    if value is None:
        raise MovementError("missing_field", "qty is required", "qty")
    if kind == "adjust":
        qty = _int(value, "qty", -MAX_QTY, MAX_QTY)
        if qty == 0:
            raise MovementError(
                "invalid_quantity", "an adjustment of 0 pieces changes nothing", "qty"
            )
        return qty
    if kind == "count":
        return _int(value, "qty", 0, MAX_QTY)
    return _int(value, "qty", 1, MAX_QTY)


def _weight_g(value: Any, name: str, *, signed: bool) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MovementError("invalid_weight", f"{name} must be a number of kilograms", name)
    low = -MAX_WEIGHT_KG if signed else 0
    if not low <= value <= MAX_WEIGHT_KG:
        raise MovementError(
            "invalid_weight", f"{name} must be between {low} and {MAX_WEIGHT_KG} kg", name
        )
    return round(value * 1000)


def _check_locations(kind: str, location: str | None, to_location: str | None) -> None:
    if kind == "transfer":
        if location is None or to_location is None:
            raise MovementError(
                "missing_field", "a transfer needs location and to_location", "to_location"
            )
    elif kind == "putaway":
        if to_location is None:
            raise MovementError("missing_field", "a putaway needs to_location", "to_location")
    elif kind != "pick" and to_location is not None:
        raise MovementError(
            "invalid_field",
            "to_location only applies to putaway, transfer and pick",
            "to_location",
        )
    if to_location is not None and location == to_location:
        raise MovementError("invalid_field", "to_location must differ from location", "to_location")


# --- the documented shape ------------------------------------------------------------------


def movement_schema() -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 embeds it) of a movement an HTTP client sends.

    Built from this module's own limits and field set, so the document states the rules
    ``parse_movement(..., source="api")`` applies; a JSON null counts as an absent value.
    """

    def text(limit: int, description: str = "") -> dict[str, Any]:
        schema: dict[str, Any] = {"type": ["string", "null"], "maxLength": limit}
        return schema | ({"description": description} if description else {})

    qty = f"whole pieces, 1..{MAX_QTY}; adjust: signed, not 0; count: the pieces counted"
    properties: dict[str, Any] = {
        "type": {"type": "string", "enum": list(MOVEMENT_TYPES)},
        "gtin": text(MAX_TEXT, "GTIN-8/12/13/14 with a valid check digit; give gtin or sku"),
        "sku": text(MAX_TEXT, "the goods' own code; give gtin or sku"),
        "qty": {"type": "integer", "minimum": -MAX_QTY, "maximum": MAX_QTY, "description": qty},
        "lot": text(MAX_LOT, "lot / batch"),
        "expiry_date": {"type": ["string", "null"], "format": "date"},
        "weight_kg": {
            "type": ["number", "null"],
            "minimum": -MAX_WEIGHT_KG,
            "maximum": MAX_WEIGHT_KG,
            "description": "total weight of the movement in kg; signed for adjust only",
        },
        "customer": text(MAX_TEXT, "cargo owner (货主) code"),
        "location": text(MAX_TEXT, "the bin the goods leave (transfer: required)"),
        "to_location": text(
            MAX_TEXT,
            f"the bin they go to: putaway and transfer (required), pick (default {STAGING})",
        ),
        "sscc": text(MAX_TEXT, "18-digit SSCC of the pallet, with its check digit"),
        "serial": text(MAX_LOT),
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset; default: when the edge records it",
        },
    }
    assert set(properties) == _API_FIELDS, "the schema names every field parse_movement takes"

    def when(kinds: list[str], **rules: dict[str, Any]) -> dict[str, Any]:
        return {"if": {"properties": {"type": {"enum": kinds}}}, "then": {"properties": rules}}

    unsigned = [kind for kind in MOVEMENT_TYPES if kind not in ("adjust", "count")]
    return {
        "type": "object",
        "required": ["type", "qty"],
        "additionalProperties": False,
        "properties": properties,
        "anyOf": [{"required": ["gtin"]}, {"required": ["sku"]}],
        "allOf": [
            when(["adjust"], qty={"not": {"const": 0}}),
            when(["count"], qty={"minimum": 0}, weight_kg={"minimum": 0}),
            when(unsigned, qty={"minimum": 1}, weight_kg={"minimum": 0}),
        ],
    }
