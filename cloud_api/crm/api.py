"""CRM (客户关系管理): cargo owners (货主), notes, timeline, CSV export and import.

The bodies below apply the rules of ``cloud_api.crm.records`` (the code grammar, rates as
exact decimals), the same rules the CSV import and the console apply.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from flask import Blueprint, Response, request
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from cangyun.apispec import Body, Media, Page, Query, Reply, operation
from cangyun.fields import Day, Text
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor, json_response, page
from cangyun.movement import MOVEMENT_TYPES
from cloud_api.crm import records
from cloud_api.crm.store import MOVEMENT, NOTE, Actor, TenantCustomers, TimelineKey
from cloud_api.platform.auth import caller, client_ip, engine, requires

bp = Blueprint("crm", __name__)

MAX_BODY = 512 * 1024  # 20 contacts and 50 contracts with long Chinese terms fit
MAX_IMPORT = 5 * 1024 * 1024
MAX_QUERY = 100
MAX_CURSOR = 400
# What browsers, curl and spreadsheets call a CSV upload.
CSV_TYPES = {
    "",
    "text/csv",
    "application/csv",
    "text/plain",
    "application/octet-stream",
    "application/vnd.ms-excel",
    "application/x-www-form-urlencoded",
}
K = TypeVar("K")


# --- fields -----------------------------------------------------------------------------


def _not_reserved(code: str) -> str:
    if code in records.RESERVED_CODES:
        raise ValueError(f"{code!r} is reserved; choose another code")
    return code


CustomerCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=64, pattern=records.CODE.pattern),
    AfterValidator(_not_reserved),
    Field(
        description="货主编码: what movements carry as `customer`",
        json_schema_extra={"not": {"enum": sorted(records.RESERVED_CODES)}},
    ),
]
CustomerName = Annotated[
    Text(records.NAME_MAX, min_length=1, multiline=True), Field(description="货主名称")
]
# The contact's email is kept as written (not lowercased): it is shown back, not used to log in.
ContactEmail = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=records.EMAIL_MAX,
        pattern=r"^$|^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,190}\.[^@\s\x00-\x1f\x7f]{2,}$",
    ),
]
IsoDay = Annotated[Day, PlainSerializer(date.isoformat, return_type=str)]


def Rate(name: str, unit: str) -> Any:  # noqa: N802
    """Yuan as an exact decimal: a string such as "12.50", or a JSON number."""
    rate = next(r for r in records.RATES if r.name == name)
    top = str(rate.maximum)
    whole, places = len(top) - 1, rate.places
    schema = {
        "anyOf": [
            {
                "type": "string",
                "pattern": f"^([0-9]{{1,{whole}}}(\\.[0-9]{{1,{places}}})?"
                f"|{top}(\\.0{{1,{places}}})?)$",
            },
            {"type": "number", "minimum": 0, "maximum": int(rate.maximum)},
        ],
        "description": f"yuan per {unit}, 0-{top}, at most {places} decimals",
        "examples": ["12.50"],
    }
    return Annotated[
        Decimal,
        BeforeValidator(lambda value: records.check_money(value, name)),
        WithJsonSchema(schema),
    ]


StorageRate = Rate("storage_per_tonne_day", "tonne-day (仓储费)")
InRate = Rate("handling_in_per_piece", "piece received (入库费)")
OutRate = Rate("handling_out_per_piece", "piece shipped (出库费)")
MonthlyMinimum = Rate("minimum_monthly_charge", "month (月最低收费)")


# --- bodies -----------------------------------------------------------------------------


class Contact(Body):
    name: Text(records.CONTACT_NAME_MAX, min_length=1, multiline=True)
    phone: Text(records.PHONE_MAX) = ""
    email: ContactEmail = ""
    role: Text(records.ROLE_MAX, multiline=True) = ""


class Contract(Body):
    number: Text(records.CONTRACT_NUMBER_MAX, min_length=1)
    starts: IsoDay
    ends: IsoDay | None = Field(None, description="null: open-ended")
    terms: Text(records.TERMS_MAX, multiline=True) = ""

    @field_validator("ends")
    @classmethod
    def _not_before_start(cls, ends: date | None, info: ValidationInfo) -> date | None:
        starts = info.data.get("starts")
        if ends is not None and starts is not None and ends < starts:
            raise ValueError("a contract cannot end before it starts")
        return ends


Contacts = Annotated[list[Contact], Field(max_length=records.CONTACTS_MAX)]
Contracts = Annotated[list[Contract], Field(max_length=records.CONTRACTS_MAX)]


class NewCustomer(Body):
    code: CustomerCode
    name: CustomerName
    contacts: Contacts = []
    contracts: Contracts = []
    storage_per_tonne_day: StorageRate = Decimal(0)
    handling_in_per_piece: InRate = Decimal(0)
    handling_out_per_piece: OutRate = Decimal(0)
    minimum_monthly_charge: MonthlyMinimum = Decimal(0)


class CustomerChange(Body):
    """The fields to change; those left out (or null) keep their value. Lists are replaced."""

    # Accepted so a client may send back what it read; the store refuses a different code.
    code: SkipJsonSchema[str | None] = None
    name: CustomerName | None = None
    contacts: Contacts | None = None
    contracts: Contracts | None = None
    storage_per_tonne_day: StorageRate | None = None
    handling_in_per_piece: InRate | None = None
    handling_out_per_piece: OutRate | None = None
    minimum_monthly_charge: MonthlyMinimum | None = None


class NewNote(Body):
    text: Text(records.NOTE_MAX, min_length=1, multiline=True)


CSV_SCHEMA = {"type": "string", "format": "binary", "minLength": 1}
CSV_UPLOAD = (
    Media("text/csv", "the CSV file (UTF-8 or GB18030)", CSV_SCHEMA),
    Media("application/octet-stream", "the CSV file", CSV_SCHEMA),
)


# --- queries ----------------------------------------------------------------------------


class PageQuery(Query):
    limit: int = Field(100, ge=1, le=1000, description="page size")
    cursor: Text(MAX_CURSOR) | None = Field(None, description="the `next` value of the last page")


class CustomerSearch(PageQuery):
    q: Text(MAX_QUERY) = Field(
        "", description="search text: code, name, contact names, phones and emails"
    )


class ExportQuery(Query):
    lang: Literal["zh", "en"] = Field("zh", description="header language")


# --- answers ----------------------------------------------------------------------------


class ContactReply(Reply):
    name: str
    phone: str
    email: str
    role: str


class ContractReply(Reply):
    number: str
    starts: str
    ends: str | None
    terms: str


class Customer(Reply):
    """A cargo owner (货主) with contacts, contracts and rate card (yuan as strings)"""

    code: str
    name: str
    contacts: list[ContactReply]
    contracts: list[ContractReply]
    storage_per_tonne_day: str
    handling_in_per_piece: str
    handling_out_per_piece: str
    minimum_monthly_charge: str
    created_at: str
    updated_at: str


class Note(Reply):
    """A note on a customer"""

    id: int
    author: str
    text: str
    created_at: str


class TimelineMovementBody(Reply):
    id: int
    movement_id: str
    type: Literal[MOVEMENT_TYPES]  # type: ignore[valid-type]
    warehouse: str
    device: str
    gtin: str | None
    sku: str | None
    lot: str | None
    qty: int
    qty_delta: int
    weight_kg: float | None
    location: str | None
    to_location: str | None
    operator: str | None
    occurred_at: str


class TimelineMovement(Reply):
    kind: Literal["movement"]
    at: str
    movement: TimelineMovementBody


class TimelineNote(Reply):
    kind: Literal["note"]
    at: str
    note: Note


TimelineEntry = Annotated[TimelineMovement | TimelineNote, Field(discriminator="kind")]


class TimelinePage(Page[TimelineEntry]):
    """The customer's movements and notes, newest first"""


class ImportResult(Reply):
    """How many customers the import created and updated"""

    created: int
    updated: int


# --- helpers ----------------------------------------------------------------------------


def customers_store() -> TenantCustomers:
    return TenantCustomers(engine(), caller().tenant_id)


def actor() -> Actor:
    return Actor.of(caller(), client_ip())


def _cursor(text: str | None, read: Callable[[Any], K | None]) -> K | None:
    """The position a cursor names, or 400 when a client sent one we never wrote."""
    if not text:
        return None
    found = read(decode_cursor(text))
    if found is None:
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    return found


def _row_id(value: object) -> bool:
    # Cursors come back from clients: anything beyond BIGINT would make PostgreSQL fail.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _code_key(value: Any) -> str | None:
    return value if isinstance(value, str) and records.CODE.fullmatch(value) else None


def _id_key(value: Any) -> int | None:
    return value if _row_id(value) else None


def _timeline_key(value: Any) -> TimelineKey | None:
    try:
        at, kind, position = value
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None or kind not in (MOVEMENT, NOTE) or not _row_id(position):
        return None
    return TimelineKey(moment, kind, position)


UNKNOWN = {404: "no such customer in this tenant (or deleted)"}


# --- customers --------------------------------------------------------------------------


@bp.get("/customers")
@requires("customers:read")
@operation(
    "Cargo owners (货主); q searches code, name, contact names, phones and emails",
    query=CustomerSearch,
    responses={200: Page[Customer]},
)
def list_customers(query: CustomerSearch) -> Response:
    after = _cursor(query.cursor, _code_key)
    total, items, last = customers_store().search(query.q, after=after, limit=query.limit)
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/customers")
@requires("customers:write")
@operation(
    "Add a customer; rates are yuan as decimal strings",
    body=NewCustomer,
    max_bytes=MAX_BODY,
    responses={201: Customer, 409: "code_taken: also by a deleted customer"},
)
def create_customer(body: NewCustomer) -> Response:
    return json_response(customers_store().create(body.model_dump(), actor()), 201)


@bp.get("/customers/<code>")
@requires("customers:read")
@operation("One customer", responses={200: Customer, **UNKNOWN})
def get_customer(code: str) -> Response:
    return json_response(customers_store().get(code))


@bp.patch("/customers/<code>")
@requires("customers:write")
@operation(
    "Change a customer; fields left out keep their value; the code never changes",
    body=CustomerChange,
    max_bytes=MAX_BODY,
    responses={
        200: Customer,
        **UNKNOWN,
        422: "invalid field (details.field); immutable_field: a different code",
    },
)
def update_customer(code: str, body: CustomerChange) -> Response:
    # Only the top level is partial: a contact or contract sent is stored whole.
    sent = body.model_fields_set
    changes = {k: v for k, v in body.model_dump().items() if k in sent and v is not None}
    return json_response(customers_store().update(code, changes, actor()))


@bp.delete("/customers/<code>")
@requires("customers:write")
@operation(
    "Delete a customer (soft: its code stays taken; movements keep it)",
    responses={204: "deleted", **UNKNOWN},
)
def delete_customer(code: str) -> Response:
    customers_store().delete(code, actor())
    return Response(status=204)


# --- notes and timeline -----------------------------------------------------------------


@bp.get("/customers/<code>/notes")
@requires("customers:read")
@operation(
    "Notes on a customer, newest first", query=PageQuery, responses={200: Page[Note], **UNKNOWN}
)
def list_notes(code: str, query: PageQuery) -> Response:
    before = _cursor(query.cursor, _id_key)
    total, items, last = customers_store().notes(code, before_id=before, limit=query.limit)
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/customers/<code>/notes")
@requires("customers:write")
@operation(
    "Add a note (append-only; the author is the caller)",
    body=NewNote,
    max_bytes=MAX_BODY,
    responses={201: Note, **UNKNOWN},
)
def add_note(code: str, body: NewNote) -> Response:
    return json_response(customers_store().add_note(code, body.text, actor()), 201)


@bp.get("/customers/<code>/timeline")
@requires("customers:read")
@operation(
    "The customer's ledger movements and notes, newest first",
    query=PageQuery,
    responses={200: TimelinePage, **UNKNOWN},
)
def timeline(code: str, query: PageQuery) -> Response:
    after = _cursor(query.cursor, _timeline_key)
    total, items, last = customers_store().timeline(code, after=after, limit=query.limit)
    cursor = encode_cursor([last.at.isoformat(), last.kind, last.id]) if last else None
    return json_response(page(total, items, cursor))


# --- CSV --------------------------------------------------------------------------------


@bp.get("/customers/export.csv")
@requires("customers:read")
@operation(
    "All live customers as CSV (UTF-8 with BOM): rate card and first contact",
    query=ExportQuery,
    responses={200: Media("text/csv", "the customers, one per row", {"type": "string"})},
)
def export_customers(query: ExportQuery) -> Response:
    chunks = records.format_csv(customers_store().export(), lang=query.lang)
    return Response(
        chunks,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@bp.post("/customers/import")
@requires("customers:write")
@operation(
    "Upsert customers by code from CSV; all rows or none (see docs/crm.md)",
    body=CSV_UPLOAD,
    max_bytes=MAX_IMPORT,
    responses={
        200: ImportResult,
        400: "invalid_csv: not readable CSV",
        409: "code_taken: a code was created meanwhile",
        413: "file over 5 MB",
        415: "not a CSV upload",
        422: "invalid_header, or invalid_rows listed in details.rows (at most 50)",
    },
)
def import_customers() -> Response:
    parsed = records.parse_csv(csv_body())
    outcome = customers_store().import_csv(parsed, actor())
    return json_response({"created": outcome.created, "updated": outcome.updated})


def csv_body() -> bytes:
    if request.mimetype not in CSV_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the file with Content-Type: text/csv")
    if request.content_length is not None and request.content_length > MAX_IMPORT:
        raise ApiError(413, "payload_too_large", f"the file exceeds {MAX_IMPORT} bytes")
    data = request.get_data(cache=False)
    if len(data) > MAX_IMPORT:
        raise ApiError(413, "payload_too_large", f"the file exceeds {MAX_IMPORT} bytes")
    return data
