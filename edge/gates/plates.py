"""Chinese vehicle licence plates (机动车号牌, GA 36-2018) in OCR text. Pure: no I/O.

A plate is a province character, the letter of the issuing office, then a serial:

- ordinary (blue for cars, yellow for trucks): 5 digits, or digits with at most two
  letters, ``沪A·12345``, ``粤B·8C6Q2``;
- new energy (green): 6 characters, ``沪AD12345`` (small: a type letter, a letter or digit,
  4 digits) or ``沪A12345D`` (large: 5 digits, then D or F);
- trailer (挂) and Guangdong cross-border (粤Z…港/澳): 4 letters or digits and the suffix,
  ``沪A1234挂``, ``粤Z1234港``: semi-trailers and Hong Kong trucks are everyday at docks.

Plates never use the letters I and O, so in a serial an OCR ``I``/``O`` can only be a 1/0.
Where the format allows digits only, the usual look-alikes are read as digits too (S→5,
B→8...); the office letter reads look-alike digits as letters (8→B, 0→D...). A reading that
fits two formats, or none, is refused: the next frame will read better.
"""

from __future__ import annotations

import re
import unicodedata

from cangyun.errors import Invalid

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
SUFFIXES = "挂港澳"
# 2022 rules: D A B C E for pure electric, F G H J K for the others (small new-energy plates).
NEW_ENERGY_SMALL = "DABCEFGHJK"
NEW_ENERGY_LARGE = "DF"
MAX_SERIAL_LETTERS = 2  # an ordinary serial is 5 digits, or 3-4 digits and 1-2 letters

# Traditional forms of the province characters, as OCR models trained on mixed text return.
_SIMPLIFIED = str.maketrans(
    {
        "滬": "沪",
        "遼": "辽",
        "魯": "鲁",
        "蘇": "苏",
        "贛": "赣",
        "陝": "陕",
        "閩": "闽",
        "貴": "贵",
        "粵": "粤",
        "寧": "宁",
        "瓊": "琼",
        "雲": "云",
        "晉": "晋",
        "掛": "挂",
    }
)
# The middle dot in its many code points, and whatever else OCR puts between characters.
_SEPARATORS = re.compile(r"[\s·•・∙⋅‧ㆍ.\-—_:|]+")
_IN_SERIAL = str.maketrans({"I": "1", "O": "0"})  # never letters on a plate
_AS_DIGIT = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2",
                           "S": "5", "G": "6", "B": "8"})  # fmt: skip
_AS_LETTER = str.maketrans({"8": "B", "0": "D", "O": "D", "5": "S", "2": "Z", "6": "G"})
_ALNUM = set(LETTERS) | set("0123456789")
_DIGITS = set("0123456789")


class PlateError(Invalid):
    """Text that is not a licence plate; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


def compact(text: str) -> str:
    """Full-width to ASCII, upper case, simplified province, no dots or spaces."""
    if not isinstance(text, str):
        raise PlateError("empty", "no plate text")
    text = unicodedata.normalize("NFKC", text).upper().translate(_SIMPLIFIED)
    return _SEPARATORS.sub("", text)


def parse_plate(text: str) -> str:
    """The plate in ``text`` in its plain form (``沪A12345``), or ``PlateError``."""
    plate = compact(text)
    if not 7 <= len(plate) <= 8:
        raise PlateError("bad_length", f"a plate has 7 or 8 characters, got {plate!r}")
    province, office, serial = plate[0], plate[1].translate(_AS_LETTER), plate[2:]
    if province not in PROVINCES:
        raise PlateError("bad_province", f"{province!r} is not a province on plates")
    if office not in LETTERS:
        raise PlateError("bad_office", f"the issuing office must be a letter, got {office!r}")
    head = province + office
    if serial[-1] in SUFFIXES:
        return head + _suffixed(head, serial)
    serial = serial.translate(_IN_SERIAL)
    if len(serial) == 5:
        letters = sum(char in LETTERS for char in serial)
        if not set(serial) <= _ALNUM or letters > MAX_SERIAL_LETTERS:
            raise PlateError("bad_serial", f"{serial!r} is not a plate serial")
        return head + serial
    readings = {r for r in (_new_energy_small(serial), _new_energy_large(serial)) if r}
    if len(readings) != 1:
        problem = "fits two formats" if readings else "is not a new-energy serial"
        raise PlateError("bad_serial", f"{serial!r} {problem}")
    return head + readings.pop()


def plates_in_text(lines: list[str]) -> tuple[str, ...]:
    """Plates among OCR lines; a truck's rear plate has two rows (``沪A`` over ``12345``)."""
    found: dict[str, None] = {}
    candidates = list(lines) + [a + b for a, b in zip(lines, lines[1:], strict=False)]
    for text in candidates:
        try:
            found[parse_plate(text)] = None
        except PlateError:
            continue
    return tuple(found)


def _suffixed(head: str, serial: str) -> str:
    suffix, body = serial[-1], serial[:-1].translate(_IN_SERIAL)
    if len(body) != 4 or not set(body) <= _ALNUM:
        raise PlateError("bad_serial", f"{serial!r} is not a {suffix} plate serial")
    if suffix in "港澳" and head != "粤Z":
        raise PlateError("bad_serial", f"{suffix} plates are issued as 粤Z only")
    return body + suffix


def _new_energy_small(serial: str) -> str | None:
    kind, second, digits = serial[0], serial[1], serial[2:].translate(_AS_DIGIT)
    if kind in NEW_ENERGY_SMALL and second in _ALNUM and set(digits) <= _DIGITS:
        return kind + second + digits
    return None


def _new_energy_large(serial: str) -> str | None:
    digits, kind = serial[:5].translate(_AS_DIGIT), serial[5]
    if kind in NEW_ENERGY_LARGE and set(digits) <= _DIGITS:
        return digits + kind
    return None


__all__ = ["PROVINCES", "PlateError", "compact", "parse_plate", "plates_in_text"]
