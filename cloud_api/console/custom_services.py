"""定制服务 custom services in the console: the tenant's page (its requests, the form to ask,
accept, withdraw, write) and platform staff's page (every tenant's requests, quote, decline,
write). Each form is read as the JSON API's body (``NewCustomService``, ``CustomServiceQuote``,
``RequestRefusal``, ``RequestNote``) and calls what that route calls, so the same checks refuse
the same things; asking and accepting need what the route's ``feature`` check needs (an edition
with value-added services), and the page says which editions have it instead of a bare 403."""

from __future__ import annotations

from typing import Any

from flask import g, redirect, render_template, request, url_for

from cangyun.apispec import validate
from cangyun.errors import DomainError
from cangyun.httpapi import ApiError, status_of
from cloud_api import console
from cloud_api.billing import api as billing_api
from cloud_api.billing.store import TenantBilling
from cloud_api.console import bp
from cloud_api.console.session import edition_notice, lang, require, require_staff
from cloud_api.custom_services import api as cs_api
from cloud_api.custom_services import store
from cloud_api.custom_services.store import NewQuote, NewRequest, TenantCustomServices
from cloud_api.platform import i18n
from cloud_api.platform.auth import client_ip, engine
from cloud_api.sites.store import TenantSites

MANAGE = "billing:manage"
FEATURE = "value_added_services"
MAX_CURSOR = 2**31 - 1  # request ids come back from the browser: INTEGER-safe

Refused = tuple[int | None, str]  # (the request it concerns, or None for the new one; why)


def _cursor() -> int | None:
    value = request.args.get("cursor", type=int)
    return value if value is not None and 0 < value <= MAX_CURSOR else None


def _whole(text: str) -> int | str:
    """A form's number as the integer the body wants; anything else as typed, so the body's
    own check names the field."""
    return int(text) if text.strip().isdigit() else text.strip()


def _refusal(exc: DomainError) -> str:
    """The refusal's code in the reader's words, then what it said exactly."""
    if not i18n.has(exc.code):
        return exc.message
    return f"{i18n.text(exc.code, lang())} ({exc.message})"


# --- the tenant ---------------------------------------------------------------------------


def _tenant_store() -> TenantCustomServices:
    return TenantCustomServices(engine(), g.console_caller.tenant_id)


def _missing() -> str | None:
    """Why this tenant may not ask or accept, in the reader's words; None if it may."""
    held = TenantBilling(engine(), g.console_caller.tenant_id).entitlement()
    if FEATURE in held.features:
        return None
    return edition_notice("cs", FEATURE, held.edition)


@bp.get("/custom-services")
def custom_services() -> Any:
    require(MANAGE)
    return _tenant_page()


@bp.post("/custom-services")
def submit_custom_service() -> Any:
    """Ask for custom work: the API's NewCustomService body and the store's ``submit``."""
    who = require(MANAGE)
    missing = _missing()
    if missing:
        return _tenant_page(refused=(None, missing), status=403)
    form = request.form
    try:
        asked = validate(
            cs_api.NewCustomService,
            {
                "title": form.get("title", "").strip(),
                "description": form.get("description", "").strip(),
                "warehouses": form.getlist("warehouses"),
                "private_deployment": form.get("private_deployment") == "on",
                "contact_name": form.get("contact_name", "").strip(),
                "contact_phone": form.get("contact_phone", "").strip(),
                "contact_email": form.get("contact_email", "").strip(),
            },
        )
        made = _tenant_store().submit(
            NewRequest(
                title=asked.title,
                description=asked.description,
                warehouses=tuple(asked.warehouses),
                private_deployment=asked.private_deployment,
                contact_name=asked.contact_name,
                contact_phone=asked.contact_phone,
                contact_email=asked.contact_email,
            ),
            who,
            client_ip(),
        )
    except ApiError as exc:
        return _tenant_page(refused=(None, exc.message), status=exc.status)
    except DomainError as exc:
        return _tenant_page(refused=(None, _refusal(exc)), status=status_of(exc))
    return redirect(url_for("console.custom_services", _anchor=f"request-{made['id']}"))


@bp.post("/custom-services/<int:request_id>/<any(accept, withdraw):answer>")
def answer_custom_service(request_id: int, answer: str) -> Any:
    who = require(MANAGE)
    if answer == "accept":
        missing = _missing()
        if missing:
            return _tenant_page(refused=(request_id, missing), status=403)
    mine = _tenant_store()
    act = mine.accept if answer == "accept" else mine.withdraw
    try:
        act(request_id, who, client_ip())
    except DomainError as exc:
        return _tenant_page(refused=(request_id, _refusal(exc)), status=status_of(exc))
    return redirect(url_for("console.custom_services", _anchor=f"request-{request_id}"))


@bp.post("/custom-services/<int:request_id>/messages")
def write_custom_service(request_id: int) -> Any:
    who = require(MANAGE)
    try:
        note = validate(cs_api.RequestNote, {"text": request.form.get("text", "").strip()})
        _tenant_store().write(request_id, note.text, who, client_ip())
    except ApiError as exc:
        return _tenant_page(refused=(request_id, exc.message), status=exc.status)
    except DomainError as exc:
        return _tenant_page(refused=(request_id, _refusal(exc)), status=status_of(exc))
    return redirect(url_for("console.custom_services", _anchor=f"request-{request_id}"))


def _payment(who_tenant: int, item: dict[str, Any]) -> dict[str, Any] | None:
    """What to pay and how, while the accepted quote's order waits (as GET /orders/{id})."""
    order = item["order"]
    if not order or order["status"] != "pending_payment":
        return None
    return billing_api.how_to_pay(TenantBilling(engine(), who_tenant).order(order["id"]))["payment"]


def _tenant_page(*, refused: Refused | None = None, status: int = 200) -> tuple[str, int]:
    who = g.console_caller
    mine = _tenant_store()
    cursor = _cursor()
    limit = console.CUSTOM_SERVICES_PAGE
    total, listed = mine.requests(None, limit, cursor)
    items = [mine.request(item["id"]) for item in listed]  # with their history
    g.page_url = url_for("console.custom_services")
    return render_template(
        "console/custom_services.html",
        total=total,
        items=items,
        payments={item["id"]: _payment(who.tenant_id, item) for item in items},
        warehouses=TenantSites(engine(), who.tenant_id).warehouses(),
        next=listed[-1]["id"] if len(listed) == limit else None,
        paged=cursor is not None,
        missing=_missing(),
        refused=refused,
        form=request.form,
        open_states=store.OPEN,
    ), status


# --- platform staff -----------------------------------------------------------------------


def _status() -> str | None:
    chosen = request.args.get("status", "")
    return chosen if chosen in store.STATUSES else None


@bp.get("/platform/custom-services")
def platform_custom_services() -> Any:
    require_staff()
    return _platform_page()


@bp.post("/platform/custom-services/<int:request_id>/quote")
def platform_quote_custom_service(request_id: int) -> Any:
    """A price, scope and delivery time: the API's CustomServiceQuote body and ``store.quote``."""
    who = require_staff()
    form = request.form
    try:
        offer = validate(
            cs_api.CustomServiceQuote,
            {
                "price_yuan": form.get("price_yuan", "").strip(),
                "scope": form.get("scope", "").strip(),
                "delivery_working_days": _whole(form.get("delivery_working_days", "")),
                "valid_days": _whole(form.get("valid_days", "") or "30"),
            },
        )
        store.quote(
            engine(),
            request_id,
            NewQuote(offer.price_yuan, offer.scope, offer.delivery_working_days, offer.valid_days),
            who,
            client_ip(),
        )
    except ApiError as exc:
        return _platform_page(refused=(request_id, exc.message), status=exc.status)
    except DomainError as exc:
        return _platform_page(refused=(request_id, _refusal(exc)), status=status_of(exc))
    return _platform_done(request_id)


@bp.post("/platform/custom-services/<int:request_id>/decline")
def platform_decline_custom_service(request_id: int) -> Any:
    who = require_staff()
    try:
        refusal = validate(
            cs_api.RequestRefusal, {"reason": request.form.get("reason", "").strip()}
        )
        store.decline(engine(), request_id, refusal.reason, who, client_ip())
    except ApiError as exc:
        return _platform_page(refused=(request_id, exc.message), status=exc.status)
    except DomainError as exc:
        return _platform_page(refused=(request_id, _refusal(exc)), status=status_of(exc))
    return _platform_done(request_id)


@bp.post("/platform/custom-services/<int:request_id>/messages")
def platform_write_custom_service(request_id: int) -> Any:
    who = require_staff()
    try:
        note = validate(cs_api.RequestNote, {"text": request.form.get("text", "").strip()})
        store.staff_write(engine(), request_id, note.text, who, client_ip())
    except ApiError as exc:
        return _platform_page(refused=(request_id, exc.message), status=exc.status)
    except DomainError as exc:
        return _platform_page(refused=(request_id, _refusal(exc)), status=status_of(exc))
    return _platform_done(request_id)


def _platform_done(request_id: int) -> Any:
    """Back to the list the form was on (its filter kept), at the request."""
    status = request.form.get("status_filter", "")
    args = {"status": status} if status in store.STATUSES else {}
    return redirect(
        url_for("console.platform_custom_services", _anchor=f"request-{request_id}", **args)
    )


def _platform_page(*, refused: Refused | None = None, status: int = 200) -> tuple[str, int]:
    chosen = _status() if request.method == "GET" else None
    if request.method != "GET":
        kept = request.form.get("status_filter", "")
        chosen = kept if kept in store.STATUSES else None
    cursor = _cursor()
    limit = console.CUSTOM_SERVICES_PAGE
    total, listed = store.platform_requests(engine(), chosen, limit, cursor)
    items = [store.platform_request(engine(), item["id"]) for item in listed]
    g.page_url = url_for("console.platform_custom_services")
    return render_template(
        "console/platform_custom_services.html",
        total=total,
        items=items,
        statuses=store.STATUSES,
        chosen=chosen,
        next=listed[-1]["id"] if len(listed) == limit else None,
        paged=cursor is not None,
        refused=refused,
        form=request.form,
        open_states=store.OPEN,
        delivery_days=store.DELIVERY_DAYS,
    ), status
