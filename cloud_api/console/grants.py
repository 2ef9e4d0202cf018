"""代运营 on the tenant's side: platform staff's requests to approve or decline, the grants in
force to revoke, and a grant to offer a staff member. The same ``TenantAccounts`` methods as
``/api/v1/staff-grants``; approving and offering need what that route's ``feature`` check
needs (an edition with value-added services, and the managed-operations add-on), and the page
says which is missing instead of a bare 403."""

from __future__ import annotations

from typing import Any

from flask import g, redirect, render_template, request, url_for

from cangyun.apispec import validate
from cangyun.errors import DomainError
from cangyun.httpapi import ApiError, status_of
from cloud_api.accounts import api as accounts_api
from cloud_api.accounts import security
from cloud_api.accounts.store import TenantAccounts
from cloud_api.billing import catalog
from cloud_api.billing.store import TenantBilling
from cloud_api.console import bp
from cloud_api.console.session import edition_notice, lang, require
from cloud_api.platform import i18n
from cloud_api.platform.auth import MANAGED_OPERATIONS, client_ip, engine

MANAGE = "staff_grants:manage"
FEATURE = "value_added_services"


def _store() -> TenantAccounts:
    return TenantAccounts(engine(), g.console_caller.tenant_id)


def _missing() -> str | None:
    """Why this tenant may not approve or offer a grant, in the reader's words; None if it may."""
    held = TenantBilling(engine(), g.console_caller.tenant_id).entitlement()
    pick = 1 if lang() == "en" else 0
    add_on = next(s[1 + pick] for s in catalog.VALUE_ADDED_SERVICES if s[0] == MANAGED_OPERATIONS)
    if FEATURE not in held.features:
        return edition_notice("grants", FEATURE, held.edition, add_on=add_on)
    if MANAGED_OPERATIONS not in held.add_ons:
        return i18n.text("grants_need_add_on", lang(), add_on=add_on)
    return None


@bp.get("/grants")
def grants() -> Any:
    require(MANAGE)
    return _grants_page()


@bp.post("/grants")
def offer_grant() -> Any:
    """Offer a staff member a grant, active at once: the API's NewGrant body."""
    who = require(MANAGE)
    missing = _missing()
    if missing:
        return _grants_page(error=missing, status=403)
    form = request.form
    hours = form.get("hours", "").strip()
    try:
        offer = validate(
            accounts_api.NewGrant,
            {
                "staff_email": form.get("staff_email", "").strip(),
                "hours": int(hours) if hours.isdigit() else hours,
                "reason": form.get("reason", "").strip(),
                "scopes": form.getlist("scopes"),
            },
        )
        _store().create_grant(
            staff_email=offer.staff_email,
            hours=offer.hours,
            reason=offer.reason,
            scopes=list(dict.fromkeys(offer.scopes)),
            caller=who,
            ip=client_ip(),
        )
    except ApiError as exc:
        return _grants_page(offer_error=exc.message, status=exc.status)
    except DomainError as exc:
        return _grants_page(offer_error=exc.message, status=status_of(exc))
    return redirect(url_for("console.grants"))


@bp.post("/grants/<int:grant_id>/<any(approve, decline, revoke):answer>")
def answer_grant(grant_id: int, answer: str) -> Any:
    who = require(MANAGE)
    if answer == "approve":
        missing = _missing()
        if missing:
            return _grants_page(error=missing, status=403)
    store = _store()
    act = {"approve": store.approve_grant, "decline": store.decline_grant,
           "revoke": store.revoke_grant}[answer]  # fmt: skip
    try:
        act(grant_id, who, client_ip())
    except DomainError as exc:
        return _grants_page(error=exc.message, status=status_of(exc))
    return redirect(url_for("console.grants"))


def _grants_page(
    *, error: str | None = None, offer_error: str | None = None, status: int = 200
) -> tuple[str, int]:
    items = sorted(_store().grants(), key=lambda grant: grant["id"], reverse=True)
    g.page_url = url_for("console.grants")
    return render_template(
        "console/grants.html",
        requests=[x for x in items if x["status"] == "requested"],
        active=[x for x in items if x["status"] == "active"],
        past=[x for x in items if x["status"] not in ("requested", "active")],
        missing=_missing(),
        scopes=tuple(security.GRANT_SCOPES),
        error=error,
        offer_error=offer_error,
        form=request.form,
    ), status
