"""Declared bodies that edge and cloud share: an expected pallet as both take it, and the
facts of a movement as both answer them. One declaration, so the two APIs cannot drift."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cangyun.apispec import Body, Reply
from cangyun.expected import MAX_REFERENCE
from cangyun.fields import Gtin, Name, Text
from cangyun.movement import MAX_LOT, MAX_QTY, MAX_TEXT, MAX_WEIGHT_KG, MOVEMENT_TYPES

MovementType = Literal[MOVEMENT_TYPES]  # type: ignore[valid-type]


class PalletLine(Body):
    """One expected pallet; give sscc or gtin (or both). Each side adds its direction rule
    (and the cloud the gate it should pass); the kernel's parse_line judges the whole line."""

    sscc: Text(MAX_TEXT) | None = Field(None, description="18-digit SSCC with its check digit")
    gtin: Gtin | None = None
    lot: Name(MAX_LOT) | None = Field(None, description="lot / batch")
    qty: int = Field(ge=1, le=MAX_QTY, strict=True, description="pieces on the pallet")
    weight_kg: float | None = Field(None, ge=0, le=MAX_WEIGHT_KG)
    customer: Name(MAX_REFERENCE) | None = Field(None, description="cargo owner (货主) code")
    reference: Name(MAX_REFERENCE) | None = Field(None, description="ASN or shipment number")


class MovementFacts(Reply):
    """What happened to the goods: the fields a movement has wherever it is shown."""

    seq: int
    type: MovementType
    gtin: str | None
    sku: str | None
    lot: str | None
    expiry_date: str | None
    serial: str | None
    sscc: str | None
    qty: int
    weight_kg: float | None
    customer: str | None
    location: str | None
    to_location: str | None
    operator: str | None
    occurred_at: str
