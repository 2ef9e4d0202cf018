"""Catalog, orders, usage and licence over HTTP; paying an order (docs/billing.md "Paying").

A tenant never marks its own order paid: the order tells it what to pay and how, platform
staff confirm a bank transfer (``/platform/orders``), and WeChat Pay's signed notification
arrives on the public ``gateways`` blueprint (``/payments/wechatpay/notify``). Both end in
``store.settle``, the only way a package becomes active.

An order body is priced by ``catalog.quote``, which keeps the seed's rules and their codes
(``one_edition_per_order``, ``billing_mode_not_offered``, ``prepaid_only``, ...; HTTP 400).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NoReturn, TypeVar

from flask import Blueprint, Response, current_app, request
from pydantic import Field

from cangyun.apispec import Body, Media, Page, Query, Reply, operation
from cangyun.fields import Day, Text
from cangyun.httpapi import MAX_ROW_ID, ApiError, json_response, page
from cangyun.timeutil import utcnow
from cloud_api.billing import catalog, licensing, payments, service
from cloud_api.billing import store as billing_store
from cloud_api.billing.catalog import PackageSizes
from cloud_api.billing.payments import WechatPayConfig
from cloud_api.billing.store import Payer, TenantBilling
from cloud_api.platform.auth import (
    caller,
    client_ip,
    engine,
    entitlement,
    platform_staff_only,
    requires,
)

bp = Blueprint("billing", __name__)
# Gateways call without a bearer token (they prove themselves by signature), so their routes
# live outside the API blueprint that authenticates every request; cloud_api.app mounts it.
gateways = Blueprint("gateways", __name__, url_prefix="/api/v1/payments")
F = TypeVar("F", bound=Callable[..., Any])
MAX_BODY = 16 * 1024
MAX_USAGE_DAYS = 731

Edition = Literal[catalog.EDITION_ORDER]  # type: ignore[valid-type]
AddOn = Literal[catalog.VALUE_ADDED_CODES]  # type: ignore[valid-type]
BillingMode = Literal[tuple(catalog.UNITS)]  # type: ignore[valid-type]
Unit = Literal[tuple(catalog.UNITS.values())]  # type: ignore[valid-type]
# What an order may carry beyond the catalog: an accepted custom-service quote.
OrderMode = Literal[(*catalog.UNITS, catalog.QUOTED)]  # type: ignore[valid-type]
OrderUnit = Literal[(*catalog.UNITS.values(), catalog.SERVICE)]  # type: ignore[valid-type]


# --- bodies and queries -----------------------------------------------------------------


class NewOrder(Body):
    """One edition, or one add-on, per order"""

    edition: Edition | None = None
    add_on: AddOn | None = Field(None, description="a value-added service instead of an edition")
    billing_mode: BillingMode | None = Field(None, description="needed with an edition")
    quantity: int = Field(ge=1, le=1000, strict=True, description="套 (packages)")
    business_area_m2: float | None = Field(
        None, gt=0, le=1_000_000, description="a period package is priced by business area"
    )
    # Part of the order document so the catalog can refuse them by name.
    payment: Text(20) = Field("prepaid", description="only prepaid is sold (prepaid_only)")
    auto_renew: bool = Field(
        False, description="never: a renewal is a new order (auto_renewal_not_supported)"
    )


class TransferConfirmation(Body):
    """What platform staff saw arrive on the platform's account"""

    amount_yuan: Decimal = Field(
        gt=0, max_digits=16, decimal_places=2, description="the amount received, exactly"
    )
    bank_reference: Text(64, min_length=4) = Field(
        description="the bank's reference of the transfer (流水号); the same one again is a no-op"
    )


class OrderFilter(Query):
    status: Literal["pending_payment", "paid", "cancelled"] = Field(
        "pending_payment", description="orders in this state"
    )
    limit: int = Field(100, ge=1, le=500, description="page size")
    # An order id: INTEGER on PostgreSQL, so bounded there, not at what a bigint holds.
    cursor: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="the `next` value of the previous page"
    )


class UsageRange(Query):
    from_: Day | None = Field(None, alias="from", description="first day, YYYY-MM-DD (1st)")
    to: Day | None = Field(None, description="last day, YYYY-MM-DD (default today)")


# --- answers ----------------------------------------------------------------------------


class CatalogPrice(Reply):
    billing_mode: BillingMode
    price_yuan: int
    area: Literal["le_100", "gt_100"] | None
    unit: Unit
    units_per_package: float
    mode_name: str


class CatalogEdition(Reply):
    code: Edition
    name: str
    name_en: str
    features: list[str]
    prices: list[CatalogPrice]


class CatalogFeature(Reply):
    code: str
    name: str
    name_en: str


class ValueAddedService(Reply):
    code: AddOn
    name: str
    name_en: str
    price_yuan_per_year: float | None = Field(description="null: quoted on request")


class Catalog(Reply):
    """Editions, prices per 套, feature matrix, value-added services"""

    editions: list[CatalogEdition]
    features: list[CatalogFeature]
    value_added_services: list[ValueAddedService]
    area_limit_m2: int
    payment: Literal["prepaid"]
    auto_renewal: bool
    refunds: bool


class PayeeAccount(Reply):
    name: str
    bank: str
    account: str


class BankTransfer(Reply):
    payee: PayeeAccount
    reference: str = Field(description="write it in the transfer's remark (附言)")


class OnlinePayment(Reply):
    gateway: Literal["wechatpay"]
    mchid: str
    out_trade_no: str
    amount_fen: int


class HowToPay(Reply):
    """What to pay for an order, and how: 对公转账 (staff confirm it) or the online gateway"""

    amount_yuan: str = Field(description="exactly this, as a decimal")
    default: Literal["bank_transfer"]
    bank_transfer: BankTransfer
    wechatpay: OnlinePayment | None = Field(description="null while the gateway is off")


class Order(Reply):
    """An order and its state"""

    id: int
    edition: Edition | None
    add_on: AddOn | None
    billing_mode: OrderMode = Field(description="quoted: an accepted custom-service quote")
    unit: OrderUnit
    area: Literal["le_100", "gt_100"] | None
    business_area_m2: float | None
    quantity: int
    unit_price_yuan: float
    total_yuan: float
    units: float
    status: Literal["pending_payment", "paid", "cancelled"]
    payment_reference: str | None = Field(description="<gateway>:<its transaction id>, once paid")
    created_at: str
    paid_at: str | None
    cancelled_at: str | None
    payment: HowToPay | None = Field(description="how to pay it; null unless pending_payment")


class PlatformOrder(Order):
    """An order of any tenant, for platform staff"""

    tenant: str
    tenant_name: str


class UsageDay(Reply):
    day: str
    closed: bool
    revision: int = Field(description="0 while the day is open (computed live)")
    tonne_days: float
    pieces_in: int
    pieces_out: int


class Usage(Reply):
    """Tonne-days and pieces per business day"""

    from_: str = Field(alias="from")
    to: str
    timezone: str
    tonne_days: float
    pieces: int
    pieces_in: int
    pieces_out: int
    by_day: list[UsageDay]


class Quota(Reply):
    unit: Unit
    remaining: float
    total: float


class Package(Reply):
    id: int
    order_id: int
    edition: Edition | None
    add_on: AddOn | None
    billing_mode: BillingMode
    unit: Unit
    total: float
    consumed: float
    remaining: float
    remaining_unit: Literal["tonne_day", "piece", "day"]
    status: Literal["active", "scheduled", "expired", "exhausted"]
    starts_at: str
    expires_at: str | None
    activated_at: str


class DeviceLicence(Reply):
    device: str
    serial: str
    issued_at: str
    valid_until: str
    inbound_allowed: bool
    add_ons: list[str]


class Licence(Reply):
    """What the tenant holds: edition, features, packages, days left, each box's licence"""

    edition: Edition | None
    features: list[str]
    add_ons: list[str]
    inbound_allowed: bool
    quotas: list[Quota]
    period_ends_at: str | None
    packages: list[Package]
    days_left_estimate: float | None
    devices: list[DeviceLicence]


# --- routes -----------------------------------------------------------------------------


def sizes() -> PackageSizes:
    return PackageSizes.from_settings(current_app.extensions["cangyun.settings"].billing)


def store() -> TenantBilling:
    return TenantBilling(engine(), caller().tenant_id)


def how_to_pay(order: dict[str, Any]) -> dict[str, Any]:
    """The order as answered: with what to pay and how while it waits for payment."""
    if order["status"] != "pending_payment":
        return order | {"payment": None}
    settings = current_app.extensions["cangyun.settings"].payment
    reference = payments.order_reference(order["id"])
    total = Decimal(str(order["total_yuan"])).quantize(Decimal("0.01"))
    online = None
    if settings.wechatpay_mchid:
        online = {
            "gateway": payments.WECHATPAY,
            "mchid": settings.wechatpay_mchid,
            "out_trade_no": reference,
            "amount_fen": payments.to_fen(total),
        }
    return order | {
        "payment": {
            "amount_yuan": str(total),
            "default": payments.BANK_TRANSFER,
            "bank_transfer": {
                "payee": {
                    "name": settings.payee_name,
                    "bank": settings.payee_bank,
                    "account": settings.payee_account,
                },
                "reference": reference,
            },
            "wechatpay": online,
        }
    }


def wechatpay_config() -> WechatPayConfig | None:
    """Read once, when the app starts (cloud_api.app): the keys do not change while it runs."""
    return current_app.extensions["cangyun.wechatpay"]


NO_ORDER = {404: "no such order in this tenant"}


@bp.get("/catalog")
@operation(
    "Editions, prices per 套, feature matrix, value-added services",
    public=True,
    responses={200: Catalog},
)
def get_catalog() -> Response:
    return json_response(catalog.catalog_json(sizes()))


@bp.post("/orders")
@requires("billing:manage")
@operation(
    "Place a prepaid order for one edition (or one add-on)",
    body=NewOrder,
    max_bytes=MAX_BODY,
    responses={
        201: Order,
        400: "not orderable (one_edition_per_order, billing_mode_not_offered, ...)",
        403: "feature_not_in_edition: add-ons need an edition with value-added services",
    },
)
def create_order(body: NewOrder) -> Response:
    quote = catalog.quote(body.model_dump(), sizes())
    held = entitlement()
    catalog.require_orderable(quote, held.features, held.edition)
    area = body.business_area_m2 if quote.billing_mode == "period" and quote.edition else None
    order = store().create_order(
        quote, Decimal(str(area)) if area is not None else None, caller(), client_ip()
    )
    return json_response(how_to_pay(order), 201)


@bp.get("/orders")
@requires("billing:manage")
@operation("Orders, newest first", responses={200: Page[Order]})
def list_orders() -> Response:
    items = [how_to_pay(o) for o in store().orders()]
    return json_response(page(len(items), items, None))


@bp.get("/orders/<int:order_id>")
@requires("billing:manage")
@operation("One order, and while unpaid what to pay and how", responses={200: Order, **NO_ORDER})
def get_order(order_id: int) -> Response:
    return json_response(how_to_pay(store().order(order_id)))


@bp.post("/orders/<int:order_id>/cancel")
@requires("billing:manage")
@operation(
    "Cancel an unpaid order (again: the same answer)",
    responses={200: Order, **NO_ORDER, 409: "already_paid"},
)
def cancel_order(order_id: int) -> Response:
    return json_response(how_to_pay(store().cancel(order_id, caller(), client_ip())))


@bp.post("/orders/<int:order_id>/refund")
@requires("billing:manage")
@operation(
    "Always 409 refunds_not_supported (no refunds once paid); the attempt is audited",
    responses={409: "refunds_not_supported", **NO_ORDER},
)
def refund_order(order_id: int) -> NoReturn:
    store().refuse_refund(order_id, caller(), client_ip())


# --- paying: platform staff and the online gateway ---------------------------------------

PAYMENT_REFUSALS = {
    404: "unknown_order",
    409: "amount_mismatch, already_paid, order_cancelled or reference_used (all audited)",
}


@bp.get("/platform/orders")
@platform_staff_only
@operation(
    "Platform staff: every tenant's orders in one state (default: awaiting payment)",
    query=OrderFilter,
    responses={200: Page[PlatformOrder]},
)
def list_platform_orders(query: OrderFilter) -> Response:
    total, items = billing_store.orders_by_status(engine(), query.status, query.limit, query.cursor)
    last = str(items[-1]["id"]) if len(items) == query.limit else None
    return json_response(page(total, [how_to_pay(o) for o in items], last))


@bp.post("/platform/orders/<int:order_id>/confirm")
@platform_staff_only
@operation(
    "Platform staff: a bank transfer (对公转账) arrived; activates the package when the amount"
    " is the order's total",
    body=TransferConfirmation,
    max_bytes=MAX_BODY,
    responses={200: Order, **PAYMENT_REFUSALS},
)
def confirm_order(order_id: int, body: TransferConfirmation) -> Response:
    who = caller()
    payer = Payer(who.actor, who.user_id, client_ip())
    order = service.confirm_transfer(
        engine(), order_id, body.amount_yuan, body.bank_reference, payer
    )
    return json_response(how_to_pay(order))


NOTIFICATION = Media(
    "application/json",
    "WeChat Pay API v3 notification (TRANSACTION.SUCCESS), verified byte for byte as sent",
    {"type": "object"},
)


@gateways.post("/wechatpay/notify")
@operation(
    "WeChat Pay API v3 payment notification: signature, age, merchant and amount checked,"
    " then the order settled once (the same transaction again: 204 and nothing more)",
    body=NOTIFICATION,
    max_bytes=MAX_BODY,
    public=True,
    tags=["billing"],
    responses={
        204: "received",
        401: "bad_signature or stale_timestamp (audited)",
        403: "wrong_merchant, or gateway_off: no merchant configured (audited)",
        422: "bad_notification or not_a_payment (audited)",
        **PAYMENT_REFUSALS,
    },
)
def wechatpay_notify() -> Response:
    service.receive_wechatpay(
        engine(), wechatpay_config(), request.headers, raw_body(), utcnow(), client_ip()
    )
    return Response(status=204)


def raw_body() -> bytes:
    """The body exactly as sent: the signature covers these bytes, not a re-encoding."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"body exceeds {MAX_BODY} bytes")
    data = request.get_data(cache=False)
    if len(data) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"body exceeds {MAX_BODY} bytes")
    return data


@bp.get("/usage")
@requires("usage:read")
@operation(
    "Tonne-days and pieces per business day (tenant time zone); default this month",
    query=UsageRange,
    responses={200: Usage, 400: f"from..to is not 1..{MAX_USAGE_DAYS} days"},
)
def get_usage(query: UsageRange) -> Response:
    billing = store()
    today = utcnow().astimezone(billing.zone()).date()
    first = query.from_ or today.replace(day=1)
    last = query.to or today
    if last < first or (last - first).days > MAX_USAGE_DAYS:
        raise ApiError(400, "invalid_parameter", f"from..to must be 1..{MAX_USAGE_DAYS} days")
    return json_response(billing.usage(first, last))


@bp.get("/licence")
@requires("usage:read")
@operation(
    "Edition, features, packages with remaining and expiry, days left, and the"
    " offline licence each edge box holds",
    responses={200: Licence},
)
def get_licence() -> Response:
    billing = store()
    now = utcnow()
    held = billing.entitlement(now)
    body = held.to_json() | {
        "packages": billing.packages(now),
        "days_left_estimate": _days_left(billing, held, now),
        # The offline licence each edge box holds (re-issued daily and on payment).
        "devices": licensing.device_licences(engine(), caller().tenant_id),
    }
    return json_response(body)


def _days_left(billing: TenantBilling, held: Any, now: datetime) -> float | None:
    """Days until the tenant runs out: flow at the current stock level, items at the recent
    daily rate, a year package by the calendar. The soonest one counts."""
    estimates = []
    for quota in held.quotas:
        if quota.unit == "tonne_day":
            tonnes = billing.current_stock_tonnes()
            if tonnes > 0:
                estimates.append(float(quota.remaining / tonnes))
        elif quota.unit == "piece":
            rate = billing.average_daily_pieces(now=now)
            if rate > 0:
                estimates.append(float(quota.remaining / rate))
    if held.period_ends_at is not None:
        estimates.append((held.period_ends_at - now).total_seconds() / 86400)
    return round(min(estimates), 1) if estimates else None
