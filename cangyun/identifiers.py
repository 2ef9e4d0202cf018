"""Identifiers both sides validate: GTIN and SSCC with their mod-10 check digit, and the
grammar of the short codes people give warehouses, locations, devices and cargo owners."""

from __future__ import annotations

import re

GTIN_LENGTHS = (8, 12, 13, 14)
SSCC_LENGTH = 18


class IdentifierError(ValueError):
    """An identifier with the wrong length, characters or check digit."""


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for ``digits`` (the payload without its check digit).

    Weights 3 and 1 alternate starting with 3 on the rightmost digit.
    """
    if not digits.isdigit() or not digits.isascii():
        raise IdentifierError(f"GS1 keys are digits only: {digits!r}")
    # digits[-1::-2] walks from the rightmost digit leftwards, every second one (weight 3).
    total = 3 * sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2]))
    return (10 - total % 10) % 10


def has_valid_check_digit(code: str) -> bool:
    return (
        len(code) >= 2
        and code.isascii()
        and code.isdigit()
        and gs1_check_digit(code[:-1]) == int(code[-1])
    )


def normalize_gtin(code: str) -> str:
    """Validate a GTIN-8/12/13/14 and return it as GTIN-14 (zero-padded), the GS1 storage form."""
    if not isinstance(code, str):
        raise IdentifierError("GTIN must be a string of digits")
    if len(code) not in GTIN_LENGTHS or not code.isascii() or not code.isdigit():
        raise IdentifierError(f"GTIN must be 8, 12, 13 or 14 digits, got {code!r}")
    if not has_valid_check_digit(code):
        raise IdentifierError(f"GTIN {code} has a wrong check digit")
    return code.zfill(14)


def validate_sscc(code: str) -> str:
    """Validate an 18-digit SSCC (serial shipping container code, the pallet label)."""
    if not isinstance(code, str):
        raise IdentifierError("SSCC must be a string of digits")
    if len(code) != SSCC_LENGTH or not code.isascii() or not code.isdigit():
        raise IdentifierError(f"SSCC must be 18 digits, got {code!r}")
    if not has_valid_check_digit(code):
        raise IdentifierError(f"SSCC {code} has a wrong check digit")
    return code


# --- codes people type: warehouses, zones, locations, devices, cargo owners, gates ----------

CODE_MAX = 63
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
CODE = re.compile(CODE_PATTERN)
# Locations carry one more character: a 63-character zone prefix plus a separator is legal.
LOCATION_CODE_MAX = 64
LOCATION_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")


def is_code(text: object, max_len: int = CODE_MAX) -> bool:
    """A short ASCII name (letters, digits, ``_ . -``, starting with a letter or digit)."""
    return isinstance(text, str) and len(text) <= max_len and CODE.fullmatch(text) is not None
