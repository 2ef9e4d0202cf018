"""Signing in and out of the console, and changing one's password."""

from __future__ import annotations

from typing import Any

from flask import Response, g, make_response, redirect, render_template, request, url_for

from cangyun.errors import DomainError, Forbidden, Invalid, Throttled, Unavailable
from cangyun.httpapi import status_of
from cloud_api.accounts import service
from cloud_api.accounts import store as accounts
from cloud_api.accounts.security import PolicyError
from cloud_api.console import bp
from cloud_api.console.session import COOKIE, lang
from cloud_api.platform import i18n
from cloud_api.platform.auth import client_ip, engine, mailer


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
