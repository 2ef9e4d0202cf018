"""The admin console: server-rendered pages, Chinese by default, English by a switch.

Pages call the same store classes as the JSON API, scoped to the logged-in tenant, and check
the same permissions. The session is an HttpOnly, SameSite=Strict cookie holding a session
token; every form carries a CSRF token derived from it. The JSON API never accepts the
cookie, only bearer tokens.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from cangyun.apispec import parse_query, validate
from cangyun.errors import (
    AlreadyExists,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor, status_of
from cangyun.timeutil import utcnow
from cloud_api.accounts import api as accounts_api
from cloud_api.accounts import security, service
from cloud_api.accounts import store as accounts
from cloud_api.accounts.security import PolicyError, SecurityPolicy
from cloud_api.accounts.store import TenantAccounts
from cloud_api.crm import records as crm_csv
from cloud_api.crm.records import FieldError
from cloud_api.crm.store import MOVEMENT, NOTE, Actor, TenantCustomers, TimelineKey
from cloud_api.ledger import store as ledger
from cloud_api.platform import i18n
from cloud_api.platform.auth import client_ip, engine, mailer
from cloud_api.platform.tenancy import Caller
from cloud_api.sites import registry
from cloud_api.sites.api import LocationFilter, LocationGrid, NewWarehouse, NewZone
from cloud_api.sites.labels import (
    LOCATION_CODE,
    MAX_LABELS,
    SEPARATORS,
    SYMBOLOGIES,
    Axis,
    Label,
    LabelError,
    grid_codes,
    render_labels,
)
from cloud_api.sites.store import ZONE_KINDS, LocationsExist, TenantSites

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
COOKIE = "cy_session"
CHART_DAYS = 14
CUSTOMERS_PAGE = 50
NOTES_SHOWN = 20
TIMELINE_PAGE = 50
LOCATIONS_PAGE = 100
EXISTING_SHOWN = 10  # clashing location codes named in a refused grid
GRID_AXES = ("aisles", "racks", "levels", "positions")  # slowest first, as the form names them
MAX_QUERY = 100
ERROR_TEXTS = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "bad_request"}


def lang() -> str:
    chosen = request.args.get("lang") or request.cookies.get("cy_lang") or i18n.DEFAULT
    return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT


def csrf_token() -> str:
    token = request.cookies.get(COOKIE, "")
    return hmac.new(b"cangyun-console-csrf", token.encode(), hashlib.sha256).hexdigest()[:32]


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    current = lang()
    return {
        "t": lambda key, **values: i18n.text(key, current, **values),
        "lang": current,
        "other_lang": "en" if current == "zh" else "zh",
        "csrf": csrf_token,
        "who": getattr(g, "console_caller", None),
        "can": lambda permission: _can(permission),
        "lang_url": _lang_url,
        "time_zone": _tenant_zone,
    }


def _tenant_zone() -> ZoneInfo:
    """The zone the tenant's business days are cut in: its people read their own wall clock."""
    if "console_zone" not in g:
        who: Caller | None = getattr(g, "console_caller", None)
        tenant = registry.tenant_by_code(engine(), who.tenant) if who else None
        g.console_zone = ZoneInfo(tenant["timezone"] if tenant else "UTC")
    return g.console_zone


@bp.app_template_filter("local_time")
def local_time(value: str | datetime | None) -> str:
    """A stored instant (ISO text or datetime; naive means UTC) as the tenant's wall clock."""
    if not value:
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_tenant_zone()).strftime("%Y-%m-%d %H:%M:%S")


def _lang_url(chosen: str) -> str:
    """This page in the other language, its query kept. A page rendered for a refused form
    links to the page the form belongs to, since its own URL answers only POST."""
    if request.method != "GET":
        return f"{g.get('page_url') or request.path}?lang={chosen}"
    args = request.args.to_dict() | {"lang": chosen}
    return f"{request.path}?{urlencode(args)}"


def _can(permission: str) -> bool:
    who: Caller | None = getattr(g, "console_caller", None)
    return who is not None and security.allowed(who.role, permission, who.scopes)


@bp.before_request
def _load_session() -> Response | None:
    g.console_caller = None
    if request.method == "POST" and request.endpoint != "console.login":
        if not hmac.compare_digest(request.form.get("csrf", ""), csrf_token()):
            abort(400)
    if request.endpoint in ("console.login", "static"):
        return None
    try:
        found = service.session_caller(engine(), request.cookies.get(COOKIE, ""), client_ip())
    except Unauthenticated:
        return redirect(url_for("console.login", lang=lang()))
    except Forbidden:
        abort(403)
    if found.kind != "session":
        return redirect(url_for("console.login", lang=lang()))
    g.console_caller = found
    # An expired password can only be changed (the API refuses the same way).
    if found.password_expired and request.endpoint not in ("console.password", "console.logout"):
        return redirect(url_for("console.password", lang=lang()))
    return None


@bp.after_request
def _remember_language(response: Response) -> Response:
    if "lang" in request.args and request.args["lang"] in i18n.LANGUAGES:
        response.set_cookie("cy_lang", request.args["lang"], max_age=365 * 86400, samesite="Lax")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:"
    )
    return response


@bp.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> Any:
    """Console errors as a page in the reader's language; the JSON API keeps its own body."""
    status = exc.code or 500
    if status < 400:
        return exc
    message = i18n.text(ERROR_TEXTS.get(status, "bad_request"), lang())
    return render_template("console/error.html", status=status, message=message), status


def require(permission: str) -> Caller:
    if not _can(permission):
        abort(403)
    return g.console_caller


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The console's sign-in: the same ``accounts.service.authenticate`` as the JSON API, so
    the same hash work for unknown emails, the IP allow-list, lockout and expired passwords."""
    if request.method == "GET":
        return _login_page()
    email = request.form.get("email", "").strip()
    code = request.form.get("code", "").strip()
    try:
        if code:
            verified = service.verify_code(engine(), email, code, client_ip())
        else:
            verified = service.authenticate(
                engine(), email, request.form.get("password", ""), client_ip()
            )
            if verified.needs_code:
                service.send_login_code(engine(), mailer(), verified.user)
                return _login_page(email=email, two_step=True)
    except DomainError as exc:
        return _login_refused(exc, email, two_step=bool(code))
    return _signed_in(service.open_session(engine(), verified, client_ip(), name="console"))


def _signed_in(session: service.Session) -> Response:
    target = "console.password" if session.password_expired else "console.dashboard"
    response = make_response(redirect(url_for(target)))
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        expires=session.expires_at,
    )
    return response


def _login_page(
    *, email: str = "", two_step: bool = False, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    page = render_template("console/login.html", error=error, two_step=two_step, email=email)
    return page, status


def _login_refused(exc: DomainError, email: str, *, two_step: bool) -> tuple[str, int]:
    if isinstance(exc, Throttled):
        message = i18n.text("locked", lang(), seconds=exc.details.get("retry_after", 0))
    elif isinstance(exc, Forbidden):
        message = i18n.text("ip_not_allowed", lang(), ip=client_ip())
    elif isinstance(exc, Unavailable):
        message = i18n.text("mail_unavailable", lang())
    else:
        message = i18n.text("wrong_login", lang())
    return _login_page(email=email, two_step=two_step, error=message, status=status_of(exc))


@bp.route("/password", methods=["GET", "POST"])
def password() -> Any:
    """Change my password; the only page a session with an expired password may open."""
    who = g.console_caller
    expired = who.password_expired
    if request.method == "GET":
        return render_template("console/password.html", error=None, expired=expired)
    form = request.form
    try:
        if who.user_id is None:
            raise Forbidden("API keys have no password")
        if form.get("new_password", "") != form.get("confirm_password", ""):
            raise Invalid("the two new passwords differ", code="password_mismatch")
        service.change_password(
            engine(),
            who.user_id,
            form.get("current_password", ""),
            form.get("new_password", ""),
            client_ip(),
        )
    except DomainError as exc:
        key = exc.code if i18n.has(exc.code) else "password_refused"
        message = i18n.text(key, lang())
        if isinstance(exc, PolicyError):
            message = f"{message}: {exc.message}"
        return render_template("console/password.html", error=message, expired=expired), status_of(
            exc
        )
    # Changing the password ended every session of the user: open a fresh one for this tab.
    user = accounts.user_by_id(engine(), who.user_id)
    policy = accounts.policy_for(engine(), who.tenant_id)
    verified = service.Verified(user, policy, needs_code=False)
    return _signed_in(service.open_session(engine(), verified, client_ip(), name="console"))


@bp.post("/logout")
def logout() -> Response:
    accounts.revoke_token(engine(), g.console_caller.token_id)
    response = make_response(redirect(url_for("console.login")))
    response.delete_cookie(COOKIE)
    return response


@bp.get("/")
def dashboard() -> str:
    who = require("movements:read")
    tenant = registry.tenant_by_code(engine(), who.tenant)
    zone = ZoneInfo(tenant["timezone"])
    now_local = datetime.now(zone)
    first_day = (now_local - timedelta(days=CHART_DAYS - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    offset = (now_local.utcoffset() or timedelta()).total_seconds() / 3600
    counts = ledger.daily_counts(
        engine(), who.tenant_id, first_day.astimezone(UTC), CHART_DAYS, offset
    )
    days = [(first_day + timedelta(days=i)).date().isoformat() for i in range(CHART_DAYS)]
    series = [(day[5:], counts.get(day, 0)) for day in days]
    devices = registry.list_devices(engine(), who.tenant_id)
    _, recent, _ = ledger.list_movements(
        engine(), who.tenant_id, {}, after_id=None, limit=10, newest_first=True
    )
    stock_total, _, _ = ledger.stock_levels(engine(), who.tenant_id, {}, after=None, limit=1)
    midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    return render_template(
        "console/dashboard.html",
        today=series[-1][1],
        devices=devices,
        online=sum(1 for d in devices if d["online"]),
        recent=recent,
        stock_lines=stock_total,
        chart=_bar_chart(series),
        per_warehouse=_movements_since(who, midnight),
    )


def _movements_since(who: Caller, since: datetime) -> list[tuple[dict[str, Any], int]]:
    """Each warehouse with its movement count since ``since``. One count query per warehouse:
    the ledger store has no per-warehouse totals, and a tenant has a handful of warehouses."""
    if not _can("warehouses:read"):
        return []
    return [
        (
            site,
            ledger.list_movements(
                engine(),
                who.tenant_id,
                {"warehouse": site["code"], "from": since.astimezone(UTC)},
                after_id=None,
                limit=1,
                newest_first=True,
            )[0],
        )
        for site in TenantSites(engine(), who.tenant_id).warehouses()
    ]


def _bar_chart(series: list[tuple[str, int]]) -> dict[str, Any]:
    """Bars for an inline SVG: no chart library, nothing fetched by the browser."""
    height, bar, gap = 120, 22, 8
    peak = max((n for _, n in series), default=0) or 1
    bars = []
    for index, (label, count) in enumerate(series):
        h = round(height * count / peak)
        bars.append(
            {
                "x": index * (bar + gap),
                "y": height - h,
                "h": h,
                "w": bar,
                "label": label,
                "count": count,
            }
        )
    return {"bars": bars, "width": len(series) * (bar + gap), "height": height}


@bp.get("/devices")
def devices() -> str:
    who = require("devices:read")
    items = registry.list_devices(engine(), who.tenant_id)
    views = {
        d["code"]: ledger.device_sync_view(engine(), who.tenant_id, d["code"], utcnow())
        for d in items
    }
    return render_template("console/devices.html", devices=items, views=views)


@bp.route("/users", methods=["GET", "POST"])
def users() -> Any:
    who = require("users:read")
    store = TenantAccounts(engine(), who.tenant_id)
    error = None
    if request.method == "POST":
        require("users:write")
        form = request.form
        try:
            # The form is the API's NewUser body: one declaration, the same refusals.
            fields = ("email", "password", "role", "name", "phone")
            new = validate(accounts_api.NewUser, {k: form[k] for k in fields if form.get(k)})
            service.check_password(store.policy(), new.password, new.email)
            store.create_user(
                email=new.email,
                password=new.password,
                role=new.role,
                name=new.name,
                phone=new.phone,
                caller=who,
                ip=client_ip(),
            )
            return redirect(url_for("console.users"))
        except (ApiError, DomainError) as exc:
            error = exc.message
    return render_template(
        "console/users.html", users=store.users(), error=error, roles=security.ASSIGNABLE_ROLES
    )


@bp.post("/users/<int:user_id>")
def update_user(user_id: int) -> Any:
    who = require("users:write")
    store = TenantAccounts(engine(), who.tenant_id)
    try:
        target = store.user(user_id)
    except NotFound:
        abort(404)
    changes: dict[str, Any] = {}
    if request.form.get("role") in security.ASSIGNABLE_ROLES:
        changes["role"] = request.form["role"]
    if "active" in request.form:
        changes["active"] = request.form["active"] == "1"
    if target["role"] == "owner" or user_id == who.user_id:
        abort(409)
    if changes:
        store.update_user(user_id, changes, who, client_ip())
    return redirect(url_for("console.users"))


@bp.route("/security-policy", methods=["GET", "POST"])
def security_policy() -> Any:
    who = require("security_policy:read")
    store = TenantAccounts(engine(), who.tenant_id)
    policy, error, saved = store.policy(), None, False
    if request.method == "POST":
        require("security_policy:write")
        form = request.form
        try:
            document: dict[str, Any] = {
                name: int(form.get(name, "0") or 0)
                for name in (
                    "min_length",
                    "rotation_days",
                    "lockout_threshold",
                    "lockout_minutes",
                    "session_minutes",
                )
            }
            for name in (
                "require_upper",
                "require_lower",
                "require_digit",
                "require_symbol",
                "two_step",
            ):
                document[name] = form.get(name) == "on"
            document["ip_allowlist"] = [
                line.strip() for line in form.get("ip_allowlist", "").splitlines() if line.strip()
            ]
            new_policy = SecurityPolicy.from_json(document)
            if not new_policy.ip_allowed(client_ip()):
                raise PolicyError("would_lock_out", f"{client_ip()} must stay allowed")
            store.set_policy(new_policy, who, client_ip())
            policy, saved = new_policy, True
        except ValueError as exc:
            error = getattr(exc, "message", str(exc))
    return render_template("console/security_policy.html", policy=policy, error=error, saved=saved)


@bp.get("/audit")
def audit() -> str:
    who = require("audit:read")
    cursor = request.args.get("cursor", type=int)
    total, items, last = TenantAccounts(engine(), who.tenant_id).audit_entries(
        before_id=cursor, limit=50, action=request.args.get("action") or None
    )
    return render_template("console/audit.html", items=items, total=total, next=last)


# --- 货主 customers ------------------------------------------------------------------------


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
    total, items, last = _customers().search(q, after=after, limit=CUSTOMERS_PAGE)
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
        notes_total, notes, _ = store.notes(code, before_id=None, limit=NOTES_SHOWN)
        total, timeline, last = store.timeline(code, after=_timeline_cursor(), limit=TIMELINE_PAGE)
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


# --- 仓库 warehouses, 库区 zones, 库位 locations ---------------------------------------------


def _sites() -> TenantSites:
    return TenantSites(engine(), g.console_caller.tenant_id)


def _own_warehouse(code: str) -> TenantSites:
    """The caller's sites, once the warehouse in the path is known to be theirs."""
    store = _sites()
    try:
        store.require_warehouse(code)
    except NotFound:
        abort(404)
    return store


@bp.get("/warehouses")
def warehouses() -> Any:
    require("warehouses:read")
    return _warehouses_page()


@bp.post("/warehouses")
def create_warehouse() -> Any:
    who = require("warehouses:write")
    data: dict[str, Any] = _filled("code", "name", "address", "area_m2")
    if "area_m2" in data:
        data["area_m2"] = _number(data["area_m2"])
    try:
        # The JSON API's NewWarehouse body: the area decides a price tier, so it is as strict.
        new = validate(NewWarehouse, data)
        created = _sites().create_warehouse(
            code=new.code,
            name=new.name,
            address=new.address or "",
            area_m2=new.area_m2,
            caller=who,
            ip=client_ip(),
        )
    except (ApiError, Invalid) as exc:
        return _warehouses_page(error=exc.message, status=422)
    except AlreadyExists as exc:
        return _warehouses_page(error=str(exc), status=409)
    return redirect(url_for("console.warehouse", code=created["code"]))


def _filled(*names: str) -> dict[str, str]:
    """The named form fields that hold something: a blank field counts as left out, so a
    blank area is no area and a blank name is "name is required"."""
    return {name: request.form[name] for name in names if request.form.get(name, "").strip()}


def _number(text: str) -> float | str:
    """Form text as the number the JSON body would carry; text that is no number goes to the
    body model as sent, which refuses it as the API does (area_m2: a valid number)."""
    try:
        return float(text)
    except ValueError:
        return text


def _warehouses_page(*, error: str | None = None, status: int = 200) -> tuple[str, int]:
    who: Caller = g.console_caller
    g.page_url = url_for("console.warehouses")
    online: dict[str, int] = {}
    for device in registry.list_devices(engine(), who.tenant_id):
        if device["online"] and device["revoked_at"] is None:
            online[device["warehouse"]] = online.get(device["warehouse"], 0) + 1
    return render_template(
        "console/warehouses.html",
        items=_sites().warehouses(),
        online=online,
        error=error,
        form=request.form,
    ), status


@bp.get("/warehouses/<code>")
def warehouse(code: str) -> Any:
    require("warehouses:read")
    return _warehouse_page(_own_warehouse(code), code)


@bp.post("/warehouses/<code>/zones")
def create_zone(code: str) -> Any:
    who = require("warehouses:write")
    store = _own_warehouse(code)
    try:
        new = validate(NewZone, _filled("code", "name", "kind"))
        store.create_zone(
            code,
            code=new.code,
            name=new.name,
            kind=new.kind or "storage",
            caller=who,
            ip=client_ip(),
        )
    except ApiError as exc:
        return _warehouse_page(store, code, error=exc.message, status=422)
    except AlreadyExists as exc:
        return _warehouse_page(store, code, error=str(exc), status=409)
    return redirect(url_for("console.warehouse", code=code))


@bp.post("/warehouses/<code>/locations")
def create_locations(code: str) -> Any:
    """A grid of bins, aisles × racks × levels (× positions), all or none."""
    who = require("warehouses:write")
    store = _own_warehouse(code)
    form = request.form
    # The form as the JSON API's LocationGrid body: an axis with both ends blank is left out
    # (positions may be), and a blank separator is sent, since it joins the parts bare.
    data: dict[str, Any] = {}
    for axis in GRID_AXES:
        span = {end: form.get(f"{axis}_{end}", "").strip() for end in ("from", "to")}
        if any(span.values()):
            data[axis] = span
    data |= _filled("zone", "prefix")
    if "separator" in form:
        data["separator"] = form["separator"]
    try:
        grid = validate(LocationGrid, data)
        spans = {name: getattr(grid, name) for name in GRID_AXES}
        axes = [Axis(name, s["from"], s["to"]) for name, s in spans.items() if s is not None]
        separator = "-" if grid.separator is None else grid.separator
        codes = grid_codes(axes, prefix=grid.prefix or "", separator=separator)
        created = store.create_locations(code, codes, zone=grid.zone, caller=who, ip=client_ip())
    except (ApiError, Invalid) as exc:
        # invalid_grid (a range, the grid's size) and unknown_zone are Invalid too
        return _warehouse_page(store, code, error=exc.message, status=422)
    except LocationsExist as exc:
        message = str(exc)
        if len(exc.existing) > 1:
            more = " …" if len(exc.existing) > EXISTING_SHOWN else ""
            message += f": {', '.join(exc.existing[:EXISTING_SHOWN])}{more}"
        return _warehouse_page(store, code, error=message, status=409)
    return redirect(url_for("console.warehouse", code=code, created=created))


@bp.get("/warehouses/<code>/labels.pdf")
def location_labels(code: str) -> Any:
    """The API's label sheet for a browser session (the API route wants a bearer token)."""
    require("warehouses:read")
    store = _own_warehouse(code)
    symbology = request.args.get("symbology") or "code128"
    try:
        if symbology not in SYMBOLOGIES:
            raise LabelError(f"symbology must be one of {', '.join(SYMBOLOGIES)}")
        found = parse_query(LocationFilter)
        warehouse, rows, total = store.label_rows(
            code, zone=found.zone, prefix=found.prefix, limit=MAX_LABELS
        )
        if total > MAX_LABELS:
            raise LabelError(i18n.text("too_many_labels", lang(), count=total, limit=MAX_LABELS))
        if not rows:
            raise LabelError(i18n.text("no_labels", lang()))
        labels = [Label(r["code"], warehouse["name"], r["zone_name"]) for r in rows]
        sheet = render_labels(labels, symbology, title=f"库位标签 {warehouse['name']}")
    except (ApiError, LabelError) as exc:
        return _warehouse_page(store, code, error=exc.message, status=422)
    return Response(
        sheet.pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{code}-locations-{symbology}.pdf"'},
    )


def _warehouse_page(
    store: TenantSites, code: str, *, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    who: Caller = g.console_caller
    try:
        # The JSON API's own filter rules (its 400 invalid_parameter), shown on the page.
        found = parse_query(LocationFilter)
        zone, prefix = found.zone, found.prefix
    except ApiError as exc:
        zone, prefix, error = None, None, error or exc.message
    after = request.args.get("after") or None
    if after is not None and not LOCATION_CODE.fullmatch(after):
        abort(400)
    total, items, last = store.locations(
        code, zone=zone, prefix=prefix, after=after, limit=LOCATIONS_PAGE
    )
    # The registry lists a tenant's devices, not one warehouse's: pick ours here.
    devices = [
        d
        for d in registry.list_devices(engine(), who.tenant_id)
        if d["warehouse"] == code and d["revoked_at"] is None
    ]
    now = utcnow()
    views = {
        d["code"]: ledger.device_sync_view(engine(), who.tenant_id, d["code"], now) for d in devices
    }
    g.page_url = url_for("console.warehouse", code=code)
    return render_template(
        "console/warehouse.html",
        w=store.warehouse(code),
        zones=store.zones(code),
        zone_kinds=ZONE_KINDS,
        separators=SEPARATORS,
        symbologies=SYMBOLOGIES,
        locations=items,
        locations_total=total,
        zone_filter=zone or "",
        prefix=prefix or "",
        after=after,
        next=last,
        max_labels=MAX_LABELS,
        devices=devices,
        views=views,
        created=request.args.get("created", type=int),
        error=error,
        form=request.form,
    ), status


def register(app: Any) -> None:
    app.register_blueprint(bp)

    @app.get("/")
    def _root() -> Response:
        return redirect(url_for("console.dashboard"))
