"""Expected goods over HTTP: ASN lines (inbound) and shipment lines (outbound) per warehouse,
one per pallet, which the ingest workers send down to the warehouse's edge boxes
(``cloud_api/expected/sync.py``), where the dock gates match them.

A line is checked with the kernel's grammar (``cangyun.expected``, through
``store.read_lines``), the one every edge box checks it with again, so its refusals keep
the grammar's codes (``invalid_sscc``, ``missing_item``, ...). ``NewLine`` documents that
grammar; its limits are the kernel's constants. A path naming another tenant's warehouse or
line answers 404 before the body is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from flask import Blueprint, Response
from pydantic import Field

from cangyun.apispec import Media, Page, Query, Reply, operation
from cangyun.bodies import PalletLine
from cangyun.expected import DIRECTIONS, GATE_CODE, GATE_CODE_MAX, STATUSES
from cangyun.fields import Gtin, Text
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor, json_body, json_response, page
from cloud_api.expected import store as expected_store
from cloud_api.expected.store import MAX_LINES, TenantExpected
from cloud_api.platform.auth import (
    caller,
    client_ip,
    engine,
    entitlement,
    require_direction_in_grant,
    requires,
)

bp = Blueprint("expected", __name__)

MAX_BODY = 1024 * 1024
MAX_FILTER = 64
Direction = Literal[DIRECTIONS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]


class NewLine(PalletLine):
    """One expected pallet; give sscc or gtin (or both)"""

    direction: Direction
    gate: str | None = Field(
        None,
        max_length=GATE_CODE_MAX,
        pattern=GATE_CODE.pattern,
        description="the edge gate it should pass (e.g. dock-1); none: any gate",
    )


def _lines_schema() -> dict[str, object]:
    line = NewLine.model_json_schema()
    assert "$defs" not in line, "NewLine must stay flat to be inlined"
    return {
        "oneOf": [
            line,
            {"type": "array", "items": line, "minItems": 1, "maxItems": MAX_LINES},
        ]
    }


LINES = Media(
    "application/json",
    f"one line, or a list of 1-{MAX_LINES} lines taken all or nothing",
    schema=_lines_schema(),
)


class ExpectedLine(Reply):
    """An expected line of a warehouse"""

    id: int
    warehouse: str
    direction: Direction
    sscc: str | None
    gtin: str | None
    lot: str | None
    qty: int
    weight_kg: float | None
    customer: str | None
    reference: str | None
    gate: str | None
    status: Status
    movement_id: str | None
    created_at: str
    closed_at: str | None


class LineFilter(Query):
    status: Status | None = Field(None, description="open, cancelled, received or shipped")
    direction: Direction | None = Field(None, description="in or out")
    sscc: Text(MAX_FILTER) | None = Field(None, description="only this SSCC")
    gtin: Gtin | None = Field(None, description="only this GTIN")
    reference: Text(MAX_FILTER) | None = Field(None, description="only this ASN or shipment number")
    limit: int = Field(100, ge=1, le=1000, description="page size")
    cursor: Text(400) | None = Field(None, description="the `next` value of the previous page")


def store() -> TenantExpected:
    return TenantExpected(engine(), caller().tenant_id)


@bp.post("/warehouses/<code>/expected")
@requires("expected:write")
@operation(
    "Expect pallets at this warehouse (ASN lines in, shipment lines out): one line or a list,"
    " all or nothing; the warehouse's edge boxes get them within seconds",
    body=LINES,
    max_bytes=MAX_BODY,
    responses={
        201: ExpectedLine | Page[ExpectedLine],
        403: "inbound (in) or outbound (out) is not in the tenant's edition",
        404: "warehouse not in this tenant",
        409: "already_expected: an open line has this SSCC (details.index)",
        422: "invalid line (details.field, and details.index in a list)",
    },
)
def add_lines(code: str) -> Response:
    expected = store()
    expected.require_warehouse(code)
    data = json_body(MAX_BODY)
    many = isinstance(data, list)
    items = data if many else [data]
    if not all(isinstance(item, Mapping) for item in items):
        raise ApiError(400, "invalid_body", "send a line object or a list of them")
    lines = expected_store.read_lines(items, indexed=many)
    for direction in sorted({line["direction"] for line in lines}):
        require_direction_in_grant(direction)  # a staff session: inbound / outbound scope
    held = entitlement()
    expected_store.require_features(lines, held.features, held.edition)
    created = expected.add(code, lines, caller(), client_ip(), indexed=many)
    if many:
        return json_response(page(len(created), created, None), 201)
    return json_response(created[0], 201)


@bp.get("/warehouses/<code>/expected")
@requires("expected:read")
@operation(
    "Expected lines of a warehouse, newest first",
    query=LineFilter,
    responses={200: Page[ExpectedLine], 404: "warehouse not in this tenant"},
)
def list_lines(code: str, query: LineFilter) -> Response:
    expected = store()
    expected.require_warehouse(code)
    filters = {
        name: value
        for name in ("status", "direction", "sscc", "gtin", "reference")
        if (value := getattr(query, name))
    }
    before = decode_cursor(query.cursor) if query.cursor else None
    if before is not None and (
        isinstance(before, bool) or not isinstance(before, int) or not 0 < before < 2**62
    ):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, next_id = expected.lines(
        code, filters=filters, before_id=before, limit=query.limit
    )
    return json_response(page(total, items, encode_cursor(next_id) if next_id else None))


@bp.delete("/warehouses/<code>/expected/<int:line_id>")
@requires("expected:write")
@operation(
    "Cancel an open line (again: the same answer); the edge boxes drop it",
    responses={
        200: ExpectedLine,
        404: "not in this tenant",
        409: "line_closed: received or shipped already",
    },
)
def cancel_line(code: str, line_id: int) -> Response:
    return json_response(store().cancel(code, line_id, caller(), client_ip()))
