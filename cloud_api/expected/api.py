"""Expected goods over HTTP: ASN lines (inbound) and shipment lines (outbound) per warehouse,
one per pallet, which the ingest workers send down to the warehouse's edge boxes
(``cloud_api/expected/sync.py``), where the dock gates match them.

Lines are checked with the edge's own rules (``edge.gates.model.parse_ordered_line``), so a
line the cloud accepts is one every box accepts. A path naming another tenant's warehouse or
line answers 404 before the body is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request

from cangyun.errors import NotFound
from cangyun.httpapi import (
    ApiError,
    decode_cursor,
    encode_cursor,
    error_response,
    json_body,
    json_response,
    page,
    query_int,
)
from cangyun.identifiers import IdentifierError, normalize_gtin
from cloud_api.expected.store import STATUSES, AlreadyExpected, LineClosed, TenantExpected
from cloud_api.platform.auth import caller, client_ip, engine, entitlement, requires
from edge.gates.model import GateInputError, parse_ordered_line

bp = Blueprint("expected", __name__)

MAX_LINES = 1000  # lines in one request: an ASN of a few trucks
MAX_BODY = 1024 * 1024
FEATURE_OF = {"in": "inbound", "out": "outbound"}  # 入库管理 / 出库管理
FILTERS = ("status", "direction", "sscc", "gtin", "reference")


def store() -> TenantExpected:
    return TenantExpected(engine(), caller().tenant_id)


@bp.post("/warehouses/<code>/expected")
@requires("expected:write")
def add_lines(code: str) -> Response:
    expected = store()
    expected.require_warehouse(code)
    data = json_body(MAX_BODY)
    many = isinstance(data, list)
    lines = parse_lines(data if many else [data], many=many)
    for direction in sorted({line["direction"] for line in lines}):
        check_feature(FEATURE_OF[direction])
    try:
        created = expected.add(code, lines, caller(), client_ip())
    except AlreadyExpected as exc:
        details = {"field": "sscc", "sscc": exc.sscc, "expected_id": exc.line_id}
        raise ApiError(
            409, "already_expected", f"{exc}; nothing was added", details | index(exc.index, many)
        ) from exc
    if many:
        return json_response(page(len(created), created, None), 201)
    return json_response(created[0], 201)


@bp.get("/warehouses/<code>/expected")
@requires("expected:read")
def list_lines(code: str) -> Response:
    expected = store()
    expected.require_warehouse(code)
    filters = {name: value for name in FILTERS if (value := request.args.get(name))}
    if filters.get("status", "open") not in STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(STATUSES)}")
    if filters.get("direction", "in") not in FEATURE_OF:
        raise ApiError(400, "invalid_parameter", "direction must be in or out")
    if "gtin" in filters:
        try:
            filters["gtin"] = normalize_gtin(filters["gtin"])
        except IdentifierError as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from exc
    for name in ("sscc", "reference"):
        if name in filters and (len(filters[name]) > 64 or "\x00" in filters[name]):
            raise ApiError(400, "invalid_parameter", f"{name} is at most 64 characters")
    limit = query_int("limit", 100, 1, 1000)
    cursor = request.args.get("cursor")
    before = decode_cursor(cursor) if cursor else None
    if before is not None and (
        isinstance(before, bool) or not isinstance(before, int) or not 0 < before < 2**62
    ):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, next_id = expected.lines(code, filters=filters, before_id=before, limit=limit)
    return json_response(page(total, items, encode_cursor(next_id) if next_id else None))


@bp.delete("/warehouses/<code>/expected/<int:line_id>")
@requires("expected:write")
def cancel_line(code: str, line_id: int) -> Response:
    try:
        return json_response(store().cancel(code, line_id, caller(), client_ip()))
    except LineClosed as exc:
        raise ApiError(409, "line_closed", str(exc)) from exc


def parse_lines(items: list[Any], *, many: bool) -> list[dict[str, Any]]:
    """Every line checked before any is stored: all or nothing, the culprit named (and, in a
    list, its index)."""
    if not items:
        raise ApiError(422, "no_lines", "send one line or a non-empty list of lines")
    if len(items) > MAX_LINES:
        raise ApiError(
            422, "too_many_lines", f"at most {MAX_LINES} lines a request; send the rest after"
        )
    lines = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ApiError(400, "invalid_body", "send a line object or a list of them")
        try:
            line, gate = parse_ordered_line(item)
        except GateInputError as exc:
            details = ({"field": exc.field} if exc.field else {}) | index(position, many)
            raise ApiError(422, exc.code, exc.message, details) from exc
        lines.append(
            {
                "direction": line.direction,
                "qty": line.qty,
                "sscc": line.sscc,
                "gtin": line.gtin,
                "lot": line.lot,
                "weight_g": line.weight_g,
                "customer": line.customer,
                "reference": line.reference,
                "gate": gate,
            }
        )
    return lines


def index(position: int, many: bool) -> dict[str, int]:
    return {"index": position} if many else {}


def check_feature(code: str) -> None:
    """Inbound lines need 入库管理 in the tenant's edition, outbound lines 出库管理."""
    held = entitlement()
    if code not in held.features:
        raise ApiError(
            403,
            "feature_not_in_edition",
            f"{code} is not part of the {held.edition or 'current (none bought)'} edition",
            {"feature": code, "edition": held.edition},
        )


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return error_response(404, "not_found", str(exc))


# --- OpenAPI ------------------------------------------------------------------------------


def paths() -> dict[str, Any]:
    from cangyun.openapi import PAGE_PARAMS, operation, path_param, query

    tags = ["expected"]
    text = {"type": "string", "maxLength": 64, "nullable": True}
    line = {
        "type": "object",
        "required": ["direction", "qty"],
        "additionalProperties": False,
        "description": "one expected pallet; give sscc or gtin (or both)",
        "properties": {
            "direction": {"type": "string", "enum": ["in", "out"]},
            "sscc": {"type": "string", "description": "18-digit SSCC", "nullable": True},
            "gtin": {"type": "string", "description": "GTIN-8/12/13/14", "nullable": True},
            "lot": {"type": "string", "maxLength": 20, "nullable": True},
            "qty": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "weight_kg": {"type": "number", "minimum": 0, "maximum": 100_000, "nullable": True},
            "customer": text | {"description": "cargo owner (货主) code"},
            "reference": text | {"description": "ASN or shipment number"},
            "gate": {
                "type": "string",
                "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
                "nullable": True,
                "description": "the edge gate it should pass (e.g. dock-1); none: any gate",
            },
        },
    }
    body = {"oneOf": [line, {"type": "array", "items": line, "minItems": 1, "maxItems": MAX_LINES}]}
    warehouse = path_param("code", "warehouse code")
    read = {401: "no, expired or invalid token", 403: "forbidden"}
    return {
        "/api/v1/warehouses/{code}/expected": {
            "post": operation(
                "Expect pallets at this warehouse (ASN lines in, shipment lines out): one line"
                " or a list, all or nothing; the warehouse's edge boxes get them within"
                " seconds",
                params=[warehouse],
                body=body,
                responses={
                    201: "the line, or {total, items, next} for a list",
                    400: "malformed body",
                    404: "warehouse not in this tenant",
                    409: "already_expected: an open line has this SSCC (details.index)",
                    422: "invalid line (details.field, details.index)",
                }
                | read,
                tags=tags,
            ),
            "get": operation(
                "Expected lines of a warehouse, newest first",
                params=[
                    warehouse,
                    query(
                        "status",
                        "open, cancelled, received or shipped",
                        {"type": "string", "enum": list(STATUSES)},
                    ),
                    query("direction", "in or out", {"type": "string", "enum": ["in", "out"]}),
                    query("sscc", "only this SSCC"),
                    query("gtin", "only this GTIN"),
                    query("reference", "only this ASN or shipment number"),
                    *PAGE_PARAMS,
                ],
                responses={
                    200: "page {total, items, next}",
                    400: "bad parameter",
                    404: "warehouse not in this tenant",
                }
                | read,
                tags=tags,
            ),
        },
        "/api/v1/warehouses/{code}/expected/{line_id}": {
            "delete": operation(
                "Cancel an open line (again: the same answer); the edge boxes drop it",
                params=[warehouse, path_param("line_id", "expected line id", integer=True)],
                responses={
                    200: "the line, cancelled",
                    404: "not in this tenant",
                    409: "line_closed: received or shipped already",
                }
                | read,
                tags=tags,
            )
        },
    }
