"""Catalog, orders, usage and licence over HTTP."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, request

from cangyun.errors import NotFound
from cangyun.httpapi import ApiError, json_body, json_response, page
from cangyun.timeutil import utcnow
from cloud_api.billing import catalog, licensing
from cloud_api.billing.catalog import OrderError, PackageSizes
from cloud_api.billing.store import BillingError, TenantBilling
from cloud_api.platform.auth import caller, client_ip, engine, entitlement, requires

bp = Blueprint("billing", __name__)
MAX_USAGE_DAYS = 731


def sizes() -> PackageSizes:
    return PackageSizes.from_settings(current_app.extensions["cangyun.settings"].billing)


def store() -> TenantBilling:
    return TenantBilling(engine(), caller().tenant_id)


def _not_found(exc: NotFound) -> ApiError:
    return ApiError(404, "not_found", str(exc))


@bp.get("/catalog")
def get_catalog() -> Response:
    return json_response(catalog.catalog_json(sizes()))


@bp.post("/orders")
@requires("billing:manage")
def create_order() -> Response:
    data = json_body(16 * 1024)
    try:
        quote = catalog.quote(data, sizes())
    except OrderError as exc:
        raise ApiError(400, exc.code, exc.message, {"field": exc.field}) from exc
    if quote.add_on is not None and "value_added_services" not in entitlement().features:
        raise ApiError(
            403,
            "feature_not_in_edition",
            "value-added services are not part of the current edition",
            {"feature": "value_added_services", "edition": entitlement().edition},
        )
    area = (
        data.get("business_area_m2") if quote.billing_mode == "period" and quote.edition else None
    )
    order = store().create_order(
        quote, Decimal(str(area)) if area is not None else None, caller(), client_ip()
    )
    return json_response(order, 201)


@bp.get("/orders")
@requires("billing:manage")
def list_orders() -> Response:
    items = store().orders()
    return json_response(page(len(items), items, None))


@bp.get("/orders/<int:order_id>")
@requires("billing:manage")
def get_order(order_id: int) -> Response:
    try:
        return json_response(store().order(order_id))
    except NotFound as exc:
        raise _not_found(exc) from exc


@bp.post("/orders/<int:order_id>/pay")
@requires("billing:manage")
def pay_order(order_id: int) -> Response:
    """Record a payment (the gateway is out of scope: its reference is what we keep)."""
    data = json_body(16 * 1024)
    reference = data.get("payment_reference") if isinstance(data, dict) else None
    if not isinstance(reference, str) or not 4 <= len(reference.strip()) <= 100:
        raise ApiError(
            422,
            "missing_field",
            "payment_reference (4-100 characters) is required",
            {"field": "payment_reference"},
        )
    try:
        return json_response(store().pay(order_id, reference.strip(), caller(), client_ip()))
    except NotFound as exc:
        raise _not_found(exc) from exc
    except BillingError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


@bp.post("/orders/<int:order_id>/cancel")
@requires("billing:manage")
def cancel_order(order_id: int) -> Response:
    try:
        return json_response(store().cancel(order_id, caller(), client_ip()))
    except NotFound as exc:
        raise _not_found(exc) from exc
    except BillingError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


@bp.post("/orders/<int:order_id>/refund")
@requires("billing:manage")
def refund_order(order_id: int) -> Response:
    try:
        store().refuse_refund(order_id, caller(), client_ip())
    except NotFound as exc:
        raise _not_found(exc) from exc
    raise ApiError(
        409,
        "refunds_not_supported",
        "purchased services are not refundable (已购买的服务暂不支持退费)",
    )


@bp.get("/usage")
@requires("usage:read")
def get_usage() -> Response:
    billing = store()
    today = utcnow().astimezone(billing.zone()).date()
    first = _day_param("from", today.replace(day=1))
    last = _day_param("to", today)
    if last < first or (last - first).days > MAX_USAGE_DAYS:
        raise ApiError(400, "invalid_parameter", f"from..to must be 1..{MAX_USAGE_DAYS} days")
    return json_response(billing.usage(first, last))


def _day_param(name: str, default: date) -> date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"{name} must be YYYY-MM-DD") from exc


@bp.get("/licence")
@requires("usage:read")
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


def paths() -> dict[str, Any]:
    from cangyun.openapi import operation, path_param, query

    order_id = [path_param("order_id", "order id", integer=True)]
    errors = {401: "no session", 403: "forbidden"}
    tags = ["billing"]
    s = {"type": "string"}
    order_body = {
        "type": "object",
        "properties": {
            "edition": {"type": "string", "enum": list(catalog.EDITION_ORDER)},
            "add_on": {"type": "string", "enum": list(catalog.VALUE_ADDED_CODES)},
            "billing_mode": {"type": "string", "enum": ["flow", "item", "period"]},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
            "business_area_m2": {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 1000000,
            },
        },
        "required": ["quantity"],
    }
    return {
        "/api/v1/catalog": {
            "get": operation(
                "Editions, prices per 套, feature matrix, value-added services",
                responses={200: "catalog"},
                public=True,
                tags=tags,
            )
        },
        "/api/v1/orders": {
            "post": operation(
                "Place a prepaid order for one edition (or one add-on)",
                body=order_body,
                responses={201: "order", 400: "not orderable"} | errors,
                tags=tags,
            ),
            "get": operation("Orders", responses={200: "page"} | errors, tags=tags),
        },
        "/api/v1/orders/{order_id}": {
            "get": operation(
                "One order",
                params=order_id,
                responses={200: "order", 404: "not found"} | errors,
                tags=tags,
            )
        },
        "/api/v1/orders/{order_id}/pay": {
            "post": operation(
                "Record the payment and activate the package",
                params=order_id,
                body={
                    "type": "object",
                    "required": ["payment_reference"],
                    "properties": {"payment_reference": s},
                },
                responses={
                    200: "paid order",
                    404: "not found",
                    409: "already paid or cancelled",
                    422: "missing reference",
                }
                | errors,
                tags=tags,
            )
        },
        "/api/v1/orders/{order_id}/cancel": {
            "post": operation(
                "Cancel an unpaid order",
                params=order_id,
                responses={200: "order", 404: "not found", 409: "already paid"} | errors,
                tags=tags,
            )
        },
        "/api/v1/orders/{order_id}/refund": {
            "post": operation(
                "Always 409 refunds_not_supported (no refunds once paid)",
                params=order_id,
                responses={409: "refunds_not_supported", 404: "not found"} | errors,
                tags=tags,
            )
        },
        "/api/v1/usage": {
            "get": operation(
                "Tonne-days and pieces per business day (tenant time zone)",
                params=[query("from", "first day YYYY-MM-DD"), query("to", "last day YYYY-MM-DD")],
                responses={200: "usage", 400: "bad range"} | errors,
                tags=tags,
            )
        },
        "/api/v1/licence": {
            "get": operation(
                "Edition, features, packages with remaining and expiry, days left, and the"
                " offline licence each edge box holds",
                responses={200: "licence"} | errors,
                tags=tags,
            )
        },
    }
