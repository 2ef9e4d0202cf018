"""Expected goods (预到货): what one expected pallet is, and the one grammar that checks it.

An expected line is an ASN line (inbound) or a shipment line (outbound), one per pallet,
named by SSCC or by GTIN (and lot). Lines are entered on an edge box's gate or ordered
through the cloud API, and the cloud sends its lines down to the warehouse's boxes
(``cangyun.wire.ExpectedUpdate``). Every one of those doors checks a line with the functions
here, so a line the cloud accepts is one every box accepts, and a box checks the downlink
with the rules the cloud used. Pure: no framework. Refusals are ``cangyun.errors.Invalid``
with a stable ``code`` and the culprit ``field``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cangyun.errors import Invalid
from cangyun.identifiers import IdentifierError, normalize_gtin, validate_sscc
from cangyun.movement import MAX_LOT, MAX_QTY, MAX_TEXT, MAX_WEIGHT_KG

DIRECTIONS = ("in", "out")  # a line's direction; a gate may also serve "both"
# A line is open until received or shipped (the cloud ledger says so) or cancelled.
STATUSES = ("open", "cancelled", "received", "shipped")
LINE_FIELDS = frozenset(
    {"direction", "sscc", "gtin", "lot", "qty", "weight_kg", "customer", "reference"}
)
ORDERED_FIELDS = LINE_FIELDS | {"gate"}
# Gate codes: a path segment of the edge API (/api/v1/gates/<code>), so short and plain.
GATE_CODE_MAX = 32
GATE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
RESERVED_GATE_CODES = frozenset({"alerts", "status"})  # other path segments of /gates/...
MAX_REFERENCE = MAX_TEXT  # customer and reference (ASN or shipment number)


@dataclass(frozen=True)
class ExpectedLine:
    """One expected pallet: an ASN line (``in``) or a shipment line (``out``)."""

    direction: str
    qty: int
    sscc: str | None = None
    gtin: str | None = None
    lot: str | None = None
    weight_g: int | None = None
    customer: str | None = None
    reference: str | None = None


def check_gate_code(value: Any, field: str = "gate") -> str:
    """A gate (or camera) code, refusing the words the edge API's paths use."""
    if not isinstance(value, str) or not GATE_CODE.fullmatch(value):
        raise Invalid(
            f"{field} must be 1-{GATE_CODE_MAX} letters, digits, '.', '_' or '-', got {value!r}",
            code="invalid_code",
            field=field,
        )
    if value.lower() in RESERVED_GATE_CODES:
        raise Invalid(f"{value!r} is reserved; choose another", code="invalid_code", field=field)
    return value


def check_direction(value: Any, allowed: tuple[str, ...] = DIRECTIONS) -> str:
    if value not in allowed:
        raise Invalid(
            f"direction must be one of {', '.join(allowed)}",
            code="invalid_direction",
            field="direction",
        )
    return value


def parse_line(data: Any, gate_direction: str = "both") -> ExpectedLine:
    """An expected line for a gate of ``gate_direction`` (in, out or both); "both" makes
    direction required, otherwise a missing direction is the gate's."""
    data = _object(data, LINE_FIELDS)
    direction = data.get("direction")
    if direction is None:
        if gate_direction == "both":
            raise Invalid(
                "a gate for both directions needs direction in or out",
                code="missing_field",
                field="direction",
            )
        direction = gate_direction
    direction = check_direction(direction)
    if gate_direction != "both" and direction != gate_direction:
        raise Invalid(
            f"this gate handles direction {gate_direction} only",
            code="invalid_direction",
            field="direction",
        )
    sscc = _optional_text(data, "sscc", MAX_TEXT)
    if sscc is not None:
        try:
            sscc = validate_sscc(sscc)
        except IdentifierError as exc:
            raise Invalid(str(exc), code="invalid_sscc", field="sscc") from exc
    gtin = _gtin(data.get("gtin"))
    if sscc is None and gtin is None:
        raise Invalid("give the pallet as sscc or gtin", code="missing_item", field="sscc")
    qty = data.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
        raise Invalid(
            f"qty must be whole pieces, 1..{MAX_QTY}", code="invalid_quantity", field="qty"
        )
    return ExpectedLine(
        direction=direction,
        qty=qty,
        sscc=sscc,
        gtin=gtin,
        lot=_optional_text(data, "lot", MAX_LOT),
        weight_g=_weight_g(data.get("weight_kg")),
        customer=_optional_text(data, "customer", MAX_REFERENCE),
        reference=_optional_text(data, "reference", MAX_REFERENCE),
    )


def parse_ordered_line(data: Any) -> tuple[ExpectedLine, str | None]:
    """A line ordered through the cloud: direction required (the cloud does not know the
    gates' directions), and optionally the gate it is for (None: any gate)."""
    data = _object(data, ORDERED_FIELDS)
    gate = data.get("gate")
    if gate is not None:
        gate = check_gate_code(gate, "gate")
    return parse_line({k: v for k, v in data.items() if k != "gate"}, "both"), gate


def _object(data: Any, allowed: Collection[str]) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise Invalid("send a JSON object", code="invalid_body")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", code="unknown_field", field=unknown[0])
    return data


def _optional_text(data: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(f"{field} must be text of 1..{limit} characters", field=field)
    if not value.strip().isprintable():  # as movements: the line becomes one
        raise Invalid(f"{field} contains control characters", field=field)
    return value.strip()


def _gtin(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return normalize_gtin(value)
    except IdentifierError as exc:
        raise Invalid(str(exc), code="invalid_gtin", field="gtin") from exc


def _weight_g(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid("weight_kg must be a number", code="invalid_weight", field="weight_kg")
    if not 0 <= value <= MAX_WEIGHT_KG:
        raise Invalid(
            f"weight_kg must be between 0 and {MAX_WEIGHT_KG}",
            code="invalid_weight",
            field="weight_kg",
        )
    return round(value * 1000)


__all__ = [
    "DIRECTIONS",
    "GATE_CODE",
    "LINE_FIELDS",
    "ORDERED_FIELDS",
    "STATUSES",
    "ExpectedLine",
    "check_direction",
    "check_gate_code",
    "parse_line",
    "parse_ordered_line",
]
