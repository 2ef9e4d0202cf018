"""The GS1 Application Identifier table, as data.

Follows the AI table of the GS1 General Specifications (current edition). Each row gives the
AI, its data field as components, how the value is to be read and the data title. The
parser in ``ocr_service.gs1`` is driven entirely by this table.

Component notation, joined with ``+``:

- ``N6``    six digits; ``N..8`` one to eight digits
- ``X``     GS1 AI encodable character set 82; ``Y`` set 39; ``Z`` set 64 (base64url)
- ``#``     suffix: the component ends in a GS1 mod-10 check digit
- ``[..]``  optional component (only trailing components are optional)

Reading column: ``-`` plain text, ``count`` an integer quantity, ``temp`` a temperature
in hundredths with an optional trailing minus, or a date layout such as ``YYMMD0`` (a
YYMMDD date where day 00 is allowed and means the last day of the month).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Character sets named by the component letters.
DIGITS = frozenset("0123456789")
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
CSET39 = frozenset("#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# base64url; '=' is allowed as padding at the end of a digital signature.
CSET64 = frozenset("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz=")
CHARSETS: dict[str, frozenset[str]] = {"N": DIGITS, "X": CSET82, "Y": CSET39, "Z": CSET64}

# The standard's table of AI prefixes whose element strings have a predefined total length
# (AI digits included) and therefore never need an FNC1 separator. 04, 14, 18 and 19 are
# reserved there and have no AI yet.
# fmt: off
PREDEFINED_LENGTHS: dict[str, int] = {
    "00": 20, "01": 16, "02": 16, "03": 16, "04": 18,
    "11": 8, "12": 8, "13": 8, "14": 8, "15": 8, "16": 8, "17": 8, "18": 8, "19": 8,
    "20": 4,
    "31": 10, "32": 10, "33": 10, "34": 10, "35": 10, "36": 10,
    "41": 16,
}
# fmt: on

# Date layouts that the parser understands; fields in brackets are optional.
DATE_FORMATS = frozenset(
    {
        "YYMMD0",
        "YYMMDD",
        "YYMMD0HHMM",
        "YYMMDDHHMM",
        "YYMMDD[HHMM]",
        "YYMMDD[YYMMDD]",
        "YYMMDDHH[MM[SS]]",
        "YYYYMMDD",
        "YYYYMMDDHHMM",
    }
)

KINDS = frozenset({"text", "count", "date", "decimal", "currency_decimal", "temperature"})


@dataclass(frozen=True)
class Component:
    """One part of an AI's data field."""

    charset: str  # "N", "X", "Y" or "Z"
    min_length: int
    max_length: int
    optional: bool = False
    check_digit: bool = False  # the last digit is a GS1 mod-10 check digit

    @property
    def fixed(self) -> bool:
        return self.min_length == self.max_length


@dataclass(frozen=True)
class AIDef:
    """One Application Identifier and the rules for its data field."""

    ai: str
    title: str
    components: tuple[Component, ...]
    kind: str = "text"
    date_format: str | None = None
    decimals: int | None = None  # implied decimal places of the measure and amount AIs

    @property
    def predefined(self) -> bool:
        """True when the element never needs an FNC1 separator after it."""
        return self.ai[:2] in PREDEFINED_LENGTHS

    @property
    def min_length(self) -> int:
        return sum(c.min_length for c in self.components if not c.optional)

    @property
    def max_length(self) -> int:
        return sum(c.max_length for c in self.components)

    @property
    def fixed_length(self) -> int | None:
        return self.max_length if self.min_length == self.max_length else None

    @property
    def check_digit(self) -> bool:
        return any(c.check_digit for c in self.components)

    @property
    def is_date(self) -> bool:
        return self.date_format is not None


# AI, data field, reading, title. Families with an n suffix are generated further down.
_TABLE = """
00    N18#                    -                SSCC
01    N14#                    -                GTIN
02    N14#                    -                CONTENT
03    N14#                    -                MTO GTIN
10    X..20                   -                BATCH/LOT
11    N6                      YYMMD0           PROD DATE
12    N6                      YYMMD0           DUE DATE
13    N6                      YYMMD0           PACK DATE
15    N6                      YYMMD0           BEST BEFORE or BEST BY
16    N6                      YYMMD0           SELL BY
17    N6                      YYMMD0           USE BY or EXPIRY
20    N2                      -                VARIANT
21    X..20                   -                SERIAL
22    X..20                   -                CPV
235   X..28                   -                TPX
240   X..30                   -                ADDITIONAL ID
241   X..30                   -                CUST. PART No.
242   N..6                    -                MTO VARIANT
243   X..20                   -                PCN
250   X..30                   -                SECONDARY SERIAL
251   X..30                   -                REF. TO SOURCE
253   N13#+[X..17]            -                GDTI
254   X..20                   -                GLN EXTENSION COMPONENT
255   N13#+[N..12]            -                GCN
30    N..8                    count            VAR. COUNT
37    N..8                    count            COUNT
400   X..30                   -                ORDER NUMBER
401   X..30                   -                GINC
402   N17#                    -                GSIN
403   X..30                   -                ROUTE
410   N13#                    -                SHIP TO LOC
411   N13#                    -                BILL TO
412   N13#                    -                PURCHASE FROM
413   N13#                    -                SHIP FOR LOC
414   N13#                    -                LOC No.
415   N13#                    -                PAY TO
416   N13#                    -                PROD/SERV LOC
417   N13#                    -                PARTY
420   X..20                   -                SHIP TO POST
421   N3+X..9                 -                SHIP TO POST
422   N3                      -                ORIGIN
423   N3+[N3]+[N3]+[N3]+[N3]  -                COUNTRY - INITIAL PROCESS.
424   N3                      -                COUNTRY - PROCESS.
425   N3+[N3]+[N3]+[N3]+[N3]  -                COUNTRY - DISASSEMBLY
426   N3                      -                COUNTRY - FULL PROCESS
427   X..3                    -                ORIGIN SUBDIVISION
4300  X..35                   -                SHIP TO COMP
4301  X..35                   -                SHIP TO NAME
4302  X..70                   -                SHIP TO ADD1
4303  X..70                   -                SHIP TO ADD2
4304  X..70                   -                SHIP TO SUB
4305  X..70                   -                SHIP TO LOC
4306  X..70                   -                SHIP TO REG
4307  X2                      -                SHIP TO COUNTRY
4308  X..30                   -                SHIP TO PHONE
4309  N10+N10                 -                SHIP TO GEO
4310  X..35                   -                RTN TO COMP
4311  X..35                   -                RTN TO NAME
4312  X..70                   -                RTN TO ADD1
4313  X..70                   -                RTN TO ADD2
4314  X..70                   -                RTN TO SUB
4315  X..70                   -                RTN TO LOC
4316  X..70                   -                RTN TO REG
4317  X2                      -                RTN TO COUNTRY
4318  X..20                   -                RTN TO POST
4319  X..30                   -                RTN TO PHONE
4320  X..35                   -                SRV DESCRIPTION
4321  N1                      -                DANGEROUS GOODS
4322  N1                      -                AUTH TO LEAVE
4323  N1                      -                SIG REQUIRED
4324  N6+N4                   YYMMD0HHMM       NOT BEF DEL DT
4325  N6+N4                   YYMMD0HHMM       NOT AFT DEL DT
4326  N6                      YYMMDD           REL DATE
4330  N6+[X1]                 temp             MAX TEMP F.
4331  N6+[X1]                 temp             MAX TEMP C.
4332  N6+[X1]                 temp             MIN TEMP F.
4333  N6+[X1]                 temp             MIN TEMP C.
7001  N13                     -                NSN
7002  X..30                   -                MEAT CUT
7003  N6+N4                   YYMMDDHHMM       EXPIRY TIME
7004  N..4                    -                ACTIVE POTENCY
7005  X..12                   -                CATCH AREA
7006  N6                      YYMMDD           FIRST FREEZE DATE
7007  N6+[N6]                 YYMMDD[YYMMDD]   HARVEST DATE
7008  X..3                    -                AQUATIC SPECIES
7009  X..10                   -                FISHING GEAR TYPE
7010  X..2                    -                PROD METHOD
7011  N6+[N4]                 YYMMDD[HHMM]     TEST BY DATE
7020  X..20                   -                REFURB LOT
7021  X..20                   -                FUNC STAT
7022  X..20                   -                REV STAT
7023  X..30                   -                GIAI - ASSEMBLY
7040  N1+X3                   -                UIC+EXT
7041  X..4                    -                UFRGT UNIT TYPE
710   X..20                   -                NHRN PZN
711   X..20                   -                NHRN CIP
712   X..20                   -                NHRN CN
713   X..20                   -                NHRN DRN
714   X..20                   -                NHRN AIM
715   X..20                   -                NHRN NDC
716   X..20                   -                NHRN AIC
7240  X..20                   -                PROTOCOL
7241  N2                      -                AIDC MEDIA TYPE
7242  X..25                   -                VCN
7250  N8                      YYYYMMDD         DOB
7251  N8+N4                   YYYYMMDDHHMM     DOB TIME
7252  N1                      -                BIO SEX
7253  X..40                   -                FAMILY NAME
7254  X..40                   -                GIVEN NAME
7255  X..10                   -                SUFFIX
7256  X..90                   -                FULL NAME
7257  X..70                   -                PERSON ADDR
7258  X3                      -                BIRTH SEQUENCE
7259  X..40                   -                BABY
8001  N4+N5+N3+N1+N1          -                DIMENSIONS
8002  X..20                   -                CMT No.
8003  N1+N13#+[X..16]         -                GRAI
8004  X..30                   -                GIAI
8005  N6                      -                PRICE PER UNIT
8006  N14#+N4                 -                ITIP
8007  X..34                   -                IBAN
8008  N6+N2+[N2]+[N2]         YYMMDDHH[MM[SS]] PROD TIME
8009  X..50                   -                OPTSEN
8010  Y..30                   -                CPID
8011  N..12                   -                CPID SERIAL
8012  X..20                   -                VERSION
8013  X..25                   -                GMN
8014  X..25                   -                MUDI
8017  N18#                    -                GSRN - PROVIDER
8018  N18#                    -                GSRN - RECIPIENT
8019  N..10                   -                SRIN
8020  X..25                   -                REF No.
8026  N14#+N4                 -                ITIP CONTENT
8030  Z..90                   -                DIGSIG
8110  X..70                   -                COUPON CODE
8111  N4                      -                POINTS
8112  X..70                   -                PAPERLESS COUPON CODE
8200  X..70                   -                PRODUCT URL
90    X..30                   -                INTERNAL
"""

# Trade and logistic measures: AI prefix and title; the fourth digit n (0-5) is the number
# of implied decimals of the six-digit value. 338n, 339n, 358n and 359n are not allocated.
_MEASURES = """
310 NET WEIGHT (kg)
311 LENGTH (m)
312 WIDTH (m)
313 HEIGHT (m)
314 AREA (m²)
315 NET VOLUME (l)
316 NET VOLUME (m³)
320 NET WEIGHT (lb)
321 LENGTH (in)
322 LENGTH (ft)
323 LENGTH (yd)
324 WIDTH (in)
325 WIDTH (ft)
326 WIDTH (yd)
327 HEIGHT (in)
328 HEIGHT (ft)
329 HEIGHT (yd)
330 GROSS WEIGHT (kg)
331 LENGTH (m), log
332 WIDTH (m), log
333 HEIGHT (m), log
334 AREA (m²), log
335 VOLUME (l), log
336 VOLUME (m³), log
337 KG PER m²
340 GROSS WEIGHT (lb)
341 LENGTH (in), log
342 LENGTH (ft), log
343 LENGTH (yd), log
344 WIDTH (in), log
345 WIDTH (ft), log
346 WIDTH (yd), log
347 HEIGHT (in), log
348 HEIGHT (ft), log
349 HEIGHT (yd), log
350 AREA (in²)
351 AREA (ft²)
352 AREA (yd²)
353 AREA (in²), log
354 AREA (ft²), log
355 AREA (yd²), log
356 NET WEIGHT (t oz)
357 NET VOLUME (oz)
360 NET VOLUME (qt)
361 NET VOLUME (gal.)
362 VOLUME (qt), log
363 VOLUME (gal.), log
364 VOLUME (in³)
365 VOLUME (ft³)
366 VOLUME (yd³)
367 VOLUME (in³), log
368 VOLUME (ft³), log
369 VOLUME (yd³), log
"""

# Amounts and prices: prefix, highest n, data field, reading, title.
_AMOUNTS = """
390  9  N..15     decimal           AMOUNT
391  9  N3+N..15  currency_decimal  AMOUNT
392  9  N..15     decimal           PRICE
393  9  N3+N..15  currency_decimal  PRICE
394  3  N4        decimal           PRCNT OFF
395  5  N6        decimal           PRICE/UoM
"""

_COMPONENT = re.compile(r"(\[)?([NXYZ])(\.\.)?(\d+)(#)?(\])?")


def _component(token: str) -> Component:
    match = _COMPONENT.fullmatch(token)
    if match is None or bool(match[1]) != bool(match[6]):
        raise ValueError(f"bad component {token!r} in the GS1 AI table")
    length = int(match[4])
    return Component(
        charset=match[2],
        min_length=1 if match[3] else length,
        max_length=length,
        optional=bool(match[1]),
        check_digit=bool(match[5]),
    )


def _components(spec: str) -> tuple[Component, ...]:
    return tuple(_component(token) for token in spec.split("+"))


def _reading(word: str) -> tuple[str, str | None]:
    """Kind and date layout from the table's reading column."""
    if word == "-":
        return "text", None
    if word == "temp":
        return "temperature", None
    if word in DATE_FORMATS:
        return "date", word
    if word in KINDS:
        return word, None
    raise ValueError(f"bad reading {word!r} in the GS1 AI table")


def _rows(table: str, columns: int) -> list[list[str]]:
    return [line.split(maxsplit=columns - 1) for line in table.strip().splitlines()]


def _build() -> dict[str, AIDef]:
    defs: list[AIDef] = []
    for ai, spec, reading, title in _rows(_TABLE, 4):
        kind, date_format = _reading(reading)
        decimals = 2 if kind == "temperature" else None  # 4330-4333 are in hundredths
        defs.append(AIDef(ai, title, _components(spec), kind, date_format, decimals))
    for prefix, title in _rows(_MEASURES, 2):
        for n in range(6):
            defs.append(AIDef(f"{prefix}{n}", title, _components("N6"), "decimal", decimals=n))
    for prefix, top, spec, kind, title in _rows(_AMOUNTS, 5):
        for n in range(int(top) + 1):
            defs.append(AIDef(f"{prefix}{n}", title, _components(spec), kind, decimals=n))
    # Numbered repeats: processors 0-9, certifications 1-10, company internal 91-99.
    for n in range(10):
        defs.append(AIDef(f"703{n}", f"PROCESSOR # {n}", _components("N3+X..27")))
        defs.append(AIDef(f"723{n}", f"CERT # {n + 1}", _components("X2+X..28")))
    for ai in range(91, 100):
        defs.append(AIDef(str(ai), "INTERNAL", _components("X..90")))
    table = {d.ai: d for d in defs}
    if len(table) != len(defs):
        raise ValueError("duplicate AI in the GS1 AI table")
    return dict(sorted(table.items()))


AIS: dict[str, AIDef] = _build()
