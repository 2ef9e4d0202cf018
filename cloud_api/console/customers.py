"""货主 customers: the cargo owners' list, one customer's page with notes and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for

from cangyun.errors import AlreadyExists, NotFound
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor
from cloud_api import console
from cloud_api.console import bp
from cloud_api.console.session import require
from cloud_api.crm import records as crm_csv
from cloud_api.crm.records import FieldError
from cloud_api.crm.store import MOVEMENT, NOTE, Actor, TenantCustomers, TimelineKey
from cloud_api.platform.auth import client_ip, engine

MAX_QUERY = 100


def _customers() -> TenantCustomers:
    return TenantCustomers(engine(), g.console_caller.tenant_id)


def _known_customer(code: str) -> str:
    """A code that cannot exist is a 404 before any query (and before PostgreSQL sees NUL)."""
    if not crm_csv.CODE.fullmatch(code):
        abort(404)
    return code


@bp.get("/customers")
def customers() -> Any:
    require("customers:read")
    return _customers_page()


@bp.post("/customers")
def create_customer() -> Any:
    who = require("customers:write")
    try:
        values = crm_csv.customer_values(_customer_document(request.form))
        created = _customers().create(values, Actor.of(who, client_ip()))
    except FieldError as exc:
        return _customers_page(error=f"{exc.field}: {exc.message}", status=422)
    except AlreadyExists as exc:
        return _customers_page(error=str(exc), status=409)
    return redirect(url_for("console.customer", code=created["code"]))


def _customer_document(form: Any) -> dict[str, Any]:
    """The form as the JSON API's body, so both are judged by the same rules."""
    document: dict[str, Any] = {"code": form.get("code", ""), "name": form.get("name", "")}
    contact = {key: form.get(f"contact_{key}", "") for key in ("name", "phone", "email", "role")}
    if any(value.strip() for value in contact.values()):
        document["contacts"] = [contact]
    for rate in crm_csv.RATE_NAMES:
        if form.get(rate, "").strip():
            document[rate] = form[rate]
    return document


def _customers_page(*, error: str | None = None, status: int = 200) -> tuple[str, int]:
    # PostgreSQL refuses NUL in text, so a pasted control character must not reach it.
    q = "".join(ch for ch in request.args.get("q", "") if ch.isprintable()).strip()[:MAX_QUERY]
    after = request.args.get("after") or None
    if after is not None and not crm_csv.CODE.fullmatch(after):
        abort(400)
    total, items, last = _customers().search(q, after=after, limit=console.CUSTOMERS_PAGE)
    g.page_url = url_for("console.customers")
    return render_template(
        "console/customers.html",
        q=q,
        after=after,
        total=total,
        items=items,
        next=last,
        error=error,
        form=request.form,
    ), status


@bp.get("/customers/<code>")
def customer(code: str) -> Any:
    require("customers:read")
    return _customer_page(_known_customer(code))


@bp.post("/customers/<code>/notes")
def add_customer_note(code: str) -> Any:
    who = require("customers:write")
    _known_customer(code)
    try:
        text = crm_csv.note_text({"text": request.form.get("text", "")})
        _customers().add_note(code, text, Actor.of(who, client_ip()))
    except FieldError as exc:
        return _customer_page(code, error=exc.message, status=422)
    except NotFound:
        abort(404)
    return redirect(url_for("console.customer", code=code))


def _customer_page(code: str, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    store = _customers()
    try:
        item = store.get(code)
        notes_total, notes, _ = store.notes(code, before_id=None, limit=console.NOTES_SHOWN)
        total, timeline, last = store.timeline(
            code, after=_timeline_cursor(), limit=console.TIMELINE_PAGE
        )
    except NotFound:
        abort(404)
    more = encode_cursor([last.at.isoformat(), last.kind, last.id]) if last else None
    g.page_url = url_for("console.customer", code=code)
    return render_template(
        "console/customer.html",
        c=item,
        notes=notes,
        notes_total=notes_total,
        timeline=timeline,
        timeline_total=total,
        more=more,
        paged="before" in request.args,
        error=error,
        note_text=request.form.get("text", ""),
    ), status


def _timeline_cursor() -> TimelineKey | None:
    raw = request.args.get("before")
    if not raw:
        return None
    try:
        at, kind, position = decode_cursor(raw)
        moment = datetime.fromisoformat(at)
    except (ApiError, TypeError, ValueError):
        abort(400)
    # Ids come back from the browser: beyond BIGINT, PostgreSQL would fail the query.
    valid_id = isinstance(position, int) and not isinstance(position, bool) and 0 < position < 2**63
    if moment.tzinfo is None or kind not in (MOVEMENT, NOTE) or not valid_id:
        abort(400)
    return TimelineKey(moment, kind, position)
