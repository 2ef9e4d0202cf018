"""Cargo owners (货主) as plain values: field rules shared by the API and the CSV import, and
the CSV format itself. No SQL, no Flask.

Rates are ``Decimal`` yuan and leave this module as strings ("12.50"), so a rate card never
passes through a float on its way to a spreadsheet or a bill.

CSV (docs/crm.md): UTF-8 with a BOM on export so Excel shows Chinese correctly; on import
UTF-8 (BOM or not) and, failing that, GB18030, which is what a Chinese Excel writes for
"CSV (逗号分隔)". Headers may be English or Chinese, in any order; only ``code`` and ``name``
are required. A text cell that a spreadsheet would run as a formula is written with a
leading apostrophe, and one leading apostrophe is removed again on import.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from cangyun.errors import DomainError, Invalid

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# "export.csv" would be shadowed by GET /customers/export.csv and could never be read back.
RESERVED_CODES = frozenset({"export.csv"})
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")

NAME_MAX = 200
CONTACT_NAME_MAX = 100
PHONE_MAX = 32
EMAIL_MAX = 254
ROLE_MAX = 50
CONTRACT_NUMBER_MAX = 64
TERMS_MAX = 2000
NOTE_MAX = 4000
CONTACTS_MAX = 20
CONTRACTS_MAX = 50


@dataclass(frozen=True)
class Rate:
    """One rate-card field: the most a tenant may charge and how many decimals it keeps."""

    name: str
    maximum: Decimal
    places: int


RATES = (
    Rate("storage_per_tonne_day", Decimal("10000"), 4),  # 元/吨·天
    Rate("handling_in_per_piece", Decimal("10000"), 4),  # 元/件
    Rate("handling_out_per_piece", Decimal("10000"), 4),  # 元/件
    Rate("minimum_monthly_charge", Decimal("100000000"), 2),  # 元/月
)
RATE_NAMES = tuple(r.name for r in RATES)
_RATE = {r.name: r for r in RATES}
EDITABLE = ("name", "contacts", "contracts", *RATE_NAMES)


class FieldError(Invalid):
    """A value that breaks a rule; ``field`` names it (``contacts[0].email``)."""

    def __init__(self, field_name: str, message: str, code: str = "invalid_field") -> None:
        super().__init__(message, code=code, field=field_name)


# --- fields ----------------------------------------------------------------------------


def check_code(value: object, field_name: str = "code") -> str:
    if not isinstance(value, str) or not CODE.fullmatch(value.strip()):
        raise FieldError(
            field_name,
            "code must be 1-64 ASCII letters, digits, '_', '.' or '-', starting with a letter"
            " or digit",
        )
    code = value.strip()
    if code in RESERVED_CODES:
        raise FieldError(field_name, f"{code!r} is reserved; choose another code")
    return code


def check_text(
    value: object, field_name: str, limit: int, *, required: bool = False, multiline: bool = True
) -> str:
    """Trimmed text without control characters; free text may span lines, identifiers not."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(field_name, f"{field_name} must be text")
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not text:
        raise FieldError(field_name, f"{field_name} is required", "missing_field")
    if len(text) > limit:
        raise FieldError(field_name, f"{field_name} must be at most {limit} characters")
    allowed = "\n\t" if multiline else ""
    for char in text:
        if char not in allowed and unicodedata.category(char) == "Cc":
            raise FieldError(field_name, f"{field_name} contains a control character")
    return text


def check_money(value: object, field_name: str) -> Decimal:
    """A rate in yuan: a decimal string or JSON number, within the rate's bounds."""
    rate = _RATE[field_name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError(field_name, f'{field_name} must be a decimal string such as "12.50"')
    text = value.strip() if isinstance(value, str) else str(value)
    if len(text) > 40 or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        raise FieldError(field_name, f"{field_name} must be a non-negative decimal such as 12.50")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guarantees it
        raise FieldError(field_name, f"{field_name} is not a number") from exc
    if amount > rate.maximum:
        raise FieldError(field_name, f"{field_name} must be at most {rate.maximum}")
    if amount != amount.quantize(Decimal(1).scaleb(-rate.places)):
        raise FieldError(field_name, f"{field_name} has more than {rate.places} decimals")
    return amount


def money(amount: Decimal) -> str:
    """Yuan with two to four decimals: 12.5 -> "12.50", 0.125 -> "0.125"."""
    text = f"{amount:.4f}"
    if text.endswith("00"):
        return text[:-2]
    return text[:-1] if text.endswith("0") else text


def check_contact(value: object, field_name: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FieldError(field_name, "a contact is an object {name, phone, email, role}")
    unknown = sorted(set(value) - {"name", "phone", "email", "role"})
    if unknown:
        raise FieldError(f"{field_name}.{unknown[0]}", f"unknown contact field {unknown[0]!r}")
    name = check_text(value.get("name"), f"{field_name}.name", CONTACT_NAME_MAX, required=True)
    phone = check_text(value.get("phone"), f"{field_name}.phone", PHONE_MAX, multiline=False)
    email = check_text(value.get("email"), f"{field_name}.email", EMAIL_MAX, multiline=False)
    if email and not EMAIL.match(email):
        raise FieldError(f"{field_name}.email", "not a valid email address")
    role = check_text(value.get("role"), f"{field_name}.role", ROLE_MAX)
    return {"name": name, "phone": phone, "email": email, "role": role}


def check_contacts(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > CONTACTS_MAX:
        raise FieldError("contacts", f"contacts must be a list of at most {CONTACTS_MAX}")
    return [check_contact(item, f"contacts[{i}]") for i, item in enumerate(value)]


def check_contracts(value: object) -> list[dict[str, str | None]]:
    if not isinstance(value, list) or len(value) > CONTRACTS_MAX:
        raise FieldError("contracts", f"contracts must be a list of at most {CONTRACTS_MAX}")
    contracts: list[dict[str, str | None]] = []
    for i, item in enumerate(value):
        where = f"contracts[{i}]"
        if not isinstance(item, dict):
            raise FieldError(where, "a contract is an object {number, starts, ends, terms}")
        unknown = sorted(set(item) - {"number", "starts", "ends", "terms"})
        if unknown:
            raise FieldError(f"{where}.{unknown[0]}", f"unknown contract field {unknown[0]!r}")
        number = check_text(
            item.get("number"),
            f"{where}.number",
            CONTRACT_NUMBER_MAX,
            required=True,
            multiline=False,
        )
        starts = _day(item.get("starts"), f"{where}.starts")
        ends = _day(item.get("ends"), f"{where}.ends") if item.get("ends") is not None else None
        if ends is not None and ends < starts:
            raise FieldError(f"{where}.ends", "a contract cannot end before it starts")
        contracts.append(
            {
                "number": number,
                "starts": starts.isoformat(),
                "ends": ends.isoformat() if ends else None,
                "terms": check_text(item.get("terms"), f"{where}.terms", TERMS_MAX),
            }
        )
    return contracts


def _day(value: object, field_name: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise FieldError(field_name, f"{field_name} must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FieldError(field_name, f"{field_name} is not a calendar date") from exc


def customer_values(data: Mapping[str, Any], *, current_code: str | None = None) -> dict[str, Any]:
    """Checked column values from a JSON body: a new customer, or (with ``current_code``)
    the changes of a partial update. The code of an existing customer never changes."""
    creating = current_code is None
    unknown = sorted(set(data) - {"code", *EDITABLE})
    if unknown:
        raise FieldError(unknown[0], f"unknown field {unknown[0]!r}", "unknown_field")
    values: dict[str, Any] = {}
    if creating:
        if "code" not in data:
            raise FieldError("code", "code is required", "missing_field")
        values["code"] = check_code(data["code"])
        if "name" not in data:
            raise FieldError("name", "name is required", "missing_field")
    elif "code" in data and data["code"] != current_code:
        raise FieldError("code", "a customer's code cannot be changed", "immutable_field")
    if "name" in data:
        values["name"] = check_text(data["name"], "name", NAME_MAX, required=True)
    if "contacts" in data or creating:
        values["contacts"] = check_contacts(data.get("contacts", []))
    if "contracts" in data or creating:
        values["contracts"] = check_contracts(data.get("contracts", []))
    for name in RATE_NAMES:
        if name in data:
            values[name] = check_money(data[name], name)
        elif creating:
            values[name] = Decimal(0)
    return values


def note_text(data: Mapping[str, Any]) -> str:
    """The text of a new note from its JSON body ``{"text": ...}``."""
    unknown = sorted(set(data) - {"text"})
    if unknown:
        raise FieldError(unknown[0], f"unknown field {unknown[0]!r}", "unknown_field")
    return check_text(data.get("text"), "text", NOTE_MAX, required=True)


# --- CSV -------------------------------------------------------------------------------

COLUMNS = (
    "code",
    "name",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_role",
    *RATE_NAMES,
)
HEADER_ZH = {
    "code": "货主编码",
    "name": "货主名称",
    "contact_name": "联系人",
    "contact_phone": "电话",
    "contact_email": "邮箱",
    "contact_role": "职务",
    "storage_per_tonne_day": "仓储费(元/吨·天)",
    "handling_in_per_piece": "入库费(元/件)",
    "handling_out_per_piece": "出库费(元/件)",
    "minimum_monthly_charge": "月最低收费(元)",
}
CONTACT_COLUMNS = {
    "contact_name": "name",
    "contact_phone": "phone",
    "contact_email": "email",
    "contact_role": "role",
}
BOM = "\ufeff"
# Leading characters that make Excel or WPS evaluate a cell (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _header_key(cell: str) -> str:
    """English or Chinese column name without its unit: '仓储费（元/吨·天）' -> '仓储费'."""
    text = cell.replace("（", "(").replace("）", ")")
    text = re.sub(r"[\s_]+", "", text)
    text = re.sub(r"\(.*\)$", "", text)
    return text.lower()


_KNOWN = {_header_key(c): c for c in COLUMNS} | {_header_key(z): c for c, z in HEADER_ZH.items()}


class CsvError(DomainError, ValueError):
    """The file as a whole cannot be read: not text, or not CSV at all (HTTP 400)."""

    code = "invalid_csv"
    malformed = True

    def __init__(self, message: str) -> None:
        super().__init__(message)


class HeaderError(CsvError, Invalid):
    """Readable CSV whose header is wrong: an unknown, repeated or missing column (422)."""

    code = "invalid_header"
    malformed = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.details["field"] = "header"


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    field: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class CsvCustomer:
    """One valid data row. ``rates`` and ``contact`` hold only what the file's columns say:
    a rate column absent from the file leaves an existing customer's rate as it is, and a
    row whose contact cells are all blank leaves the contacts as they are."""

    row: int
    code: str
    name: str
    contact: dict[str, str] | None
    rates: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedCsv:
    columns: tuple[str, ...]
    customers: tuple[CsvCustomer, ...]
    errors: tuple[RowError, ...]


def decode(data: bytes) -> str:
    if not data.strip():
        raise CsvError("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise CsvError("the file is neither UTF-8 nor GB18030 text") from exc
    return text


def parse_csv(data: bytes) -> ParsedCsv:
    """Read and check every row; the caller writes nothing unless ``errors`` is empty."""
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise CsvError("the file is empty")
        columns = _columns(header)
        customers: list[CsvCustomer] = []
        errors: list[RowError] = []
        first_row: dict[str, int] = {}
        for index, cells in enumerate(reader, start=2):
            parsed = _row(index, columns, cells, errors)
            if parsed is None:
                continue
            if parsed.code in first_row:
                errors.append(
                    RowError(
                        index, "code", f"code {parsed.code} is also on row {first_row[parsed.code]}"
                    )
                )
                continue
            first_row[parsed.code] = index
            customers.append(parsed)
    except csv.Error as exc:
        raise CsvError(f"not valid CSV: {exc}") from exc
    return ParsedCsv(tuple(c for c in columns if c), tuple(customers), tuple(errors))


def _columns(header: list[str]) -> list[str]:
    """Column name per position; '' for a column without a header, which is ignored."""
    columns: list[str] = []
    for position, cell in enumerate(header, start=1):
        key = _header_key(cell.lstrip(BOM))
        if not key:
            columns.append("")
            continue
        column = _KNOWN.get(key)
        if column is None:
            raise HeaderError(f"unknown column {cell.strip()!r} (column {position})")
        if column in columns:
            raise HeaderError(f"column {column} appears twice")
        columns.append(column)
    for required in ("code", "name"):
        if required not in columns:
            raise HeaderError(f"the header has no {required} ({HEADER_ZH[required]}) column")
    return columns


def _row(
    index: int, columns: list[str], cells: list[str], errors: list[RowError]
) -> CsvCustomer | None:
    if not any(cell.strip() for cell in cells):
        return None  # spreadsheets leave blank rows at the end
    if any(cell.strip() for cell in cells[len(columns) :]):
        errors.append(RowError(index, "row", "more cells than the header has columns"))
        return None
    raw = {
        column: _unescape(cells[i]) if i < len(cells) else ""
        for i, column in enumerate(columns)
        if column
    }
    found = len(errors)
    code = name = ""
    contact: dict[str, str] | None = None
    rates: dict[str, Decimal] = {}
    try:
        code = check_code(raw["code"])
    except FieldError as exc:
        errors.append(RowError(index, exc.field, exc.message))
    try:
        name = check_text(raw["name"], "name", NAME_MAX, required=True)
    except FieldError as exc:
        errors.append(RowError(index, exc.field, exc.message))
    given = {CONTACT_COLUMNS[c]: raw[c] for c in CONTACT_COLUMNS if c in raw}
    if any(v.strip() for v in given.values()):
        try:
            contact = check_contact(given, "contact")
        except FieldError as exc:
            errors.append(RowError(index, exc.field.replace("contact.", "contact_"), exc.message))
    for rate in RATE_NAMES:
        if rate in raw:
            try:
                rates[rate] = check_money(raw[rate], rate) if raw[rate].strip() else Decimal(0)
            except FieldError as exc:
                errors.append(RowError(index, exc.field, exc.message))
    if len(errors) > found:
        return None
    return CsvCustomer(index, code, name, contact, rates)


def _escape(text: str) -> str:
    # Any cell starting with an apostrophe gets one more, so import can always drop one.
    return "'" + text if text.startswith((*FORMULA_START, "'")) else text


def _unescape(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def customer_cells(customer: Mapping[str, Any]) -> list[str]:
    """One export row from a customer as the API shows it (rates as strings or Decimals)."""
    contacts = customer.get("contacts") or []
    first = contacts[0] if contacts else {}
    cells = [customer["code"], customer["name"]]
    cells += [first.get(key, "") for key in CONTACT_COLUMNS.values()]
    text = [_escape(str(c)) for c in cells]
    return text + [money(Decimal(str(customer[r]))) for r in RATE_NAMES]


def header(lang: str = "zh") -> list[str]:
    return [HEADER_ZH[c] if lang == "zh" else c for c in COLUMNS]


def format_csv(customers: Iterable[Mapping[str, Any]], *, lang: str = "zh") -> Iterator[str]:
    """The export as text chunks: BOM and header first, then about a thousand rows each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(header(lang))
    for count, customer in enumerate(customers, start=1):
        writer.writerow(customer_cells(customer))
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
