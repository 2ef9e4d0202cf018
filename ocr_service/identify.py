"""What a scanned code string is: GS1 data, a GTIN, an SSCC, a container, a drug code...

PDA hardware scanners type the code as keystrokes ("keyboard wedge"). Depending on their
set-up they send an AIM symbology prefix (``]C1``), the GS1 separator as the real GS
character or as a printable stand-in, and a trailing CR/LF. ``identify`` accepts all of that
and says what the code is, with the fields it carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cangyun.identifiers import has_valid_check_digit
from ocr_service import codes, gs1
from ocr_service.fields import gs1_fields

# Printable stand-ins scanners and keyboards use for the GS1 separator.
_GS_STANDINS = ("<GS>", "{GS}", "[GS]", "^]", "\u241d", "~1")
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
# A fixed-length AI (SSCC, GTIN, content GTIN) and its data, then the next AI's digits.
_BARE_GS1 = re.compile(r"^(?:00\d{18}|0[12]\d{14})\d{2}")


@dataclass(frozen=True)
class Identified:
    kind: str  # gs1 | sscc | gtin | container | drug_code | text
    value: str  # the canonical form (GS1 as HRI, GTIN as GTIN-14, ...)
    fields: dict[str, Any] = field(default_factory=dict)
    symbology: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "value": self.value, "fields": self.fields}
        if self.symbology:
            data["symbology"] = self.symbology
        return data


def clean(text: str) -> str:
    for standin in _GS_STANDINS:
        text = text.replace(standin, gs1.GS)
    return text.strip(" \t\r\n")


def identify(text: str) -> Identified:
    code = clean(text)
    prefix_match = _AIM.match(code)
    symbology = prefix_match.group(0) if prefix_match else None
    body = code[len(symbology) :] if symbology else code

    if symbology in gs1.GS1_SYMBOLOGY_IDS or gs1.GS in body or body.startswith("("):
        try:
            message = gs1.parse(code if symbology else body)
            return Identified("gs1", message.hri(), gs1_fields(message), symbology)
        except gs1.GS1Error:
            pass
    digits = body if body.isascii() and body.isdigit() else ""
    if len(digits) == 20 and digits.startswith("00") and has_valid_check_digit(digits[2:]):
        return Identified("sscc", digits[2:], {"sscc": digits[2:]}, symbology)
    if len(digits) == 18 and has_valid_check_digit(digits):
        return Identified("sscc", digits, {"sscc": digits}, symbology)
    if len(digits) in (8, 12, 13, 14) and has_valid_check_digit(digits):
        return Identified("gtin", digits.zfill(14), {"gtin": digits.zfill(14)}, symbology)
    if len(digits) == 16 and digits.startswith("01") and has_valid_check_digit(digits[2:]):
        return Identified("gtin", digits[2:], {"gtin": digits[2:]}, symbology)
    if len(digits) > 16 and digits[:2] in ("00", "01", "02"):
        try:  # a GS1 string whose separators the scanner dropped, fixed-length AIs only
            message = gs1.parse_element_string(digits)
            return Identified("gs1", message.hri(), gs1_fields(message), symbology)
        except gs1.GS1Error:
            pass
    if not digits and _BARE_GS1.match(body):
        # GS1-128 from a wedge that sends neither the AIM prefix nor a GS before the last,
        # variable-length field (01<gtin>10<lot>): read it as an element string.
        try:
            message = gs1.parse("]C1" + body)
            return Identified("gs1", message.hri(), gs1_fields(message), symbology)
        except gs1.GS1Error:
            pass
    if len(digits) == 20:
        try:
            return Identified("drug_code", codes.parse_drug_code(digits), {}, symbology)
        except codes.CodeError:
            pass
    if 10 <= len(body) <= 15 and body[:1].isalpha():
        try:
            number = codes.parse_container_number(body)
            return Identified("container", number, {"container": number}, symbology)
        except codes.CodeError:
            pass
    return Identified("text", body, {}, symbology)
