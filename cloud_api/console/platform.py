"""平台运营: the platform staff's own pages. Tenants with their packages, orders awaiting a
bank transfer and the form that confirms one, staff's 代运营 grants and requests, and the
platform's audit log. Only for platform staff signed in as themselves (``require_staff``);
each page calls what the staff API calls, so the same checks refuse the same things."""

from __future__ import annotations

from typing import Any

from flask import g, redirect, render_template, request, url_for

from cangyun.apispec import validate
from cangyun.errors import DomainError
from cangyun.httpapi import ApiError, status_of
from cloud_api import console
from cloud_api.accounts import api as accounts_api
from cloud_api.accounts import security
from cloud_api.accounts import store as accounts
from cloud_api.accounts.store import TenantAccounts
from cloud_api.billing import api as billing_api
from cloud_api.billing import catalog, roster, service
from cloud_api.billing import store as billing
from cloud_api.billing.store import Payer
from cloud_api.console import bp
from cloud_api.console.session import lang, require_staff
from cloud_api.platform import i18n
from cloud_api.platform.auth import client_ip, engine

MAX_QUERY = 100
MAX_CURSOR = 2**31 - 1  # order and audit ids come back from the browser: INTEGER-safe
RECENT = 8  # rows of each list on the overview


def _cursor(name: str) -> int | None:
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_CURSOR else None


def _query(name: str) -> str:
    # PostgreSQL refuses NUL in text, so a pasted control character must not reach it.
    raw = request.args.get(name, "")
    return "".join(ch for ch in raw if ch.isprintable()).strip()[:MAX_QUERY]


def names() -> dict[str, Any]:
    """Editions and add-ons by name in the reader's language, for the templates."""
    pick = 1 if lang() == "en" else 0
    return {
        "edition_name": lambda code: catalog.EDITION_NAMES[code][pick] if code else "",
        "add_on_name": lambda code: next(
            (s[1 + pick] for s in catalog.VALUE_ADDED_SERVICES if s[0] == code), code or ""
        ),
    }


def _my_grants() -> list[dict[str, Any]]:
    who = g.console_caller
    found = accounts.grants_of_staff(engine(), who.user_id) if who.user_id is not None else []
    return sorted(found, key=lambda grant: grant["id"], reverse=True)


@bp.get("/platform/")
def platform_home() -> str:
    who = require_staff()
    tenants_total, _, _ = roster.tenants_page(engine(), "", after=None, limit=0)
    orders_total, orders = billing.orders_by_status(engine(), "pending_payment", RECENT)
    grants = _my_grants()
    _, recent, _ = TenantAccounts(engine(), who.tenant_id).audit_entries(
        before_id=None, limit=RECENT
    )
    return render_template(
        "console/platform_home.html",
        tenants_total=tenants_total,
        orders_total=orders_total,
        orders=[billing_api.how_to_pay(o) for o in orders],
        requested=sum(1 for grant in grants if grant["status"] == "requested"),
        active=sum(1 for grant in grants if grant["status"] == "active"),
        recent=recent,
        **names(),
    )


@bp.get("/platform/tenants")
def platform_tenants() -> str:
    require_staff()
    q = _query("q")
    after = _query("after") or None
    total, items, last = roster.tenants_page(engine(), q, after=after, limit=console.TENANTS_PAGE)
    return render_template(
        "console/platform_tenants.html",
        q=q,
        after=after,
        total=total,
        items=items,
        next=last,
        **names(),
    )


@bp.get("/platform/orders")
def platform_orders() -> Any:
    require_staff()
    return _orders_page()


@bp.post("/platform/orders/<int:order_id>/confirm")
def platform_confirm_order(order_id: int) -> Any:
    """A bank transfer arrived: the same ``billing.service.confirm_transfer`` (and so the one
    ``billing.store.settle``) as ``POST /api/v1/platform/orders/{id}/confirm``."""
    who = require_staff()
    form = request.form
    document = {
        "amount_yuan": form.get("amount_yuan", "").strip(),
        "bank_reference": form.get("bank_reference", "").strip(),
    }
    try:
        confirmation = validate(billing_api.TransferConfirmation, document)
        service.confirm_transfer(
            engine(),
            order_id,
            confirmation.amount_yuan,
            confirmation.bank_reference,
            Payer(who.actor, who.user_id, client_ip()),
        )
    except ApiError as exc:
        return _orders_page(refused=(order_id, exc.message), status=exc.status)
    except DomainError as exc:
        return _orders_page(refused=(order_id, _refusal(exc)), status=status_of(exc))
    return redirect(url_for("console.platform_orders", confirmed=order_id))


def _refusal(exc: DomainError) -> str:
    """The refusal's code in the reader's words, then what it said exactly (the amounts)."""
    if not i18n.has(exc.code):
        return exc.message
    return f"{i18n.text(exc.code, lang())} ({exc.message})"


def _orders_page(*, refused: tuple[int, str] | None = None, status: int = 200) -> tuple[str, int]:
    cursor = _cursor("cursor")
    limit = console.PLATFORM_ORDERS_PAGE
    total, items = billing.orders_by_status(engine(), "pending_payment", limit, cursor)
    g.page_url = url_for("console.platform_orders")
    return render_template(
        "console/platform_orders.html",
        total=total,
        items=[billing_api.how_to_pay(o) for o in items],
        next=items[-1]["id"] if len(items) == limit else None,
        paged=cursor is not None,
        confirmed=_cursor("confirmed"),
        refused=refused,
        form=request.form,
        **names(),
    ), status


@bp.get("/platform/grants")
def platform_grants() -> Any:
    require_staff()
    return _grants_page()


@bp.post("/platform/grants")
def platform_request_grant() -> Any:
    """Ask a tenant for a grant: the API's GrantRequest body and ``accounts.request_grant``."""
    who = require_staff()
    form = request.form
    try:
        asked = validate(
            accounts_api.GrantRequest,
            {
                "tenant": form.get("tenant", "").strip(),
                "scopes": form.getlist("scopes"),
                "hours": _whole(form.get("hours", "")),
                "reason": form.get("reason", "").strip(),
            },
        )
        accounts.request_grant(
            engine(),
            who,
            tenant_code=asked.tenant,
            scopes=list(dict.fromkeys(asked.scopes)),
            hours=asked.hours,
            reason=asked.reason,
            ip=client_ip(),
        )
    except ApiError as exc:
        return _grants_page(error=exc.message, status=exc.status)
    except DomainError as exc:
        return _grants_page(error=_refusal(exc), status=status_of(exc))
    return redirect(url_for("console.platform_grants", asked=1))


def _whole(text: str) -> int | str:
    """A form's number of hours as the integer the body wants; anything else as typed, so
    the body's own check names the field."""
    return int(text) if text.strip().isdigit() else text


def _grants_page(*, error: str | None = None, status: int = 200) -> tuple[str, int]:
    g.page_url = url_for("console.platform_grants")
    return render_template(
        "console/platform_grants.html",
        grants=_my_grants(),
        scopes=tuple(security.GRANT_SCOPES),
        asked="asked" in request.args,
        error=error,
        form=request.form,
    ), status


@bp.get("/platform/audit")
def platform_audit() -> str:
    """The platform tenant's own log, read by the same listing as GET /api/v1/audit."""
    who = require_staff()
    action = _query("action")
    cursor = _cursor("cursor")
    total, items, last = TenantAccounts(engine(), who.tenant_id).audit_entries(
        before_id=cursor, limit=console.PLATFORM_AUDIT_PAGE, action=action or None
    )
    return render_template(
        "console/platform_audit.html",
        action=action,
        total=total,
        items=items,
        next=last,
        paged=cursor is not None,
    )
