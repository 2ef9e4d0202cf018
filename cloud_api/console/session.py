"""The console's session: the cookie, CSRF, language, permissions and the error page, and the
helpers every template gets (``t``, ``can``, ``local_time``...)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Response, abort, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from cangyun.errors import Forbidden, Unauthenticated
from cloud_api.accounts import security, service
from cloud_api.billing import catalog
from cloud_api.console import bp
from cloud_api.platform import i18n
from cloud_api.platform.auth import client_ip, engine
from cloud_api.platform.tenancy import Caller
from cloud_api.sites import registry

COOKIE = "cy_session"
PLATFORM_TENANT = "platform"  # platform staff's own tenant (cangyun cloud staff add)
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
        "can": can,
        "is_staff": is_staff,
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


def can(permission: str) -> bool:
    """As ``platform.auth.requires``: staff signed in as themselves see no tenant page (they
    have their own, ``is_staff``), and a staff session is held to its grant's scopes."""
    who: Caller | None = getattr(g, "console_caller", None)
    if who is None or (who.role == security.PLATFORM_STAFF and who.grant_id is None):
        return False
    if not security.allowed(who.role, permission, who.scopes):
        return False
    return who.grant_scopes is None or permission in security.grant_permissions(who.grant_scopes)


def is_staff() -> bool:
    """Platform staff signed in as themselves: the staff pages (平台运营) are theirs alone."""
    who: Caller | None = getattr(g, "console_caller", None)
    return (
        who is not None
        and who.role == security.PLATFORM_STAFF
        and who.tenant == PLATFORM_TENANT
        and who.grant_id is None
    )


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
    # Staff have no tenant dashboard: their home is the platform's overview.
    if request.endpoint == "console.dashboard" and is_staff():
        return redirect(url_for("console.platform_home"))
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
    key = ERROR_TEXTS.get(status, "bad_request")
    if status == 403 and is_staff():
        key = "staff_not_tenant_pages"  # say why, and where their pages are
    message = i18n.text(key, lang())
    return render_template("console/error.html", status=status, message=message), status


def require(permission: str) -> Caller:
    if not can(permission):
        abort(403)
    return g.console_caller


def require_staff() -> Caller:
    if not is_staff():
        abort(403)
    return g.console_caller


def edition_notice(key: str, feature: str, edition: str | None, **values: str) -> str:
    """Why an edition gate refuses, in the reader's words: ``<key>_need_edition`` naming the
    tenant's edition, or ``<key>_need_any_edition`` without one, with the editions that have
    ``feature`` as one phrase ("基础版、标准版或专业版")."""
    pick = 1 if lang() == "en" else 0
    names = [
        catalog.EDITION_NAMES[code][pick]
        for code in catalog.EDITION_ORDER
        if feature in catalog.EDITION_FEATURES[code]
    ]
    comma, either = ("、", "或") if pick == 0 else (", ", " or ")
    offered = either.join(filter(None, [comma.join(names[:-1]), names[-1]]))
    current = catalog.EDITION_NAMES[edition][pick] if edition else None
    wording = f"{key}_need_edition" if current else f"{key}_need_any_edition"
    return i18n.text(wording, lang(), edition=current, editions=offered, **values)
