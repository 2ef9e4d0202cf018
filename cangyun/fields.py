"""Field types for declared HTTP bodies (``cangyun.apispec``): one definition of what a code,
a line of text, a GTIN or a timestamp may be, used by every body of edge and cloud.

Each type validates and documents itself: the JSON Schema it shows in OpenAPI is the rule
it applies.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from cangyun import identifiers
from cangyun.timeutil import parse_date, parse_ts

# No control characters (C0 such as NUL and ESC, DEL, C1) in a one-line text; notes may hold
# line breaks. The same set as unicodedata category Cc, which the CRM import refuses.
_ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
_MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


# What a refused pattern asks for, in words: the API answers these, never the expression.
PATTERN_WORDS = {
    _ONE_LINE: "must be one line without control characters",
    _MULTI_LINE: "must not contain control characters",
    identifiers.CODE_PATTERN: "must start with a letter or digit and use only letters, digits,"
    f" _ . - (at most {identifiers.CODE_MAX})",
    identifiers.LOCATION_CODE.pattern: "must start with a letter or digit and use only"
    f" letters, digits, _ . - (at most {identifiers.LOCATION_CODE_MAX})",
}


def Text(max_length: int, *, min_length: int = 0, multiline: bool = False) -> Any:  # noqa: N802
    """Stripped text of at most ``max_length`` characters, without control characters."""
    return Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=min_length,
            max_length=max_length,
            pattern=_MULTI_LINE if multiline else _ONE_LINE,
        ),
    ]


def Name(max_length: int = 200) -> Any:  # noqa: N802
    """Text that must not be empty (a name, a title)."""
    return Text(max_length, min_length=1)


Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=identifiers.CODE_MAX),
    Field(pattern=identifiers.CODE_PATTERN, description="letters, digits, _ . - (≤ 63)"),
]

LocationCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=identifiers.LOCATION_CODE_MAX,
        pattern=identifiers.LOCATION_CODE.pattern,
    ),
]


def _email(value: str) -> str:
    value = value.strip().lower()
    if not identifiers.EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]


def _gtin(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("GTIN must be a string of digits")
    return identifiers.normalize_gtin(value)


Gtin = Annotated[
    str,
    BeforeValidator(_gtin),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{8}$|^[0-9]{12,14}$",
            "description": "GTIN-8/12/13/14 with a valid check digit",
        }
    ),
]


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return parse_ts(value)


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset, e.g. 2026-11-26T09:30:00+08:00",
        }
    ),
]


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value
    return parse_date(value)


Day = Annotated[date, BeforeValidator(_day), WithJsonSchema({"type": "string", "format": "date"})]

# Row ids in paths and bodies: a 32-bit INTEGER on PostgreSQL.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
