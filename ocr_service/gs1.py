"""GS1 element strings: parse, validate and build the data that GS1 barcodes carry.

Three inputs are understood:

- what a decoder returns for a GS1 symbol: a symbology identifier (``]C1``, ``]e0``, ``]d2``,
  ``]Q3``, ``]J1``) followed by the element string, with FNC1 rendered as ASCII GS (0x1D);
- the bare element string, AI digits followed by data, GS after variable-length fields;
- the bracketed human-readable interpretation printed under the bars, ``(01)...(10)...``.

Every AI is checked against ``ocr_service.gs1_table``: lengths, character sets, mod-10 check
digits, calendar dates. Anything malformed raises ``GS1Error`` with a stable ``code``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from cangyun.identifiers import gs1_check_digit
from ocr_service.gs1_table import AIS, CHARSETS, AIDef, Component

GS = "\x1d"  # FNC1 as a decoder renders it between elements

# ISO/IEC 15424 symbology identifiers of the carriers that hold GS1 element strings.
GS1_SYMBOLOGY_IDS: dict[str, str] = {
    "]C1": "GS1-128",
    "]e0": "GS1 DataBar",
    "]d2": "GS1 DataMatrix",
    "]Q3": "GS1 QR Code",
    "]J1": "GS1 DotCode",
}

# Scanners append CR/LF; str.strip() is not used because Python counts GS as whitespace.
_TRIM = " \t\r\n"

Value = str | int | date | Decimal


class GS1Error(ValueError):
    """Malformed GS1 data; ``code`` is a stable snake_case reason for callers and logs."""

    def __init__(self, code: str, message: str, ai: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ai = ai

    def __reduce__(self) -> tuple[type[GS1Error], tuple[str, str, str | None]]:
        # Picklable with its fields, so it survives a trip between worker processes.
        return (type(self), (self.code, self.message, self.ai))


@dataclass(frozen=True)
class Element:
    """One AI and its data: ``raw`` as in the barcode, ``value`` typed."""

    ai: str
    raw: str
    value: Value
    title: str

    @property
    def definition(self) -> AIDef:
        return AIS[self.ai]


@dataclass(frozen=True)
class GS1Message:
    """The elements of one GS1 symbol, in barcode order."""

    elements: tuple[Element, ...]

    def as_dict(self) -> dict[str, str]:
        return {element.ai: element.raw for element in self.elements}

    def get(self, ai: str) -> Element | None:
        return next((element for element in self.elements if element.ai == ai), None)

    def hri(self) -> str:
        return _hri_text((element.ai, element.raw) for element in self.elements)

    @property
    def gtin(self) -> str | None:
        return self._text("01")

    @property
    def sscc(self) -> str | None:
        return self._text("00")

    @property
    def lot(self) -> str | None:
        return self._text("10")

    @property
    def serial(self) -> str | None:
        return self._text("21")

    @property
    def expiry_date(self) -> date | None:
        return self._date("17")

    @property
    def best_before(self) -> date | None:
        return self._date("15")

    @property
    def production_date(self) -> date | None:
        return self._date("11")

    @property
    def count(self) -> int | None:
        element = self.get("37")
        return element.value if element is not None and isinstance(element.value, int) else None

    @property
    def net_weight_kg(self) -> Decimal | None:
        """Net weight from AI 310n; pounds (320n) are deliberately not converted."""
        for element in self.elements:
            if element.ai.startswith("310") and isinstance(element.value, Decimal):
                return element.value
        return None

    def _text(self, ai: str) -> str | None:
        element = self.get(ai)
        return element.raw if element is not None else None

    def _date(self, ai: str) -> date | None:
        element = self.get(ai)
        return element.value if element is not None and isinstance(element.value, date) else None


# --- entry points ---------------------------------------------------------------------------


def parse(text: str, today: date | None = None) -> GS1Message:
    """Parse a decoded barcode, a bare element string or the bracketed human-readable form."""
    text = _trimmed(text)
    if text.startswith("]"):
        return parse_element_string(_without_symbology_id(text), today)
    if text.startswith("("):
        return parse_hri(text, today)
    return parse_element_string(text, today)


def parse_element_string(raw: str, today: date | None = None) -> GS1Message:
    """Parse AI digits + data, with GS after each variable-length field that is not last."""
    raw = _trimmed(raw)
    pos = _skip_separators(raw, 0)
    if pos == len(raw):
        raise GS1Error("empty", "no GS1 data")
    elements: list[Element] = []
    while pos < len(raw):
        definition = _match_ai(raw, pos)
        value, pos = _read_value(raw, pos + len(definition.ai), definition)
        elements.append(_element(definition, value, today))
        pos = _skip_separators(raw, pos)
    return _message(elements)


def parse_hri(text: str, today: date | None = None) -> GS1Message:
    """Parse ``(01)09521234543213(10)ABC``; ``\\(`` and ``\\)`` are literal brackets."""
    text = _trimmed(text)
    if not text:
        raise GS1Error("empty", "no GS1 data")
    elements = [_element(_hri_ai(ai), value, today) for ai, value in _split_hri(text)]
    return _message(elements)


def is_gs1(text: str) -> bool:
    """Cheap test: a GS1 symbology identifier, or bracketed text that parses."""
    if not isinstance(text, str):
        return False
    text = text.lstrip(_TRIM)
    if text[:3] in GS1_SYMBOLOGY_IDS:
        return True
    if not text.startswith("("):
        return False
    try:
        parse_hri(text)
    except GS1Error:
        return False
    return True


def build_element_string(pairs: Sequence[tuple[str, str]], today: date | None = None) -> str:
    """Validate ``(ai, raw)`` pairs and join them, with GS where a separator is needed."""
    elements = _validated(pairs, today)
    parts: list[str] = []
    for index, element in enumerate(elements):
        parts.append(element.ai + element.raw)
        if not element.definition.predefined and index < len(elements) - 1:
            parts.append(GS)
    return "".join(parts)


def build_hri(pairs: Sequence[tuple[str, str]], today: date | None = None) -> str:
    """Validate ``(ai, raw)`` pairs and render them as ``(ai)value...``."""
    return _hri_text((element.ai, element.raw) for element in _validated(pairs, today))


def resolve_century(yy: int, today: date) -> int:
    """The four-digit year of a two-digit year YY (GS1 General Specifications 7.12).

    A YY 51 to 99 years ahead of this year is taken as last century, one 50 to 99 years
    behind as next century, anything else as this century.
    """
    if not 0 <= yy <= 99:
        raise GS1Error("bad_date", f"two-digit year out of range: {yy}")
    this_yy = today.year % 100
    century = today.year - this_yy
    difference = yy - this_yy
    if difference >= 51:
        century -= 100
    elif difference <= -50:
        century += 100
    return century + yy


# --- reading element strings ----------------------------------------------------------------


def _trimmed(text: str) -> str:
    if not isinstance(text, str):
        raise GS1Error("not_gs1", f"expected text, got {type(text).__name__}")
    return text.strip(_TRIM)


def _without_symbology_id(text: str) -> str:
    prefix = text[:3]
    if prefix not in GS1_SYMBOLOGY_IDS:
        raise GS1Error("not_gs1", f"symbology identifier {prefix!r} does not carry GS1 data")
    return text[3:]


def _skip_separators(raw: str, pos: int) -> int:
    # A GS right after the identifier or after a fixed-length field is redundant, not wrong.
    while pos < len(raw) and raw[pos] == GS:
        pos += 1
    return pos


def _match_ai(raw: str, pos: int) -> AIDef:
    # GS1 keeps AIs prefix-free, so trying the longest first is only a safeguard.
    for size in (4, 3, 2):
        candidate = raw[pos : pos + size]
        if len(candidate) == size and candidate in AIS:
            return AIS[candidate]
    raise GS1Error("unknown_ai", f"no Application Identifier at {raw[pos : pos + 4]!r}")


def _read_value(raw: str, start: int, definition: AIDef) -> tuple[str, int]:
    """The field's data and the position after it."""
    end = raw.find(GS, start)
    end = len(raw) if end < 0 else end
    ai = definition.ai
    if definition.predefined:
        size = definition.max_length
        if end - start < size:
            message = f"AI ({ai}) needs {size} characters, found {end - start}"
            raise GS1Error("bad_length", message, ai)
        return raw[start : start + size], start + size
    if end - start > definition.max_length:
        message = f"AI ({ai}) allows {definition.max_length} characters and no GS follows"
        raise GS1Error("missing_separator", message, ai)
    return raw[start:end], end


# --- reading the bracketed form -------------------------------------------------------------


def _split_hri(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos] != "(":
            raise GS1Error("bad_hri", f"expected '(' at position {pos} of {text!r}")
        close = text.find(")", pos)
        if close < 0:
            raise GS1Error("bad_hri", f"unbalanced '(' at position {pos} of {text!r}")
        value, next_pos = _hri_value(text, close + 1)
        pairs.append((text[pos + 1 : close], value))
        pos = next_pos
    return pairs


def _hri_value(text: str, start: int) -> tuple[str, int]:
    chars: list[str] = []
    pos = start
    while pos < len(text):
        char = text[pos]
        if char == "\\" and text[pos + 1 : pos + 2] in ("(", ")"):
            chars.append(text[pos + 1])
            pos += 2
            continue
        if char == "(":
            break
        if char == ")":
            raise GS1Error("bad_hri", f"unbalanced ')' at position {pos} of {text!r}")
        chars.append(char)
        pos += 1
    # Spaces may separate elements; no GS1 character set contains a space.
    return "".join(chars).rstrip(" "), pos


def _hri_ai(ai: str) -> AIDef:
    if not (ai.isascii() and ai.isdigit()):
        raise GS1Error("bad_hri", f"({ai}) is not an Application Identifier")
    definition = AIS.get(ai)
    if definition is None:
        raise GS1Error("unknown_ai", f"unknown Application Identifier ({ai})", ai)
    return definition


def _hri_text(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"({ai}){_escape_brackets(raw)}" for ai, raw in pairs)


def _escape_brackets(raw: str) -> str:
    return raw.replace("(", "\\(").replace(")", "\\)")


# --- validating one element -----------------------------------------------------------------


def _validated(pairs: Sequence[tuple[str, str]], today: date | None) -> list[Element]:
    if not pairs:
        raise GS1Error("empty", "no elements to encode")
    elements = []
    for ai, raw in pairs:
        definition = AIS.get(ai)
        if definition is None:
            raise GS1Error("unknown_ai", f"unknown Application Identifier ({ai})", ai)
        elements.append(_element(definition, raw, today))
    return elements


def _element(definition: AIDef, raw: str, today: date | None) -> Element:
    _check_field(definition, raw)
    value = _typed_value(definition, raw, today or date.today())
    return Element(definition.ai, raw, value, definition.title)


def _check_field(definition: AIDef, raw: str) -> None:
    ai = definition.ai
    if not definition.min_length <= len(raw) <= definition.max_length:
        limits = f"{definition.min_length}..{definition.max_length}"
        raise GS1Error("bad_length", f"AI ({ai}) takes {limits} characters, got {len(raw)}", ai)
    pos = 0
    for component in definition.components:
        if pos == len(raw) and component.optional:
            break
        part = raw[pos : pos + component.max_length]
        _check_component(ai, component, part)
        pos += len(part)
    if pos != len(raw):
        raise GS1Error("bad_length", f"AI ({ai}) has {len(raw) - pos} characters too many", ai)


def _check_component(ai: str, component: Component, part: str) -> None:
    if len(part) < component.min_length:
        message = f"AI ({ai}) has a {len(part)}-character part where {component.min_length} go"
        raise GS1Error("bad_length", message, ai)
    allowed = CHARSETS[component.charset]
    stray = next((char for char in part if char not in allowed), None)
    if stray is not None:
        message = f"AI ({ai}) does not allow {stray!r} (character set {component.charset})"
        raise GS1Error("bad_charset", message, ai)
    if component.check_digit and gs1_check_digit(part[:-1]) != int(part[-1]):
        raise GS1Error("bad_check_digit", f"AI ({ai}) {part} has a wrong check digit", ai)


def _typed_value(definition: AIDef, raw: str, today: date) -> Value:
    match definition.kind:
        case "count":
            return int(raw)
        case "date":
            return _date_value(definition, raw, today)
        case "decimal":
            return _scaled(raw, definition.decimals)
        case "currency_decimal":  # ISO 4217 numeric currency code, then the amount
            return _scaled(raw[3:], definition.decimals)
        case "temperature":
            return _temperature(definition, raw)
        case _:
            return raw


def _scaled(digits: str, decimals: int | None) -> Decimal:
    return Decimal(digits).scaleb(-(decimals or 0))


def _temperature(definition: AIDef, raw: str) -> Decimal:
    value = _scaled(raw[:6], definition.decimals)
    if len(raw) == 6:
        return value
    if raw[6] != "-":
        message = f"AI ({definition.ai}) allows only '-' after the temperature"
        raise GS1Error("bad_charset", message, definition.ai)
    return -value


# --- dates ----------------------------------------------------------------------------------


def _date_value(definition: AIDef, raw: str, today: date) -> date | str:
    layout = definition.date_format or ""
    ai = definition.ai
    if layout == "YYMMDD[YYMMDD]":
        # A harvest period: both ends must be real dates; the text stays the value.
        for start in range(0, len(raw), 6):
            _short_date(raw[start : start + 6], False, today, ai)
        return raw
    if layout.startswith("YYYY"):
        day = _calendar_day(int(raw[:4]), int(raw[4:6]), int(raw[6:8]), False, ai)
        clock = raw[8:]
    else:
        day = _short_date(raw[:6], layout.startswith("YYMMD0"), today, ai)
        clock = raw[6:]
    return datetime.combine(day, _time_of_day(clock, ai)) if clock else day


def _short_date(text: str, day_zero_allowed: bool, today: date, ai: str) -> date:
    year = resolve_century(int(text[:2]), today)
    return _calendar_day(year, int(text[2:4]), int(text[4:6]), day_zero_allowed, ai)


def _calendar_day(year: int, month: int, day: int, day_zero_allowed: bool, ai: str) -> date:
    """A real date; day 00, where the AI allows it, stands for the month's last day."""
    if not 1 <= month <= 12:
        raise GS1Error("bad_date", f"AI ({ai}) month {month:02d} does not exist", ai)
    if day == 0 and day_zero_allowed:
        day = calendar.monthrange(year, month)[1]
    try:
        return date(year, month, day)
    except ValueError:
        raise GS1Error(
            "bad_date", f"AI ({ai}) {year}-{month:02d}-{day:02d} is no date", ai
        ) from None


def _time_of_day(digits: str, ai: str) -> time:
    hour, minute, second = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise GS1Error("bad_date", f"AI ({ai}) time {digits} does not exist", ai)
    return time(hour, minute, second)


def _message(elements: list[Element]) -> GS1Message:
    # The same AI twice is allowed only when both carry the same data.
    seen: dict[str, str] = {}
    for element in elements:
        if seen.setdefault(element.ai, element.raw) != element.raw:
            message = f"AI ({element.ai}) appears twice with different data"
            raise GS1Error("duplicate_ai", message, element.ai)
    return GS1Message(tuple(elements))
