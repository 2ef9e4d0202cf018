"""Signing in, for the JSON API and the console alike: one ``authenticate()``.

The order of the checks is the security: every attempt, known email or not, does exactly one
password-hash computation, so the answer time says nothing about which emails exist; a
login from outside the tenant's IP allow-list is refused before any session is written (and
never counts towards locking the account, so outsiders cannot lock people out); a locked
account stays locked whatever the password. A session opened with an expired password can
only change it (``Session.password_expired``; the API and the console both enforce that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from cangyun.errors import Forbidden, Invalid, Throttled, Unauthenticated, Unavailable
from cangyun.timeutil import utcnow
from cloud_api.accounts import credentials, security
from cloud_api.accounts import store as accounts
from cloud_api.accounts.security import SecurityPolicy
from cloud_api.platform.mail import Mail, MailError, SmtpMailer
from cloud_api.platform.tenancy import Caller


@dataclass(frozen=True)
class Verified:
    """A user whose password (or one-time code) was right, from an allowed address."""

    user: dict[str, Any]
    policy: SecurityPolicy
    needs_code: bool  # the tenant asks for a second step: a code sent by email


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime
    password_expired: bool


def wrong_login() -> Unauthenticated:
    return Unauthenticated("wrong email or password", code="invalid_credentials")


def authenticate(engine: Engine, email: str, password: str, ip: str) -> Verified:
    """Check an email and password from ``ip``; raises ``Unauthenticated`` (wrong email or
    password), ``Throttled`` (locked) or ``Forbidden`` (address not allowed)."""
    user = accounts.user_by_email(engine, email) if email.strip() else None
    if user is None or not user["active"]:
        credentials.hash_password(password)  # the same hash work as a known email
        raise wrong_login()
    right = credentials.verify_password(user["password_hash"], password)
    policy = accounts.policy_for(engine, user["tenant_id"])
    _not_locked(user)
    _address_allowed(policy, ip)
    if not right:
        locked_until = accounts.login_failed(engine, user, policy, ip)
        if locked_until is not None:
            raise _locked(locked_until)
        raise wrong_login()
    return Verified(user, policy, needs_code=policy.two_step)


def verify_code(engine: Engine, email: str, code: str, ip: str) -> Verified:
    """The second step: the one-time code mailed by ``send_login_code``."""
    wrong = Unauthenticated("wrong or expired code", code="invalid_code")
    user = accounts.user_by_email(engine, email) if email.strip() else None
    if user is None or not user["active"]:
        raise wrong
    policy = accounts.policy_for(engine, user["tenant_id"])
    _not_locked(user)
    _address_allowed(policy, ip)
    if accounts.use_code(engine, "login", code.strip(), user_id=user["id"]) is None:
        raise wrong
    return Verified(user, policy, needs_code=False)


def send_login_code(engine: Engine, mailer: SmtpMailer, user: dict[str, Any]) -> None:
    code = accounts.new_code(engine, user["id"], "login")
    send(
        mailer,
        Mail(
            user["email"],
            "仓运通 登录验证码 / login code",
            f"您的登录验证码是 {code}，10 分钟内有效。\nYour login code is {code} (10 minutes).",
        ),
    )


def open_session(engine: Engine, verified: Verified, ip: str, *, name: str = "login") -> Session:
    if verified.needs_code:
        raise RuntimeError("the second step is missing")  # a caller bug, never user input
    token, expires_at, expired = accounts.login_succeeded(
        engine, verified.user, verified.policy, ip, name=name
    )
    return Session(token, expires_at, expired)


def session_caller(engine: Engine, token: str, ip: str) -> Caller:
    """The caller a bearer token or console cookie stands for, from ``ip``."""
    found = accounts.caller_for_token(engine, token) if token else None
    if found is None:
        raise Unauthenticated("missing, expired or invalid bearer token")
    _address_allowed(accounts.policy_for(engine, found.tenant_id), ip)
    return found


def change_password(engine: Engine, user_id: int, current: str, new: str, ip: str) -> None:
    """The user's own change: the current password first, then the tenant's rules. Every
    session of the user ends (the console opens a fresh one)."""
    user = accounts.user_by_id(engine, user_id)
    if user is None:
        raise Unauthenticated("the session's user no longer exists")
    if not credentials.verify_password(user["password_hash"], current):
        raise Forbidden("the current password is wrong", code="wrong_password")
    if new == current:
        raise Invalid(
            "the new password must differ from the current one",
            code="password_reused",
            field="new_password",
        )
    check_password(accounts.policy_for(engine, user["tenant_id"]), new, user["email"])
    accounts.set_password(engine, user_id, new, actor=user["email"], ip=ip)


def check_password(policy: SecurityPolicy, password: str, email: str) -> None:
    """The tenant's password rules; a refusal names the ``password`` field."""
    try:
        policy.check_password(password, email=email)
    except security.PolicyError as exc:
        raise security.PolicyError(exc.code, exc.message, "password") from exc


def send(mailer: SmtpMailer, mail: Mail) -> None:
    try:
        mailer.send(mail)
    except MailError as exc:
        raise Unavailable(f"the email could not be sent: {exc}", code="mail_unavailable") from exc


def _not_locked(user: dict[str, Any]) -> None:
    if user["locked_until"] is not None and user["locked_until"] > utcnow():
        raise _locked(user["locked_until"])


def _locked(until: datetime) -> Throttled:
    seconds = security.retry_after_seconds(until, utcnow())
    return Throttled(
        f"too many failed logins; try again in {seconds} s",
        code="account_locked",
        details={"retry_after": seconds},
    )


def _address_allowed(policy: SecurityPolicy, ip: str) -> None:
    if not policy.ip_allowed(ip):
        raise Forbidden(
            f"this tenant's security policy does not allow requests from {ip}",
            code="ip_not_allowed",
        )


def act_for_tenant(engine: Engine, who: Caller, grant_id: int, ip: str) -> Session:
    """Platform staff (代运营): a session inside a tenant that granted access, ending with the
    grant at the latest; everything done with it is audited under the grant."""
    if who.role != security.PLATFORM_STAFF or who.user_id is None or who.grant_id is not None:
        raise Forbidden("only platform staff, signed in as themselves, act for tenants")
    grant = accounts.active_grant(engine, grant_id, who.user_id)
    if grant is None:
        raise Forbidden("no active grant from that tenant", code="no_grant")
    user = accounts.user_by_id(engine, who.user_id)
    if user is None:
        raise Unauthenticated("the session's user no longer exists")
    token, expires_at, _ = accounts.login_succeeded(
        engine,
        user,
        accounts.policy_for(engine, grant["tenant_id"]),
        ip,
        name="staff-grant",
        grant_id=grant_id,
        tenant_id=grant["tenant_id"],
    )
    return Session(token, min(expires_at, grant["expires_at"]), False)
