"""CRM (客户关系管理): cargo owners (货主), notes, timeline, CSV export and import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request

from cangyun.errors import AlreadyExists, NotFound
from cangyun.httpapi import (
    ApiError,
    decode_cursor,
    encode_cursor,
    json_body,
    json_response,
    page,
    query_int,
)
from cloud_api.crm import records as crm_csv
from cloud_api.crm.records import CsvError, FieldError
from cloud_api.crm.store import (
    MOVEMENT,
    NOTE,
    Actor,
    ImportRejected,
    TenantCustomers,
    TimelineKey,
)
from cloud_api.platform.auth import caller, client_ip, engine, requires

bp = Blueprint("crm", __name__)

MAX_BODY = 512 * 1024  # 20 contacts and 50 contracts with long Chinese terms fit
MAX_IMPORT = 5 * 1024 * 1024
MAX_QUERY = 100
ROW_ERRORS_SHOWN = 50
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


def customers_store() -> TenantCustomers:
    return TenantCustomers(engine(), caller().tenant_id)


def actor() -> Actor:
    return Actor.of(caller(), client_ip())


def json_object() -> dict[str, Any]:
    data = json_body(MAX_BODY)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    return data


def invalid(exc: FieldError) -> ApiError:
    return ApiError(422, exc.code, exc.message, {"field": exc.field})


def not_found(exc: NotFound) -> ApiError:
    return ApiError(404, "not_found", str(exc))


def known_code(code: str) -> str:
    """A path code that cannot exist is answered without asking the database."""
    if not crm_csv.CODE.fullmatch(code):
        raise ApiError(404, "not_found", f"no customer {code!r} in this tenant")
    return code


def bad_cursor() -> ApiError:
    return ApiError(400, "invalid_cursor", "the pagination cursor is not valid")


def row_id(value: object) -> bool:
    # Cursors come back from clients: anything beyond BIGINT would make PostgreSQL fail.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def raw_cursor() -> Any:
    raw = request.args.get("cursor")
    return decode_cursor(raw) if raw else None


def code_cursor() -> str | None:
    value = raw_cursor()
    if value is not None and not (isinstance(value, str) and crm_csv.CODE.fullmatch(value)):
        raise bad_cursor()
    return value


def id_cursor() -> int | None:
    value = raw_cursor()
    if value is not None and not row_id(value):
        raise bad_cursor()
    return value


def timeline_cursor() -> TimelineKey | None:
    value = raw_cursor()
    if value is None:
        return None
    try:
        at, kind, position = value
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError) as exc:
        raise bad_cursor() from exc
    if moment.tzinfo is None or kind not in (MOVEMENT, NOTE) or not row_id(position):
        raise bad_cursor()
    return TimelineKey(moment, kind, position)


# --- customers --------------------------------------------------------------------------


@bp.get("/customers")
@requires("customers:read")
def list_customers() -> Response:
    q = request.args.get("q", "").strip()
    if len(q) > MAX_QUERY or any(ord(ch) < 32 for ch in q):
        raise ApiError(400, "invalid_parameter", f"q must be at most {MAX_QUERY} printable chars")
    limit = query_int("limit", 100, 1, 1000)
    total, items, last = customers_store().search(q, after=code_cursor(), limit=limit)
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/customers")
@requires("customers:write")
def create_customer() -> Response:
    try:
        values = crm_csv.customer_values(json_object())
    except FieldError as exc:
        raise invalid(exc) from exc
    try:
        return json_response(customers_store().create(values, actor()), 201)
    except AlreadyExists as exc:
        raise ApiError(409, "code_taken", str(exc), {"field": "code"}) from exc


@bp.get("/customers/<code>")
@requires("customers:read")
def get_customer(code: str) -> Response:
    try:
        return json_response(customers_store().get(known_code(code)))
    except NotFound as exc:
        raise not_found(exc) from exc


@bp.patch("/customers/<code>")
@requires("customers:write")
def update_customer(code: str) -> Response:
    known_code(code)
    try:
        changes = crm_csv.customer_values(json_object(), current_code=code)
    except FieldError as exc:
        raise invalid(exc) from exc
    try:
        return json_response(customers_store().update(code, changes, actor()))
    except NotFound as exc:
        raise not_found(exc) from exc


@bp.delete("/customers/<code>")
@requires("customers:write")
def delete_customer(code: str) -> Response:
    try:
        customers_store().delete(known_code(code), actor())
    except NotFound as exc:
        raise not_found(exc) from exc
    return Response(status=204)


# --- notes and timeline -----------------------------------------------------------------


@bp.get("/customers/<code>/notes")
@requires("customers:read")
def list_notes(code: str) -> Response:
    limit = query_int("limit", 100, 1, 1000)
    try:
        total, items, last = customers_store().notes(
            known_code(code), before_id=id_cursor(), limit=limit
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/customers/<code>/notes")
@requires("customers:write")
def add_note(code: str) -> Response:
    known_code(code)
    try:
        text = crm_csv.note_text(json_object())
    except FieldError as exc:
        raise invalid(exc) from exc
    try:
        return json_response(customers_store().add_note(code, text, actor()), 201)
    except NotFound as exc:
        raise not_found(exc) from exc


@bp.get("/customers/<code>/timeline")
@requires("customers:read")
def timeline(code: str) -> Response:
    limit = query_int("limit", 100, 1, 1000)
    try:
        total, items, last = customers_store().timeline(
            known_code(code), after=timeline_cursor(), limit=limit
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    cursor = encode_cursor([last.at.isoformat(), last.kind, last.id]) if last else None
    return json_response(page(total, items, cursor))


# --- CSV --------------------------------------------------------------------------------


@bp.get("/customers/export.csv")
@requires("customers:read")
def export_customers() -> Response:
    lang = request.args.get("lang", "zh")
    if lang not in ("zh", "en"):
        raise ApiError(400, "invalid_parameter", "lang must be zh or en")
    chunks = crm_csv.format_csv(customers_store().export(), lang=lang)
    return Response(
        chunks,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@bp.post("/customers/import")
@requires("customers:write")
def import_customers() -> Response:
    parsed = parsed_csv()
    try:
        outcome = customers_store().import_csv(parsed, actor())
    except ImportRejected as exc:
        raise ApiError(
            422,
            "invalid_rows",
            f"{len(exc.errors)} rows are invalid; nothing was imported",
            {
                "field": "file",
                "error_count": len(exc.errors),
                "rows": [e.to_json() for e in exc.errors[:ROW_ERRORS_SHOWN]],
            },
        ) from exc
    except AlreadyExists as exc:
        raise ApiError(409, "code_taken", str(exc)) from exc
    return json_response({"created": outcome.created, "updated": outcome.updated})


def parsed_csv() -> crm_csv.ParsedCsv:
    try:
        return crm_csv.parse_csv(csv_body())
    except CsvError as exc:
        if exc.malformed:
            raise ApiError(400, "invalid_csv", exc.message) from exc
        raise ApiError(422, "invalid_header", exc.message, {"field": "header"}) from exc


def csv_body() -> bytes:
    if request.mimetype not in CSV_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the file with Content-Type: text/csv")
    if request.content_length is not None and request.content_length > MAX_IMPORT:
        raise ApiError(413, "payload_too_large", f"the file exceeds {MAX_IMPORT} bytes")
    data = request.get_data(cache=False)
    if len(data) > MAX_IMPORT:
        raise ApiError(413, "payload_too_large", f"the file exceeds {MAX_IMPORT} bytes")
    return data


# --- OpenAPI ---------------------------------------------------------------------------


def paths() -> dict[str, Any]:
    from cangyun.openapi import PAGE_PARAMS, operation, path_param, query

    # Free text: no control characters except tab and line breaks; one-line text: none at all.
    free = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
    line = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"

    def text(limit: int, pattern: str = free, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "maxLength": limit, "pattern": pattern, **extra}

    def money(whole: int, places: int, maximum: str, unit: str) -> dict[str, Any]:
        top = maximum.replace(".", "\\.")
        return {
            "type": "string",
            "pattern": f"^(\\d{{1,{whole}}}(\\.\\d{{1,{places}}})?|{top}(\\.0{{1,{places}}})?)$",
            "description": f"yuan per {unit}, 0-{maximum}, at most {places} decimals",
            "example": "12.50",
        }

    code = {
        "type": "string",
        "pattern": crm_csv.CODE.pattern,
        "not": {"enum": sorted(crm_csv.RESERVED_CODES)},
        "description": "货主编码: what movements carry as `customer`",
    }
    name = text(crm_csv.NAME_MAX, minLength=1, description="货主名称")
    contact = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": text(crm_csv.CONTACT_NAME_MAX, minLength=1),
            "phone": text(crm_csv.PHONE_MAX, line),
            "email": {
                "type": "string",
                "maxLength": crm_csv.EMAIL_MAX,
                "pattern": "^$|^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]{1,64}@"
                "[^@\\s\\u0000-\\u001f\\u007f-\\u009f]{1,190}\\.[^@\\s\\u0000-\\u001f\\u007f-\\u009f]{2,}$",
            },
            "role": text(crm_csv.ROLE_MAX),
        },
    }
    contract = {
        "type": "object",
        "additionalProperties": False,
        "required": ["number", "starts"],
        "properties": {
            "number": text(crm_csv.CONTRACT_NUMBER_MAX, line, minLength=1),
            "starts": {"type": "string", "format": "date"},
            "ends": {"type": "string", "format": "date", "nullable": True},
            "terms": text(crm_csv.TERMS_MAX),
        },
    }
    editable: dict[str, Any] = {
        "name": name,
        "contacts": {"type": "array", "maxItems": crm_csv.CONTACTS_MAX, "items": contact},
        "contracts": {"type": "array", "maxItems": crm_csv.CONTRACTS_MAX, "items": contract},
        "storage_per_tonne_day": money(4, 4, "10000", "tonne-day (仓储费)"),
        "handling_in_per_piece": money(4, 4, "10000", "piece received (入库费)"),
        "handling_out_per_piece": money(4, 4, "10000", "piece shipped (出库费)"),
        "minimum_monthly_charge": money(8, 2, "100000000", "month (月最低收费)"),
    }
    create = {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "name"],
        "properties": {"code": code, **editable},
    }
    patch = {"type": "object", "additionalProperties": False, "properties": editable}
    note = {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {"text": text(crm_csv.NOTE_MAX, minLength=1)},
    }
    by_code = [{**path_param("code", "customer code (货主编码)"), "schema": code}]
    auth = {401: "no, expired or invalid token", 403: "role or API key may not"}
    unknown = {404: "no such customer in this tenant (or deleted)"}
    tags = ["crm"]
    export = operation(
        "All live customers as CSV (UTF-8 with BOM): rate card and first contact",
        params=[
            query("lang", "header language", {"type": "string", "enum": ["zh", "en"]}),
        ],
        responses={200: "text/csv", 400: "bad parameter"} | auth,
        tags=tags,
    )
    export["responses"]["200"]["content"] = {"text/csv": {"schema": {"type": "string"}}}
    import_ = operation(
        "Upsert customers by code from CSV; all rows or none (see docs/crm.md)",
        responses={
            200: "{created, updated}",
            400: "not readable CSV",
            409: "a code was created meanwhile",
            413: "file over 5 MB",
            415: "not a CSV upload",
            422: "bad header, or invalid rows listed in details.rows (at most 50)",
        }
        | auth,
        tags=tags,
    )
    csv_schema = {"schema": {"type": "string", "format": "binary", "minLength": 1}}
    import_["requestBody"] = {
        "required": True,
        "content": {"text/csv": csv_schema, "application/octet-stream": csv_schema},
    }
    delete = operation(
        "Delete a customer (soft: its code stays taken; movements keep it)",
        params=by_code,
        responses={204: "deleted"} | unknown | auth,
        tags=tags,
    )
    delete["responses"]["204"].pop("content")
    return {
        "/api/v1/customers": {
            "get": operation(
                "Cargo owners (货主); q searches code, name, contact names, phones and emails",
                params=[
                    query("q", "search text", {"type": "string", "maxLength": MAX_QUERY}),
                    *PAGE_PARAMS,
                ],
                responses={200: "page {total, items, next}", 400: "bad parameter"} | auth,
                tags=tags,
            ),
            "post": operation(
                "Add a customer; rates are yuan as decimal strings",
                body=create,
                responses={
                    201: "customer",
                    400: "malformed body",
                    409: "code taken (also by a deleted customer)",
                    422: "invalid field (details.field)",
                }
                | auth,
                tags=tags,
            ),
        },
        "/api/v1/customers/export.csv": {"get": export},
        "/api/v1/customers/import": {"post": import_},
        "/api/v1/customers/{code}": {
            "get": operation(
                "One customer",
                params=by_code,
                responses={200: "customer"} | unknown | auth,
                tags=tags,
            ),
            "patch": operation(
                "Change a customer; fields left out keep their value; the code never changes",
                params=by_code,
                body=patch,
                responses={
                    200: "customer",
                    400: "malformed body",
                    422: "invalid field (details.field)",
                }
                | unknown
                | auth,
                tags=tags,
            ),
            "delete": delete,
        },
        "/api/v1/customers/{code}/notes": {
            "get": operation(
                "Notes on a customer, newest first",
                params=by_code + PAGE_PARAMS,
                responses={200: "page {total, items, next}", 400: "bad parameter"} | unknown | auth,
                tags=tags,
            ),
            "post": operation(
                "Add a note (append-only; the author is the caller)",
                params=by_code,
                body=note,
                responses={
                    201: "note",
                    400: "malformed body",
                    422: "invalid field (details.field)",
                }
                | unknown
                | auth,
                tags=tags,
            ),
        },
        "/api/v1/customers/{code}/timeline": {
            "get": operation(
                "The customer's ledger movements and notes, newest first",
                params=by_code + PAGE_PARAMS,
                responses={200: "page {total, items, next}", 400: "bad parameter"} | unknown | auth,
                tags=tags,
            )
        },
    }
