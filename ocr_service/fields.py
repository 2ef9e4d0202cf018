"""Label fields from OCR lines, cross-checked against the barcode's GS1 data.

Labels are read by their keys, not by positions: 批号 / LOT, 生产日期 / MFG, 有效期至 / EXP,
净重 / N.W., ... A key's value is the rest of its line, else the nearest text to its right
on the same row, else the text just below it (labels print "key above value" too).

Text is normalised first: full-width characters to ASCII (NFKC), and inside fields that can
only hold digits the usual OCR confusions (O→0, I/l→1, S→5, B→8, Z→2). Dates accept the
formats Chinese and export labels use; a shelf life such as 保质期 24个月 becomes an expiry
date counted from the production date. Weights in g, kg, t, 斤 and 公斤 become kg.

When a barcode carries GS1 data, the barcode wins: OCR only fills the fields it lacks, and
every field where both disagree is reported in ``conflicts``.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from cangyun.identifiers import IdentifierError, has_valid_check_digit, normalize_gtin
from ocr_service import gs1
from ocr_service.ocr import TextLine

FIELD_NAMES = (
    "gtin",
    "sscc",
    "lot",
    "production_date",
    "expiry_date",
    "net_weight_kg",
    "quantity",
    "product_name",
    "owner",
)

# Key patterns, most specific first. Anchored at the start of a (normalised) line or right
# after a separator, so a key word inside a product name does not count.
_KEYS: list[tuple[str, str]] = [
    (
        "expiry_date",
        r"有效期至|有效期限至|有效日期|失效日期|保质期至|到期日|"
        r"EXP(?:IRY|IRATION)?\.?\s*(?:DATE)?|USE\s*BY|BEST\s*BEFORE|BB\b",
    ),
    ("shelf_life", r"保质期|有效期|SHELF\s*LIFE"),
    (
        "production_date",
        r"生产日期|生产时间|制造日期|MFG\.?\s*(?:DATE)?|MFD\.?|"
        r"PROD(?:UCTION|\.)?\s*DATE|PROD\.?(?![A-Z])|DATE\s*OF\s*MANUFACTURE|"
        r"PACKED\s*ON",
    ),
    ("lot", r"生产批号|批次号|批号|批次|LOT\s*(?:NO\.?|NUMBER|#)?|BATCH\s*(?:NO\.?|#)?"),
    ("net_weight_kg", r"净重|凈重|净含量|N\.?\s*W\.?(?=[\s:：]|\d|$)|NET\s*(?:WEIGHT|WT\.?)"),
    ("gross_weight", r"毛重|G\.?\s*W\.?(?=[\s:：]|\d|$)|GROSS\s*(?:WEIGHT|WT\.?)"),
    ("quantity", r"数量|件数|箱数|QTY\.?|QUANTITY|Q'TY"),
    ("owner", r"货主|收货单位|收货人|寄存方|CONSIGNEE|CARGO\s*OWNER|OWNER|SHIP\s*TO"),
    # "PRODUCT LABEL" is a title, not a key.
    (
        "product_name",
        r"品名|产品名称|商品名称|货物名称|名称|PRODUCT(?!\s*LABEL)(?:\s*NAME)?|"
        r"DESCRIPTION|ITEM(?!\s*LABEL)",
    ),
    ("sscc", r"SSCC"),
    ("gtin", r"GTIN|商品条码|EAN"),
]
_KEY_RES = [
    (name, re.compile(rf"^(?:{pattern})\s*[:：.]?\s*", re.IGNORECASE)) for name, pattern in _KEYS
]

# Digit-only fields: what OCR confuses with digits.
_DIGIT_FIXES = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "L": "1",
                              "|": "1", "i": "1", "S": "5", "s": "5", "B": "8", "Z": "2",
                              "z": "2", "G": "6", "g": "9"})  # fmt: skip
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_UNIT_KG = {"kg": Decimal(1), "kgs": Decimal(1), "公斤": Decimal(1), "千克": Decimal(1),
            "g": Decimal("0.001"), "克": Decimal("0.001"), "t": Decimal(1000),
            "吨": Decimal(1000), "斤": Decimal("0.5"), "lb": Decimal("0.45359237"),
            "lbs": Decimal("0.45359237")}  # fmt: skip


@dataclass
class LabelFields:
    fields: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # field -> "barcode" | "ocr"
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def normalize(text: str) -> str:
    """Full-width to ASCII, unify dashes and spaces; keep Chinese as it is."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[‐‑‒–—―−]", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def digits_only(text: str) -> str:
    return re.sub(r"\D", "", text.translate(_DIGIT_FIXES))


# --- from OCR lines ------------------------------------------------------------------


def read_fields(lines: list[TextLine]) -> dict[str, Any]:
    """Fields found in OCR lines alone (no barcode involved)."""
    texts = [normalize(line.text) for line in lines]
    found: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for index, text in enumerate(texts):
        for name, key_re in _KEY_RES:
            match = key_re.match(text)
            if not match:
                continue
            rest = text[match.end() :].strip(" :：")
            candidates = [(rest, index)] if rest else []
            candidates += _neighbours(lines, texts, index)
            for candidate, where in candidates:
                if name in ("product_name", "owner"):
                    candidate = _with_continuation(lines, texts, where, candidate)
                value = _PARSERS[name](candidate)
                if value is not None:
                    if name not in found:
                        found[name] = value
                        raw[name] = candidate
                    break
            break
    for text in texts:
        _from_hri(text, found)
    _loose_identifiers(texts, found)
    if "expiry_date" not in found and "shelf_life" in found and "production_date" in found:
        found["expiry_date"] = add_duration(found["production_date"], found["shelf_life"])
    elif "expiry_date" not in found and isinstance(found.get("shelf_life"), date):
        found["expiry_date"] = found["shelf_life"]  # 有效期 followed by a date
    result = {k: v for k, v in found.items() if k in FIELD_NAMES}
    for name in ("production_date", "expiry_date"):
        if isinstance(result.get(name), date):
            result[name] = result[name].isoformat()
    if "net_weight_kg" in result:
        result["net_weight_kg"] = float(result["net_weight_kg"])
    return result


def _neighbours(lines: list[TextLine], texts: list[str], index: int) -> list[tuple[str, int]]:
    """Texts that could be the value of the key at ``index``, nearest first.

    A value sits to the right of its key on the same row or just below it. Geometry is taken
    in the key's own frame (along and across its text line), so a tilted or keystoned photo
    keeps rows and columns apart. Distances are in key heights; "below" pays a small penalty
    so that on a two-column row the text to the right wins.
    """
    key = _Frame(lines[index].box)
    height = max(key.height, 1.0)
    scored: list[tuple[float, int]] = []
    below: list[tuple[float, int, float]] = []
    for i, line in enumerate(lines):
        if i == index:
            continue
        left, right, top, middle = key.extent(line.box)
        if left >= key.width - height * 0.5 and abs(middle - height / 2) <= height * 0.6:
            if not _is_key(texts[i]):
                gap = max(0.0, left - key.width) / height
                scored.append((gap + 2 * abs(middle - height / 2) / height, i))
        elif height * 0.5 <= top <= height * 2.5 and (
            _overlap(0.0, key.width, left, right) > 0 or abs(left) < 2 * height
        ):
            below.append((top, i, left))
    if below:
        # Only the first line under the key can be its value; a key there means the
        # layout is a column of keys, each with its own value.
        top, i, left = min(below)
        if not _is_key(texts[i]):
            drop = max(0.0, top - height) / height
            scored.append((1.0 + drop + abs(left) / height, i))
    return [(texts[i], i) for score, i in sorted(scored) if score < 12]


def _with_continuation(lines: list[TextLine], texts: list[str], index: int, value: str) -> str:
    """A long name wraps onto the next line: left-aligned right under it, no key on its row,
    and no key in between (in a stacked layout the next thing under a value is a key)."""
    frame = _Frame(lines[index].box)
    height = max(frame.height, 1.0)
    below: list[tuple[float, int, float]] = []
    for i, line in enumerate(lines):
        if i == index:
            continue
        left, right, top, _ = frame.extent(line.box)
        if height * 0.6 <= top <= height * 1.8 and _overlap(0.0, frame.width, left, right) > 0:
            below.append((top, i, left))
    if not below:
        return value
    _, nearest, left = min(below)
    if _is_key(texts[nearest]) or abs(left) >= height:
        return value
    if any(_row_has_key(lines, texts, nearest, k) for k in range(len(lines))):
        return value
    return f"{value} {texts[nearest]}"


def _row_has_key(lines: list[TextLine], texts: list[str], index: int, other: int) -> bool:
    if other == index or not _is_key(texts[other]):
        return False
    frame = _Frame(lines[other].box)
    left, _, top, middle = frame.extent(lines[index].box)
    return left > 0 and abs(middle - frame.height / 2) <= frame.height * 0.6


class _Frame:
    """A text line's own axes: origin at its top-left corner, x along the text."""

    def __init__(self, box: tuple[tuple[int, int], ...]) -> None:
        (x0, y0), (x1, y1), _, (x3, y3) = box[:4]
        self.origin = (float(x0), float(y0))
        along = (x1 - x0, y1 - y0)
        self.width = max(math.hypot(*along), 1.0)
        self.ux = (along[0] / self.width, along[1] / self.width)
        self.uy = (-self.ux[1], self.ux[0])
        self.height = abs((x3 - x0) * self.uy[0] + (y3 - y0) * self.uy[1])

    def point(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.origin[0], y - self.origin[1]
        return dx * self.ux[0] + dy * self.ux[1], dx * self.uy[0] + dy * self.uy[1]

    def extent(self, box: tuple[tuple[int, int], ...]) -> tuple[float, float, float, float]:
        """(left, right, top, middle) of another line in this frame, the vertical ones taken
        at that line's start: a long value may slope differently from its short key."""
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box[:4]
        left, top = self.point(x0, y0)
        _, bottom = self.point(x3, y3)
        right = max(self.point(x1, y1)[0], self.point(x2, y2)[0])
        return left, right, top, (top + bottom) / 2


def _overlap(a1: float, a2: float, b1: float, b2: float) -> float:
    return max(0.0, min(a2, b2) - max(a1, b1))


def is_key(text: str) -> bool:
    """Whether a line starts with a label key (批号, LOT, 净重, ...)."""
    return _is_key(normalize(text))


def _is_key(text: str) -> bool:
    return any(key_re.match(text) for _, key_re in _KEY_RES)


def _from_hri(text: str, found: dict[str, Any]) -> None:
    """The human-readable line under a GS1 barcode, e.g. (01)069...(10)LOT1."""
    compact = text.replace(" ", "")
    if not compact.startswith("(") or ")" not in compact:
        return
    try:
        message = gs1.parse_hri(compact)
    except gs1.GS1Error:
        return
    for name, value in gs1_fields(message).items():
        if name in ("production_date", "expiry_date"):
            value = date.fromisoformat(value)
        found.setdefault(name, value)


def _loose_identifiers(texts: list[str], found: dict[str, Any]) -> None:
    """An SSCC or GTIN printed without a key (e.g. the digits under a barcode)."""
    for text in texts:
        digits = digits_only(text) if re.fullmatch(r"[\d\s()OoIlSB]+", text) else ""
        if len(digits) == 20 and digits.startswith("00"):
            digits = digits[2:]
        if "sscc" not in found and len(digits) == 18 and has_valid_check_digit(digits):
            found["sscc"] = digits
        elif "gtin" not in found and len(digits) in (13, 14) and has_valid_check_digit(digits):
            found["gtin"] = digits.zfill(14)


# --- value parsers -------------------------------------------------------------------


def parse_lot(text: str) -> str | None:
    match = re.match(r"([A-Za-z0-9][A-Za-z0-9\-_/.]{1,19})\b", text.replace(" ", ""))
    if not match:
        return None
    value = match.group(1).rstrip(".-/")
    return value.upper() if len(value) >= 2 else None


def parse_date(text: str) -> date | None:
    text = normalize(text).upper()
    # Words are fixed first so digit fixes do not eat month names.
    named = re.search(r"(\d{1,2})\s*[-./ ]?\s*([A-Z]{3})[A-Z]*\.?\s*[-./ ,]?\s*(\d{4})", text)
    if named and named.group(2) in _MONTHS:
        return _date(int(named.group(3)), _MONTHS[named.group(2)], int(named.group(1)))
    named = re.search(r"([A-Z]{3})[A-Z]*\.?\s+(\d{1,2}),?\s+(\d{4})", text)
    if named and named.group(1) in _MONTHS:
        return _date(int(named.group(3)), _MONTHS[named.group(1)], int(named.group(2)))
    fixed = text.translate(_DIGIT_FIXES)
    iso = re.search(r"(20\d{2})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})", fixed)
    if iso:
        return _date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    compact = re.search(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)", fixed)
    if compact:
        return _date(int(compact.group(1)), int(compact.group(2)), int(compact.group(3)))
    day_first = re.search(r"(?<!\d)(\d{1,2})\s*[-./]\s*(\d{1,2})\s*[-./]\s*(20\d{2})", fixed)
    if day_first:
        return _date(int(day_first.group(3)), int(day_first.group(2)), int(day_first.group(1)))
    month_only = re.search(r"(20\d{2})\s*[-./年]\s*(\d{1,2})\s*月?$", fixed)
    if month_only:  # "2027-06": GS1 convention, the end of that month
        year, month = int(month_only.group(1)), int(month_only.group(2))
        if 1 <= month <= 12:
            return date(year, month, calendar.monthrange(year, month)[1])
    return None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass(frozen=True)
class Duration:
    months: int = 0
    days: int = 0


def parse_shelf_life(text: str) -> Duration | date | None:
    text = normalize(text).upper()
    match = re.search(r"(\d{1,4})\s*(个月|月|MONTHS?|天|日|DAYS?|年|YEARS?)", text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if unit in ("个月", "月") or unit.startswith("MONTH"):
            return Duration(months=amount)
        if unit in ("天", "日") or unit.startswith("DAY"):
            return Duration(days=amount)
        return Duration(months=12 * amount)
    return parse_date(text)


def add_duration(start: date, duration: Duration | date) -> date:
    """Production date plus shelf life; months keep the day, clamped to the month's end."""
    if isinstance(duration, date):
        return duration
    month_index = start.month - 1 + duration.months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) + timedelta(days=duration.days)


def parse_weight_kg(text: str) -> Decimal | None:
    text = normalize(text)
    match = re.search(
        r"(\d[\dOoIlSB]*(?:[.,]\d+)?)\s*(kgs?|KGS?|Kg|公斤|千克|g|G|克|t|T|吨|斤|lbs?|LBS?)(?![A-Za-z])",
        text,
    )
    if not match:
        return None
    number = match.group(1).translate(_DIGIT_FIXES).replace(",", ".")
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    unit = _UNIT_KG.get(match.group(2).lower()) or _UNIT_KG.get(match.group(2))
    if unit is None:
        return None
    kilograms = (value * unit).quantize(Decimal("0.001"))
    return kilograms if kilograms > 0 else None


def parse_quantity(text: str) -> int | None:
    match = re.match(r"\s*([\dOoIlSB]{1,7})(?!\s*[./]\d)", normalize(text))
    if not match:
        return None
    value = int(digits_only(match.group(1)) or 0)
    return value if value > 0 else None


def parse_text(text: str) -> str | None:
    text = normalize(text).strip(" :：")
    return text if len(text) >= 2 else None


def parse_sscc(text: str) -> str | None:
    digits = digits_only(text)
    if len(digits) == 20 and digits.startswith("00"):
        digits = digits[2:]
    return digits if len(digits) == 18 and has_valid_check_digit(digits) else None


def parse_gtin(text: str) -> str | None:
    digits = digits_only(text)
    if len(digits) > 14 and digits.startswith("01"):
        digits = digits[2:16]
    try:
        return normalize_gtin(digits)
    except IdentifierError:
        return None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "expiry_date": parse_date,
    "shelf_life": parse_shelf_life,
    "production_date": parse_date,
    "lot": parse_lot,
    "net_weight_kg": parse_weight_kg,
    "gross_weight": parse_weight_kg,
    "quantity": parse_quantity,
    "owner": parse_text,
    "product_name": parse_text,
    "sscc": parse_sscc,
    "gtin": parse_gtin,
}


# --- barcode data and the cross-check ------------------------------------------------


def gs1_fields(message: gs1.GS1Message) -> dict[str, Any]:
    """The label fields a GS1 message carries, in the same shapes as the OCR fields."""
    data = message.as_dict()
    fields: dict[str, Any] = {}
    if "01" in data or "02" in data:
        fields["gtin"] = data.get("01") or data["02"]
    if "00" in data:
        fields["sscc"] = data["00"]
    if "10" in data:
        fields["lot"] = data["10"]
    for ai, name in (("11", "production_date"), ("17", "expiry_date")):
        element = message.get(ai)
        if element is not None and isinstance(element.value, date):
            fields[name] = element.value.isoformat()
    if "expiry_date" not in fields:
        element = message.get("15")  # best before, when no use-by date is given
        if element is not None and isinstance(element.value, date):
            fields["expiry_date"] = element.value.isoformat()
    weight = message.net_weight_kg
    if weight is not None:
        fields["net_weight_kg"] = float(weight)
    count = message.get("37") or message.get("30")
    if count is not None:
        fields["quantity"] = int(count.value)
    return fields


def merge(barcode_fields: dict[str, Any], ocr_fields: dict[str, Any]) -> LabelFields:
    """The barcode wins, OCR fills the gaps, and every disagreement is reported."""
    result = LabelFields()
    for name in FIELD_NAMES:
        from_barcode = barcode_fields.get(name)
        from_ocr = ocr_fields.get(name)
        if from_barcode is not None:
            result.fields[name] = from_barcode
            result.sources[name] = "barcode"
            if from_ocr is not None and not _agree(name, from_barcode, from_ocr):
                result.conflicts.append({"field": name, "barcode": from_barcode, "ocr": from_ocr})
        elif from_ocr is not None:
            result.fields[name] = from_ocr
            result.sources[name] = "ocr"
    return result


def _agree(name: str, barcode: Any, ocr: Any) -> bool:
    if name == "net_weight_kg":
        return abs(float(barcode) - float(ocr)) < 0.0005
    if name == "lot":
        # O/0 and I/1 look alike on labels: only a real difference is a conflict.
        fold = str.maketrans({"O": "0", "I": "1", "L": "1"})
        return str(barcode).upper().translate(fold) == str(ocr).upper().translate(fold)
    return str(barcode) == str(ocr)
