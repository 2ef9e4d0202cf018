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
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.engine import Engine

from cangyun.timeutil import utcnow
from cloud_api import i18n, security
from cloud_api.security import PolicyError, SecurityPolicy
from cloud_api.store import accounts, ledger, registry
from cloud_api.store.accounts import Caller, TenantAccounts
from cloud_api.store.registry import AlreadyExists, NotFound

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
COOKIE = "cy_session"
CHART_DAYS = 14


def engine() -> Engine:
    return current_app.extensions["cangyun.engine"]


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
    }


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
    token = request.cookies.get(COOKIE)
    found = accounts.caller_for_token(engine(), token) if token else None
    if found is None or found.kind != "session":
        return redirect(url_for("console.login", lang=lang()))
    if not accounts.policy_for(engine(), found.tenant_id).ip_allowed(request.remote_addr):
        abort(403)
    g.console_caller = found
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


def require(permission: str) -> Caller:
    if not _can(permission):
        abort(403)
    return g.console_caller


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("console/login.html", error=None, two_step=False, email="")
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    code = request.form.get("code", "").strip()
    user = accounts.user_by_email(engine(), email) if email else None
    if user is None or not user["active"]:
        return _login_error("wrong_login", email)
    policy = accounts.policy_for(engine(), user["tenant_id"])
    now = utcnow()
    if user["locked_until"] is not None and user["locked_until"] > now:
        seconds = security.retry_after_seconds(user["locked_until"], now)
        return _login_error("locked", email, status=429, seconds=seconds)
    if code:
        if accounts.use_code(engine(), "login", code, user_id=user["id"]) is None:
            return render_template(
                "console/login.html",
                error=i18n.text("wrong_login", lang()),
                two_step=True,
                email=email,
            ), 401
    else:
        if not accounts.credentials.verify_password(user["password_hash"], password):
            locked = accounts.login_failed(engine(), user, policy, request.remote_addr or "")
            if locked is not None:
                return _login_error(
                    "locked", email, status=429, seconds=security.retry_after_seconds(locked, now)
                )
            return _login_error("wrong_login", email)
        if policy.two_step:
            from cloud_api.api_accounts import mailer
            from cloud_api.mail import Mail, MailError

            one_time = accounts.new_code(engine(), user["id"], "login")
            try:
                mailer().send(
                    Mail(
                        user["email"],
                        "仓运通 登录验证码 / login code",
                        f"您的登录验证码是 {one_time} / Your code: {one_time}",
                    )
                )
            except MailError:
                return _login_error("wrong_login", email, status=503)
            return render_template("console/login.html", error=None, two_step=True, email=email)
    token, expires_at, _ = accounts.login_succeeded(
        engine(), user, policy, request.remote_addr or "", name="console"
    )
    response = make_response(redirect(url_for("console.dashboard")))
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        expires=expires_at,
    )
    return response


def _login_error(key: str, email: str, status: int = 401, **values: Any) -> tuple[str, int]:
    return render_template(
        "console/login.html", error=i18n.text(key, lang(), **values), two_step=False, email=email
    ), status


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
    return render_template(
        "console/dashboard.html",
        today=series[-1][1],
        devices=devices,
        online=sum(1 for d in devices if d["online"]),
        recent=recent,
        stock_lines=stock_total,
        chart=_bar_chart(series),
    )


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
            if form.get("role") not in security.ASSIGNABLE_ROLES:
                raise PolicyError("invalid_role", "role")
            store.policy().check_password(form.get("password", ""), email=form.get("email"))
            store.create_user(
                email=form.get("email", ""),
                password=form.get("password", ""),
                role=form["role"],
                name=form.get("name", "")[:100],
                phone=form.get("phone", "")[:32],
                caller=who,
                ip=request.remote_addr or "",
            )
            return redirect(url_for("console.users"))
        except (PolicyError, AlreadyExists) as exc:
            error = getattr(exc, "message", str(exc))
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
        store.update_user(user_id, changes, who, request.remote_addr or "")
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
            if not new_policy.ip_allowed(request.remote_addr):
                raise PolicyError("would_lock_out", f"{request.remote_addr} must stay allowed")
            store.set_policy(new_policy, who, request.remote_addr or "")
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


def register(app: Any) -> None:
    app.register_blueprint(bp)

    @app.get("/")
    def _root() -> Response:
        return redirect(url_for("console.dashboard"))
