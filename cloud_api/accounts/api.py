"""注册登录, 安全策略, users and roles, audit, API keys, platform staff grants."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g

from cangyun.errors import AlreadyExists, NotFound
from cangyun.httpapi import ApiError, json_body, json_response, page, query_int
from cangyun.timeutil import utcnow
from cloud_api.accounts import security
from cloud_api.accounts import store as accounts
from cloud_api.accounts.security import PolicyError, SecurityPolicy
from cloud_api.accounts.store import TenantAccounts
from cloud_api.platform.auth import caller, client_ip, engine, feature, requires
from cloud_api.platform.mail import Mail, MailError, SmtpMailer

bp = Blueprint("accounts", __name__)

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
MAX_BODY = 16 * 1024


def tenant_accounts() -> TenantAccounts:
    return TenantAccounts(engine(), caller().tenant_id)


def mailer() -> SmtpMailer:
    return SmtpMailer(current_app.extensions["cangyun.settings"].smtp)


def body(*required: str) -> dict[str, Any]:
    data = json_body(MAX_BODY)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    for name in required:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(422, "missing_field", f"{name} is required", {"field": name})
    return data


def text(data: dict[str, Any], name: str, limit: int, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(
            422,
            "invalid_field",
            f"{name} must be text of at most {limit} characters",
            {"field": name},
        )
    return value.strip()


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise ApiError(422, "invalid_email", "not a valid email address", {"field": "email"})
    return email


def check_password(policy: SecurityPolicy, password: str, email: str) -> None:
    try:
        policy.check_password(password, email=email)
    except PolicyError as exc:
        raise ApiError(422, exc.code, exc.message, {"field": "password"}) from exc


# --- registration and login -----------------------------------------------------------


@bp.post("/auth/register")
def register() -> Response:
    data = body("tenant_name", "email", "password")
    email = check_email(data["email"])
    check_password(SecurityPolicy(), data["password"], email)
    name = text(data, "tenant_name", 200)
    phone = text(data, "phone", 32)
    try:
        tenant_id, user_id, code = accounts.register(
            engine(),
            tenant_name=name,
            email=email,
            password=data["password"],
            phone=phone,
            ip=client_ip(),
        )
    except AlreadyExists as exc:
        raise ApiError(409, "email_taken", str(exc)) from exc
    user = accounts.user_by_id(engine(), user_id)
    assert user is not None
    token, expires_at, _ = accounts.login_succeeded(
        engine(), user, SecurityPolicy(), client_ip(), name="registration"
    )
    return json_response(
        {
            "token": token,
            "expires_at": expires_at.isoformat(),
            "tenant": code,
            "user_id": user_id,
            "role": "owner",
        },
        201,
    )


@bp.post("/auth/login")
def login() -> Response:
    data = body("email", "password")
    user = accounts.user_by_email(engine(), data["email"])
    if user is None or not user["active"]:
        accounts.credentials.hash_password(data["password"])  # same cost: no account oracle
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    policy = accounts.policy_for(engine(), user["tenant_id"])
    now = utcnow()
    if user["locked_until"] is not None and user["locked_until"] > now:
        _locked(user["locked_until"])
    if not policy.ip_allowed(client_ip()):
        raise ApiError(403, "ip_not_allowed", f"logins from {client_ip()} are not allowed")
    if not accounts.credentials.verify_password(user["password_hash"], data["password"]):
        locked_until = accounts.login_failed(engine(), user, policy, client_ip())
        if locked_until is not None:
            _locked(locked_until)
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    if policy.two_step:
        code = accounts.new_code(engine(), user["id"], "login")
        _send(
            user["email"],
            "仓运通 登录验证码 / login code",
            f"您的登录验证码是 {code}，10 分钟内有效。\nYour login code is {code} (10 minutes).",
        )
        return json_response({"two_step": True, "message": "a code was sent by email"}, 202)
    return _session(user, policy)


@bp.post("/auth/login/verify")
def login_verify() -> Response:
    data = body("email", "code")
    user = accounts.user_by_email(engine(), data["email"])
    if user is None or not user["active"]:
        raise ApiError(401, "invalid_code", "wrong or expired code")
    if accounts.use_code(engine(), "login", data["code"].strip(), user_id=user["id"]) is None:
        raise ApiError(401, "invalid_code", "wrong or expired code")
    return _session(user, accounts.policy_for(engine(), user["tenant_id"]))


def _session(user: dict[str, Any], policy: SecurityPolicy) -> Response:
    token, expires_at, expired = accounts.login_succeeded(engine(), user, policy, client_ip())
    return json_response(
        {
            "token": token,
            "expires_at": expires_at.isoformat(),
            "tenant": user["tenant"],
            "role": user["role"],
            "password_expired": expired,
        }
    )


def _locked(until: Any) -> None:
    seconds = security.retry_after_seconds(until, utcnow())
    raise ApiError(
        429,
        "account_locked",
        f"too many failed logins; try again in {seconds} s",
        {"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def _send(to: str, subject: str, content: str) -> None:
    try:
        mailer().send(Mail(to, subject, content))
    except MailError as exc:
        raise ApiError(503, "mail_unavailable", f"the email could not be sent: {exc}") from exc


@bp.post("/auth/logout")
def logout() -> Response:
    accounts.revoke_token(engine(), caller().token_id)
    return Response(status=204)


@bp.get("/auth/me")
def me() -> Response:
    who = caller()
    return json_response(
        {
            "tenant": who.tenant,
            "role": who.role,
            "actor": who.actor,
            "kind": who.kind,
            "scopes": sorted(who.scopes) if who.scopes else None,
            "password_expired": who.password_expired,
            "permissions": sorted(security.PERMISSIONS.get(who.role, ())),
        }
    )


@bp.post("/auth/password")
def change_password() -> Response:
    data = body("current_password", "new_password")
    who = caller()
    if who.user_id is None:
        raise ApiError(403, "forbidden", "API keys have no password")
    user = accounts.user_by_id(engine(), who.user_id)
    assert user is not None
    if not accounts.credentials.verify_password(user["password_hash"], data["current_password"]):
        raise ApiError(403, "wrong_password", "the current password is wrong")
    if data["new_password"] == data["current_password"]:
        raise ApiError(
            422,
            "password_reused",
            "the new password must differ from the current one",
            {"field": "new_password"},
        )
    check_password(
        accounts.policy_for(engine(), who.tenant_id), data["new_password"], user["email"]
    )
    accounts.set_password(
        engine(), user["id"], data["new_password"], actor=user["email"], ip=client_ip()
    )
    return Response(status=204)


@bp.post("/auth/password-reset")
def password_reset() -> Response:
    data = body("email")
    user = accounts.user_by_email(engine(), data["email"])
    # Same answer whether or not the account exists.
    if user is not None and user["active"]:
        token = accounts.new_code(engine(), user["id"], "password_reset")
        _send(
            user["email"],
            "仓运通 重置密码 / password reset",
            f"重置密码请使用以下凭证（1 小时内有效）/ Reset token (1 hour):\n\n{token}\n\n"
            'POST /api/v1/auth/password-reset/confirm {"token": ..., "new_password": ...}',
        )
    return json_response({"message": "if the account exists, a reset email was sent"}, 202)


@bp.post("/auth/password-reset/confirm")
def password_reset_confirm() -> Response:
    data = body("token", "new_password")
    user_id = accounts.use_code(engine(), "password_reset", data["token"].strip())
    if user_id is None:
        raise ApiError(400, "invalid_token", "the reset token is wrong, used or expired")
    user = accounts.user_by_id(engine(), user_id)
    assert user is not None
    check_password(
        accounts.policy_for(engine(), user["tenant_id"]), data["new_password"], user["email"]
    )
    accounts.set_password(
        engine(), user_id, data["new_password"], actor=user["email"], ip=client_ip()
    )
    return Response(status=204)


# --- 安全策略 -----------------------------------------------------------------------------


@bp.get("/security-policy")
@requires("security_policy:read")
def get_policy() -> Response:
    return json_response(tenant_accounts().policy().to_json())


@bp.put("/security-policy")
@requires("security_policy:write")
def put_policy() -> Response:
    data = json_body(MAX_BODY)
    store = tenant_accounts()
    try:
        policy = SecurityPolicy.from_json(data, base=store.policy())
    except PolicyError as exc:
        raise ApiError(422, exc.code, exc.message, {"field": exc.field}) from exc
    if policy.ip_allowlist and not policy.ip_allowed(client_ip()):
        raise ApiError(
            422,
            "would_lock_out",
            f"the allow-list must include your own address {client_ip()}",
            {"field": "ip_allowlist"},
        )
    store.set_policy(policy, caller(), client_ip())
    return json_response(policy.to_json())


@bp.get("/audit")
@requires("audit:read")
def get_audit() -> Response:
    limit = query_int("limit", 100, 1, 500)
    cursor = query_int("cursor", 0, 0, 2**62) or None
    from flask import request

    total, items, last = tenant_accounts().audit_entries(
        before_id=cursor, limit=limit, action=request.args.get("action") or None
    )
    return json_response(page(total, items, str(last) if last else None))


# --- users and roles ------------------------------------------------------------------


@bp.get("/users")
@requires("users:read")
def list_users() -> Response:
    items = tenant_accounts().users()
    return json_response(page(len(items), items, None))


@bp.get("/users/<int:user_id>")
@requires("users:read")
def get_user(user_id: int) -> Response:
    try:
        return json_response(tenant_accounts().user(user_id))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@bp.post("/users")
@requires("users:write")
def create_user() -> Response:
    data = body("email", "password", "role")
    role = data["role"]
    if role not in security.ASSIGNABLE_ROLES:
        raise ApiError(
            422,
            "invalid_role",
            f"role must be one of {', '.join(security.ASSIGNABLE_ROLES)}",
            {"field": "role"},
        )
    email = check_email(data["email"])
    store = tenant_accounts()
    check_password(store.policy(), data["password"], email)
    try:
        user = store.create_user(
            email=email,
            password=data["password"],
            role=role,
            name=text(data, "name", 100),
            phone=text(data, "phone", 32),
            caller=caller(),
            ip=client_ip(),
        )
    except AlreadyExists as exc:
        raise ApiError(409, "email_taken", str(exc)) from exc
    return json_response(user, 201)


@bp.patch("/users/<int:user_id>")
@requires("users:write")
def update_user(user_id: int) -> Response:
    data = json_body(MAX_BODY)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    unknown = set(data) - {"role", "active", "name", "phone"}
    if unknown:
        raise ApiError(422, "unknown_field", f"cannot change {sorted(unknown)[0]}")
    store = tenant_accounts()
    try:
        target = store.user(user_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    changes: dict[str, Any] = {}
    if "role" in data:
        if data["role"] not in security.ASSIGNABLE_ROLES:
            raise ApiError(422, "invalid_role", "that role cannot be assigned", {"field": "role"})
        changes["role"] = data["role"]
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise ApiError(
                422, "invalid_field", "active must be true or false", {"field": "active"}
            )
        changes["active"] = data["active"]
    for name, limit in (("name", 100), ("phone", 32)):
        if name in data:
            changes[name] = text(data, name, limit)
    if target["role"] == "owner" and ("role" in changes or changes.get("active") is False):
        raise ApiError(409, "owner_protected", "the owner cannot be demoted or disabled")
    if user_id == caller().user_id and ("role" in changes or "active" in changes):
        raise ApiError(409, "self_change", "change your own role or status through another admin")
    return json_response(store.update_user(user_id, changes, caller(), client_ip()))


# --- API keys (二次开发) -----------------------------------------------------------------


@bp.get("/api-keys")
@requires("api_keys:manage")
@feature("secondary_development")
def list_api_keys() -> Response:
    items = tenant_accounts().api_keys()
    return json_response(page(len(items), items, None))


@bp.post("/api-keys")
@requires("api_keys:manage")
@feature("secondary_development")
def create_api_key() -> Response:
    data = body("name")
    who = caller()
    scopes = data.get("scopes")
    mine = security.PERMISSIONS[who.role] & (who.scopes or security.ALL_PERMISSIONS)
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise ApiError(
            422,
            "invalid_scopes",
            "scopes must be a non-empty list of permissions",
            {"field": "scopes", "allowed": sorted(mine)},
        )
    if not set(scopes) <= mine:
        raise ApiError(
            422,
            "invalid_scopes",
            "a key cannot do more than its creator",
            {"field": "scopes", "not_allowed": sorted(set(scopes) - mine)},
        )
    days = data.get("expires_in_days", 90)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 730:
        raise ApiError(
            422, "invalid_field", "expires_in_days must be 1..730", {"field": "expires_in_days"}
        )
    token, key = tenant_accounts().create_api_key(
        name=text(data, "name", 100),
        role=who.role,
        scopes=scopes,
        expires_at=utcnow() + timedelta(days=days),
        caller=who,
        ip=client_ip(),
    )
    return json_response(key | {"key": token}, 201)


@bp.delete("/api-keys/<int:key_id>")
@requires("api_keys:manage")
@feature("secondary_development")
def revoke_api_key(key_id: int) -> Response:
    try:
        tenant_accounts().revoke_api_key(key_id, caller(), client_ip())
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return Response(status=204)


# --- platform staff (代运营) ------------------------------------------------------------


@bp.get("/staff-grants")
@requires("staff_grants:manage")
def list_grants() -> Response:
    items = tenant_accounts().grants()
    return json_response(page(len(items), items, None))


@bp.post("/staff-grants")
@requires("staff_grants:manage")
@feature("value_added_services", add_on="managed_operations")
def create_grant() -> Response:
    data = body("staff_email")
    hours = data.get("hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 90:
        raise ApiError(422, "invalid_field", "hours must be 1..2160", {"field": "hours"})
    try:
        grant = tenant_accounts().create_grant(
            staff_email=data["staff_email"],
            hours=hours,
            reason=text(data, "reason", 200),
            caller=caller(),
            ip=client_ip(),
        )
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return json_response(grant, 201)


@bp.delete("/staff-grants/<int:grant_id>")
@requires("staff_grants:manage")
def revoke_grant(grant_id: int) -> Response:
    try:
        tenant_accounts().revoke_grant(grant_id, caller(), client_ip())
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return Response(status=204)


@bp.post("/staff/act")
def staff_act() -> Response:
    """Platform staff: a session inside a tenant that granted access; every step is audited."""
    who = caller()
    if who.role != security.PLATFORM_STAFF or who.user_id is None:
        raise ApiError(403, "forbidden", "only platform staff act for tenants")
    data = json_body(MAX_BODY)
    grant_id = data.get("grant_id") if isinstance(data, dict) else None
    if isinstance(grant_id, bool) or not isinstance(grant_id, int):
        raise ApiError(422, "missing_field", "grant_id is required", {"field": "grant_id"})
    grant = accounts.active_grant(engine(), grant_id, who.user_id)
    if grant is None:
        raise ApiError(403, "no_grant", "no active grant from that tenant")
    user = accounts.user_by_id(engine(), who.user_id)
    assert user is not None
    token, expires_at, _ = accounts.login_succeeded(
        engine(),
        user,
        accounts.policy_for(engine(), grant["tenant_id"]),
        client_ip(),
        name="staff-grant",
        grant_id=grant_id,
        tenant_id=grant["tenant_id"],
    )
    g.pop("caller", None)
    return json_response(
        {"token": token, "expires_at": min(expires_at, grant["expires_at"]).isoformat()}
    )


# --- OpenAPI ---------------------------------------------------------------------------


def paths() -> dict[str, Any]:
    from cangyun.openapi import operation, path_param, query

    def obj(required: list[str], **props: Any) -> dict[str, Any]:
        return {"type": "object", "required": required, "properties": props}

    s, i, b = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    auth_errors = {400: "malformed body", 422: "invalid field"}
    tags = ["accounts"]
    policy_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_length": {"type": "integer", "minimum": 8, "maximum": 128},
            "require_upper": b, "require_lower": b, "require_digit": b, "require_symbol": b,
            "rotation_days": {"type": "integer", "minimum": 0, "maximum": 3650},
            "lockout_threshold": {"type": "integer", "minimum": 1, "maximum": 100},
            "lockout_minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
            "session_minutes": {"type": "integer", "minimum": 5, "maximum": 43200},
            "ip_allowlist": {"type": "array", "items": s},
            "two_step": b,
        },
    }  # fmt: skip
    return {
        "/api/v1/auth/register": {
            "post": operation(
                "Register a tenant (company) and its owner; returns a session token",
                body=obj(
                    ["tenant_name", "email", "password"],
                    tenant_name=s,
                    email=s,
                    password=s,
                    phone=s,
                ),
                responses={201: "token, tenant", 409: "email already registered"} | auth_errors,
                public=True,
                tags=tags,
            )
        },
        "/api/v1/auth/login": {
            "post": operation(
                "Log in; 202 when the tenant wants a second step (a code by email)",
                body=obj(["email", "password"], email=s, password=s),
                responses={
                    200: "token",
                    202: "code sent",
                    401: "wrong email or password",
                    403: "address not allowed",
                    429: "locked; see Retry-After",
                    503: "mail unavailable",
                }
                | auth_errors,
                public=True,
                tags=tags,
            )
        },
        "/api/v1/auth/login/verify": {
            "post": operation(
                "Second login step: the emailed code",
                body=obj(["email", "code"], email=s, code=s),
                responses={200: "token", 401: "wrong or expired code"} | auth_errors,
                public=True,
                tags=tags,
            )
        },
        "/api/v1/auth/logout": {
            "post": operation(
                "End this session", responses={204: "logged out", 401: "no session"}, tags=tags
            )
        },
        "/api/v1/auth/me": {
            "get": operation(
                "Who am I: tenant, role, permissions",
                responses={200: "caller", 401: "no session"},
                tags=tags,
            )
        },
        "/api/v1/auth/password": {
            "post": operation(
                "Change my password (ends my other sessions)",
                body=obj(["current_password", "new_password"], current_password=s, new_password=s),
                responses={204: "changed", 401: "no session", 403: "wrong current password"}
                | auth_errors,
                tags=tags,
            )
        },
        "/api/v1/auth/password-reset": {
            "post": operation(
                "Email a password reset token (same answer whether or not the account exists)",
                body=obj(["email"], email=s),
                responses={202: "accepted", 503: "mail unavailable"} | auth_errors,
                public=True,
                tags=tags,
            )
        },
        "/api/v1/auth/password-reset/confirm": {
            "post": operation(
                "Set a new password with the emailed token",
                body=obj(["token", "new_password"], token=s, new_password=s),
                responses={204: "changed"} | auth_errors,
                public=True,
                tags=tags,
            )
        },
        "/api/v1/security-policy": {
            "get": operation(
                "This tenant's security policy (安全策略)",
                responses={200: "policy", 401: "no session", 403: "forbidden"},
                tags=tags,
            ),
            "put": operation(
                "Change the security policy (owner); fields left out keep their value",
                body=policy_schema,
                responses={200: "policy", 401: "no session", 403: "forbidden"} | auth_errors,
                tags=tags,
            ),
        },
        "/api/v1/audit": {
            "get": operation(
                "Audit log: every change and every login, newest first",
                params=[
                    query("action", "prefix of the action, e.g. login"),
                    query("limit", "1-500", i),
                    query("cursor", "next of the previous page"),
                ],
                responses={200: "page", 400: "bad parameter", 401: "no session", 403: "forbidden"},
                tags=tags,
            )
        },
        "/api/v1/users": {
            "get": operation(
                "Users of this tenant",
                responses={200: "page", 401: "no session", 403: "forbidden"},
                tags=tags,
            ),
            "post": operation(
                "Add a user",
                body=obj(
                    ["email", "password", "role"],
                    email=s,
                    password=s,
                    role={"type": "string", "enum": list(security.ASSIGNABLE_ROLES)},
                    name=s,
                    phone=s,
                ),
                responses={201: "user", 401: "no session", 403: "forbidden", 409: "email taken"}
                | auth_errors,
                tags=tags,
            ),
        },
        "/api/v1/users/{user_id}": {
            "get": operation(
                "One user",
                params=[path_param("user_id", "user id", integer=True)],
                responses={
                    200: "user",
                    401: "no session",
                    403: "forbidden",
                    404: "not in this tenant",
                },
                tags=tags,
            ),
            "patch": operation(
                "Change a user's role, status, name or phone",
                params=[path_param("user_id", "user id", integer=True)],
                body={
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "role": {"type": "string", "enum": list(security.ASSIGNABLE_ROLES)},
                        "active": b,
                        "name": s,
                        "phone": s,
                    },
                },
                responses={
                    200: "user",
                    401: "no session",
                    403: "forbidden",
                    404: "not found",
                    409: "owner or self",
                }
                | auth_errors,
                tags=tags,
            ),
        },
        "/api/v1/api-keys": {
            "get": operation(
                "API keys (二次开发)",
                responses={200: "page", 401: "no session", 403: "forbidden"},
                tags=tags,
            ),
            "post": operation(
                "Create a scoped, expiring API key; the key is shown only here",
                body=obj(
                    ["name", "scopes"],
                    name=s,
                    scopes={"type": "array", "items": s},
                    expires_in_days={"type": "integer", "minimum": 1, "maximum": 730},
                ),
                responses={201: "key", 401: "no session", 403: "forbidden"} | auth_errors,
                tags=tags,
            ),
        },
        "/api/v1/api-keys/{key_id}": {
            "delete": operation(
                "Revoke an API key",
                params=[path_param("key_id", "key id", integer=True)],
                responses={204: "revoked", 401: "no session", 403: "forbidden", 404: "not found"},
                tags=tags,
            )
        },
        "/api/v1/staff-grants": {
            "get": operation(
                "Grants to platform staff (代运营)",
                responses={200: "page", 401: "no session", 403: "forbidden"},
                tags=tags,
            ),
            "post": operation(
                "Let a platform staff member act in this tenant for some hours (owner)",
                body=obj(
                    ["staff_email"],
                    staff_email=s,
                    hours={"type": "integer", "minimum": 1, "maximum": 2160},
                    reason=s,
                ),
                responses={
                    201: "grant",
                    401: "no session",
                    403: "forbidden",
                    404: "no such staff member",
                }
                | auth_errors,
                tags=tags,
            ),
        },
        "/api/v1/staff-grants/{grant_id}": {
            "delete": operation(
                "Revoke a grant",
                params=[path_param("grant_id", "grant id", integer=True)],
                responses={204: "revoked", 401: "no session", 403: "forbidden", 404: "not found"},
                tags=tags,
            )
        },
        "/api/v1/staff/act": {
            "post": operation(
                "Platform staff: a session inside a tenant that granted access",
                body=obj(["grant_id"], grant_id=i),
                responses={200: "token", 401: "no session", 403: "no grant"} | auth_errors,
                tags=tags,
            )
        },
    }
