"""Non-GS1 identifiers read off labels: ISO 6346 container numbers and Chinese drug codes.

Both usually arrive through OCR or a plain 1D barcode, so the parsers normalise the text
first and then validate it strictly.
"""

from __future__ import annotations

import string
import unicodedata

CONTAINER_LENGTH = 11
CONTAINER_CATEGORIES = frozenset("UJZ")  # freight container, detachable equipment, chassis
DRUG_CODE_LENGTH = 20


class CodeError(ValueError):
    """A malformed identifier; ``code`` is a stable snake_case reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[CodeError], tuple[str, str]]:
        return (type(self), (self.code, self.message))


# --- ISO 6346 container numbers -------------------------------------------------------------


def _letter_values() -> dict[str, int]:
    # A=10 upwards, skipping 11, 22 and 33 so that no letter is worth a multiple of 11.
    values: dict[str, int] = {}
    number = 10
    for letter in string.ascii_uppercase:
        if number % 11 == 0:
            number += 1
        values[letter] = number
        number += 1
    return values


_CONTAINER_VALUES = _letter_values() | {digit: int(digit) for digit in string.digits}

# Characters OCR mixes up, mapped to what the position must hold.
_AS_DIGIT = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", "B": "8", "Z": "2"})
_AS_LETTER = str.maketrans({"0": "O", "1": "I", "5": "S", "8": "B"})
_CONTAINER_SEPARATORS = str.maketrans("", "", "-/")


def container_check_digit(first10: str) -> int:
    """The ISO 6346 check digit of owner code, category and serial number."""
    if len(first10) != CONTAINER_LENGTH - 1 or any(c not in _CONTAINER_VALUES for c in first10):
        raise CodeError("bad_charset", f"expected 4 letters and 6 digits, got {first10!r}")
    total = sum(_CONTAINER_VALUES[char] << position for position, char in enumerate(first10))
    return total % 11 % 10  # a remainder of 10 is written as 0


def parse_container_number(text: str) -> str:
    """Normalise and validate a container number, e.g. ``csqu 305438-3`` → ``CSQU3054383``."""
    compact = _compact(text)
    if len(compact) != CONTAINER_LENGTH:
        message = f"a container number has {CONTAINER_LENGTH} characters, got {compact!r}"
        raise CodeError("bad_length", message)
    letters = compact[:4].translate(_AS_LETTER)
    digits = compact[4:].translate(_AS_DIGIT)
    if not all(char in string.ascii_uppercase for char in letters):
        raise CodeError("bad_charset", f"owner code and category must be letters: {letters!r}")
    if letters[3] not in CONTAINER_CATEGORIES:
        raise CodeError("bad_category", f"category letter must be U, J or Z, got {letters[3]!r}")
    if not all(char in string.digits for char in digits):
        raise CodeError("bad_charset", f"serial and check digit must be digits: {digits!r}")
    number = letters + digits
    if container_check_digit(number[:10]) != int(number[10]):
        raise CodeError("bad_check_digit", f"{number} has a wrong check digit")
    return number


def _compact(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise CodeError("empty", "no container number")
    # NFKC turns full-width characters, common in Chinese OCR output, into ASCII; OCR may
    # also split the number over lines, so every kind of whitespace goes.
    text = unicodedata.normalize("NFKC", text).upper()
    return "".join(text.split()).translate(_CONTAINER_SEPARATORS)


# --- Chinese drug traceability codes (药品追溯码) ---------------------------------------------


def parse_drug_code(text: str) -> str:
    """Validate a 20-digit drug traceability code (码上放心 platform).

    Only the shape is checked: the platform publishes no check-digit algorithm.
    """
    if not isinstance(text, str) or not text.strip():
        raise CodeError("empty", "no drug traceability code")
    digits = "".join(text.split())
    if len(digits) != DRUG_CODE_LENGTH:
        message = f"a drug traceability code has {DRUG_CODE_LENGTH} digits, got {len(digits)}"
        raise CodeError("bad_length", message)
    if not all(char in string.digits for char in digits):
        raise CodeError("bad_charset", f"a drug traceability code is digits only: {digits!r}")
    return digits
