"""定制服务 custom services over HTTP (docs/custom-services.md).

The tenant asks (``/custom-services``), platform staff quote (``/platform/custom-services``),
the tenant accepts and gets a prepaid order at the quoted price, paid like any other order.
Tenants need an edition with value-added services to ask and to accept, as for every add-on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from flask import Blueprint, Response
from pydantic import Field

from cangyun.apispec import Body, Page, Query, Reply, operation
from cangyun.fields import Code, Email, Name, Text
from cangyun.httpapi import MAX_ROW_ID, json_response, page
from cloud_api.custom_services import store
from cloud_api.custom_services.store import NewQuote, NewRequest, TenantCustomServices
from cloud_api.platform.auth import (
    caller,
    client_ip,
    engine,
    feature,
    platform_staff_only,
    requires,
)

bp = Blueprint("custom_services", __name__)
MAX_BODY = 32 * 1024
Status = Literal[store.STATUSES]  # type: ignore[valid-type]


# --- bodies -------------------------------------------------------------------------------


class NewCustomService(Body):
    """What the tenant wants built, where, and whom to call"""

    title: Name(120)
    description: Text(4000, min_length=1, multiline=True) = Field(
        description="what to build or change, in the tenant's words"
    )
    warehouses: list[Code] = Field(
        default_factory=list, max_length=50, description="codes of the warehouses it concerns"
    )
    private_deployment: bool = Field(False, description="私有化部署: run it on our own servers")
    contact_name: Name(100)
    contact_phone: Text(32) = ""
    contact_email: Email


class CustomServiceQuote(Body):
    """Staff's answer: a price, what it covers, and when it is delivered"""

    price_yuan: Decimal = Field(gt=0, le=Decimal(10**9), max_digits=12, decimal_places=2)
    scope: Text(4000, min_length=1, multiline=True) = Field(description="what the price covers")
    delivery_working_days: int = Field(
        ge=store.DELIVERY_DAYS[0],
        le=store.DELIVERY_DAYS[1],
        strict=True,
        description="交付周期, working days after payment (the seed: 5 to 15)",
    )
    valid_days: int = Field(30, ge=1, le=90, strict=True, description="days it can be accepted")


class RequestNote(Body):
    text: Text(2000, min_length=1, multiline=True)


class RequestRefusal(Body):
    reason: Text(500, min_length=1, multiline=True) = Field(description="told to the tenant")


class CustomServiceFilter(Query):
    status: Status | None = Field(None, description="only requests in this state")
    limit: int = Field(100, ge=1, le=500, description="page size")
    cursor: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="the `next` value of the previous page"
    )


# --- answers ------------------------------------------------------------------------------


class RequestContact(Reply):
    name: str
    phone: str
    email: str


class QuoteTerms(Reply):
    price_yuan: str = Field(description="a decimal, yuan")
    scope: str
    delivery_working_days: int
    valid_until: str
    quoted_by: str
    quoted_at: str


class CustomServiceOrder(Reply):
    id: int = Field(description="GET /api/v1/orders/{id} says what to pay and how")
    status: Literal["pending_payment", "paid", "cancelled"]
    total_yuan: str
    paid_at: str | None


class RequestStep(Reply):
    side: Literal["tenant", "platform"]
    actor: str
    action: Literal["submitted", "quoted", "accepted", "withdrawn", "declined", "message", "paid"]
    body: str
    at: str


class CustomService(Reply):
    """A custom-service request (定制服务) and where it stands"""

    id: int
    tenant: str
    tenant_name: str
    title: str
    description: str
    warehouses: list[str]
    private_deployment: bool
    contact: RequestContact
    status: Status = Field(description="paid and cancelled are its order's")
    quote: QuoteTerms | None = Field(description="the newest quote; null until staff quote")
    order: CustomServiceOrder | None = Field(description="once accepted")
    created_by: str
    created_at: str
    updated_at: str
    history: list[RequestStep] | None = Field(
        None, description="every step, oldest first (one request only)"
    )


NO_REQUEST = {404: "no such request (in this tenant)"}
CLOSED = {409: "request_closed, not_quoted, quote_expired or request_changed"}


def tenant_store() -> TenantCustomServices:
    return TenantCustomServices(engine(), caller().tenant_id)


def listed(total: int, items: list[dict], limit: int) -> Response:
    last = str(items[-1]["id"]) if len(items) == limit else None
    return json_response(page(total, items, last))


# --- the tenant ---------------------------------------------------------------------------


@bp.post("/custom-services")
@requires("billing:manage")
@feature("value_added_services")
@operation(
    "Ask the platform for custom work (定制服务); staff answer with a quote",
    body=NewCustomService,
    max_bytes=MAX_BODY,
    responses={201: CustomService, 404: "a warehouse that is not this tenant's"},
)
def submit(body: NewCustomService) -> Response:
    new = NewRequest(
        title=body.title,
        description=body.description,
        warehouses=tuple(body.warehouses),
        private_deployment=body.private_deployment,
        contact_name=body.contact_name,
        contact_phone=body.contact_phone,
        contact_email=body.contact_email,
    )
    return json_response(tenant_store().submit(new, caller(), client_ip()), 201)


@bp.get("/custom-services")
@requires("billing:manage")
@operation(
    "My custom-service requests, newest first",
    query=CustomServiceFilter,
    responses={200: Page[CustomService]},
)
def list_requests(query: CustomServiceFilter) -> Response:
    total, items = tenant_store().requests(query.status, query.limit, query.cursor)
    return listed(total, items, query.limit)


@bp.get("/custom-services/<int:request_id>")
@requires("billing:manage")
@operation(
    "One request with its quote, order and history", responses={200: CustomService, **NO_REQUEST}
)
def get_request(request_id: int) -> Response:
    return json_response(tenant_store().request(request_id))


@bp.post("/custom-services/<int:request_id>/accept")
@requires("billing:manage")
@feature("value_added_services")
@operation(
    "Accept the quote: a prepaid order at the quoted price is placed (pay it as any order)",
    responses={200: CustomService, **NO_REQUEST, **CLOSED},
)
def accept(request_id: int) -> Response:
    return json_response(tenant_store().accept(request_id, caller(), client_ip()))


@bp.post("/custom-services/<int:request_id>/withdraw")
@requires("billing:manage")
@operation(
    "Withdraw a request not yet accepted", responses={200: CustomService, **NO_REQUEST, **CLOSED}
)
def withdraw(request_id: int) -> Response:
    return json_response(tenant_store().withdraw(request_id, caller(), client_ip()))


@bp.post("/custom-services/<int:request_id>/messages")
@requires("billing:manage")
@operation(
    "Write to platform staff on a request",
    body=RequestNote,
    max_bytes=MAX_BODY,
    responses={200: CustomService, **NO_REQUEST},
)
def write(request_id: int, body: RequestNote) -> Response:
    return json_response(tenant_store().write(request_id, body.text, caller(), client_ip()))


# --- platform staff -----------------------------------------------------------------------


@bp.get("/platform/custom-services")
@platform_staff_only
@operation(
    "Platform staff: every tenant's custom-service requests, newest first",
    query=CustomServiceFilter,
    responses={200: Page[CustomService], 403: "not platform staff"},
)
def list_platform_requests(query: CustomServiceFilter) -> Response:
    total, items = store.platform_requests(engine(), query.status, query.limit, query.cursor)
    return listed(total, items, query.limit)


@bp.get("/platform/custom-services/<int:request_id>")
@platform_staff_only
@operation(
    "Platform staff: one request with its history",
    responses={200: CustomService, 403: "not platform staff", **NO_REQUEST},
)
def get_platform_request(request_id: int) -> Response:
    return json_response(store.platform_request(engine(), request_id))


@bp.post("/platform/custom-services/<int:request_id>/quote")
@platform_staff_only
@operation(
    "Platform staff: quote a price, scope and delivery time (again: the new quote counts)",
    body=CustomServiceQuote,
    max_bytes=MAX_BODY,
    responses={200: CustomService, 403: "not platform staff", **NO_REQUEST, **CLOSED},
)
def quote(request_id: int, body: CustomServiceQuote) -> Response:
    offer = NewQuote(body.price_yuan, body.scope, body.delivery_working_days, body.valid_days)
    return json_response(store.quote(engine(), request_id, offer, caller(), client_ip()))


@bp.post("/platform/custom-services/<int:request_id>/decline")
@platform_staff_only
@operation(
    "Platform staff: decline a request the platform cannot take on",
    body=RequestRefusal,
    max_bytes=MAX_BODY,
    responses={200: CustomService, 403: "not platform staff", **NO_REQUEST, **CLOSED},
)
def decline(request_id: int, body: RequestRefusal) -> Response:
    return json_response(store.decline(engine(), request_id, body.reason, caller(), client_ip()))


@bp.post("/platform/custom-services/<int:request_id>/messages")
@platform_staff_only
@operation(
    "Platform staff: write to the tenant on a request",
    body=RequestNote,
    max_bytes=MAX_BODY,
    responses={200: CustomService, 403: "not platform staff", **NO_REQUEST},
)
def staff_write(request_id: int, body: RequestNote) -> Response:
    return json_response(store.staff_write(engine(), request_id, body.text, caller(), client_ip()))
