"""注册登录, 安全策略, users and roles, audit, API keys, platform staff grants over HTTP.

Signing in is ``accounts.service`` (the console uses the same functions); the stores refuse
with ``cangyun.errors`` kinds, so no route translates an error.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, g
from pydantic import Field, StrictBool, StringConstraints

from cangyun.apispec import Body, Page, Query, Reply, operation
from cangyun.fields import Email, Name, RowId, Text
from cangyun.httpapi import ApiError, json_response, page
from cangyun.timeutil import utcnow
from cloud_api.accounts import security, service
from cloud_api.accounts import store as accounts
from cloud_api.accounts.security import SecurityPolicy
from cloud_api.accounts.store import TenantAccounts
from cloud_api.platform.auth import (
    caller,
    client_ip,
    engine,
    feature,
    mailer,
    platform_staff_only,
    requires,
)
from cloud_api.platform.mail import Mail

bp = Blueprint("accounts", __name__)

AssignableRole = Literal[security.ASSIGNABLE_ROLES]  # type: ignore[valid-type]
Permission = Literal[tuple(sorted(security.ALL_PERMISSIONS))]  # type: ignore[valid-type]
# A password is checked against the tenant's policy, not here: only a sane upper bound, and
# never stripped (spaces are characters of a password).
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=256)]
Secret = Text(256, min_length=1)  # a one-time code or reset token as typed


def tenant_accounts() -> TenantAccounts:
    return TenantAccounts(engine(), caller().tenant_id)


# --- bodies ---------------------------------------------------------------------------


class Registration(Body):
    tenant_name: Name(200) = Field(description="the company (租户) name")
    email: Email
    password: Password
    phone: Text(32) = ""


class Credentials(Body):
    email: Text(254, min_length=1)
    password: Password


class LoginCode(Body):
    email: Text(254, min_length=1)
    code: Secret = Field(description="the 6-digit code sent by email")


class PasswordChange(Body):
    current_password: Password
    new_password: Password


class ResetRequest(Body):
    email: Text(254, min_length=1)


class ResetConfirm(Body):
    token: Secret = Field(description="the token sent by email")
    new_password: Password


def _limit(name: str) -> Any:
    low, high = SecurityPolicy.LIMITS[name]
    return Field(None, ge=low, le=high, strict=True)


class PolicyChange(Body):
    """安全策略: fields left out keep their value"""

    min_length: int | None = _limit("min_length")
    require_upper: StrictBool | None = None
    require_lower: StrictBool | None = None
    require_digit: StrictBool | None = None
    require_symbol: StrictBool | None = None
    rotation_days: int | None = _limit("rotation_days")
    lockout_threshold: int | None = _limit("lockout_threshold")
    lockout_minutes: int | None = _limit("lockout_minutes")
    session_minutes: int | None = _limit("session_minutes")
    ip_allowlist: list[Text(64)] | None = Field(
        None, max_length=100, description="addresses or CIDR networks; empty: any address"
    )
    two_step: StrictBool | None = Field(None, description="a code by email after the password")


class NewUser(Body):
    email: Email
    password: Password
    role: AssignableRole
    name: Text(100) = ""
    phone: Text(32) = ""


class UserChange(Body):
    role: AssignableRole | None = None
    active: bool | None = Field(None, strict=True)
    name: Text(100) | None = None
    phone: Text(32) | None = None


class NewApiKey(Body):
    name: Name(100)
    scopes: list[Permission] = Field(min_length=1, description="what the key may do")
    expires_in_days: int = Field(90, ge=1, le=730, strict=True)


GrantScope = Literal[tuple(security.GRANT_SCOPES)]  # type: ignore[valid-type]
GrantScopes = Annotated[
    list[GrantScope],
    Field(min_length=1, max_length=len(security.GRANT_SCOPES),
          description="read: data and statistics; inbound/outbound: ASN/shipment lines on the"
          " tenant's behalf; reports: usage, stock and movements"),
]  # fmt: skip
GrantHours = Annotated[int, Field(ge=1, le=24 * 90, strict=True)]


class NewGrant(Body):
    staff_email: Text(254, min_length=1)
    hours: GrantHours = 24
    reason: Text(200) = ""
    scopes: GrantScopes = Field(default_factory=lambda: list(security.DEFAULT_GRANT_SCOPES))


class GrantRequest(Body):
    tenant: Text(64, min_length=1) = Field(description="the tenant's code")
    scopes: GrantScopes
    hours: GrantHours = 24
    reason: Text(200) = ""


class StaffAct(Body):
    grant_id: RowId


class AuditFilter(Query):
    action: Text(64) | None = Field(None, description="prefix of the action, e.g. login")
    limit: int = Field(100, ge=1, le=500)
    # Bounded so a huge number is a 400, not an integer the database cannot hold.
    cursor: int | None = Field(None, ge=1, le=2**62, description="the `next` of the previous page")


# --- answers --------------------------------------------------------------------------


class SessionToken(Reply):
    """A session: the bearer token to send as Authorization: Bearer"""

    token: str
    expires_at: str
    tenant: str
    role: str
    password_expired: bool


class Registered(Reply):
    """The new tenant and a session of its owner"""

    token: str
    expires_at: str
    tenant: str
    user_id: int
    role: str


class CodeSent(Reply):
    """A second step is needed: a code was sent by email"""

    two_step: bool
    message: str


class Accepted(Reply):
    """Accepted (the same answer whether or not the account exists)"""

    message: str


class Me(Reply):
    """Who is calling: tenant, role, what they may do"""

    tenant: str
    role: str
    actor: str
    kind: Literal["session", "api_key"]
    scopes: list[str] | None
    password_expired: bool
    permissions: list[str]


class Policy(Reply):
    """This tenant's security policy (安全策略)"""

    min_length: int
    require_upper: bool
    require_lower: bool
    require_digit: bool
    require_symbol: bool
    rotation_days: int
    lockout_threshold: int
    lockout_minutes: int
    session_minutes: int
    ip_allowlist: list[str]
    two_step: bool


class AuditEntry(Reply):
    """One change or login"""

    id: int
    actor: str
    action: str
    target: str
    details: dict[str, Any]  # what changed; its keys depend on the action
    ip: str
    via_grant: int | None
    created_at: str


class User(Reply):
    """A user of this tenant"""

    id: int
    email: str
    name: str
    phone: str
    role: str
    active: bool
    locked_until: str | None
    last_login_at: str | None
    password_changed_at: str | None
    created_at: str | None


class ApiKey(Reply):
    """An API key (二次开发); the key itself is never listed"""

    id: int
    name: str
    prefix: str
    role: str
    scopes: list[str]
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


class NewKey(ApiKey):
    """The key, shown only in this answer"""

    key: str


class Grant(Reply):
    """A grant letting a platform staff member act in a tenant (代运营)"""

    id: int
    tenant: str
    staff: str
    status: Literal[
        "requested", "active", "declined", "revoked", "withdrawn", "expired", "lapsed"
    ] = Field(description="lapsed: a request unanswered for 7 days; withdrawn: taken back by staff")
    scopes: list[str]
    hours: int
    requested: bool = Field(description="asked for by the staff member (else offered)")
    reason: str
    created_at: str | None
    approved_at: str | None
    expires_at: str | None = Field(description="none while requested")
    declined_at: str | None
    revoked_at: str | None


class StaffSession(Reply):
    """A session inside the granting tenant"""

    token: str
    expires_at: str


# --- registration and login -----------------------------------------------------------


@bp.post("/auth/register")
@operation(
    "Register a tenant (company) and its owner; returns a session token",
    body=Registration,
    responses={201: Registered, 409: "email already registered"},
    public=True,
)
def register(body: Registration) -> Response:
    service.check_password(SecurityPolicy(), body.password, body.email)
    tenant_id, user_id, code = accounts.register(
        engine(),
        tenant_name=body.tenant_name,
        email=body.email,
        password=body.password,
        phone=body.phone,
        ip=client_ip(),
    )
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
@operation(
    "Log in; 202 when the tenant wants a second step (a code by email)",
    body=Credentials,
    responses={
        200: SessionToken,
        202: CodeSent,
        401: "wrong email or password",
        403: "address not allowed by the tenant's policy",
        429: "locked; see Retry-After",
        503: "mail unavailable",
    },
    public=True,
)
def login(body: Credentials) -> Response:
    verified = service.authenticate(engine(), body.email, body.password, client_ip())
    if verified.needs_code:
        service.send_login_code(engine(), mailer(), verified.user)
        return json_response({"two_step": True, "message": "a code was sent by email"}, 202)
    return _session(verified)


@bp.post("/auth/login/verify")
@operation(
    "Second login step: the emailed code",
    body=LoginCode,
    responses={
        200: SessionToken,
        401: "wrong or expired code",
        403: "address not allowed by the tenant's policy",
        429: "locked; see Retry-After",
    },
    public=True,
)
def login_verify(body: LoginCode) -> Response:
    return _session(service.verify_code(engine(), body.email, body.code, client_ip()))


def _session(verified: service.Verified) -> Response:
    session = service.open_session(engine(), verified, client_ip())
    return json_response(
        {
            "token": session.token,
            "expires_at": session.expires_at.isoformat(),
            "tenant": verified.user["tenant"],
            "role": verified.user["role"],
            "password_expired": session.password_expired,
        }
    )


@bp.post("/auth/logout")
@operation("End this session", responses={204: "logged out"})
def logout() -> Response:
    accounts.revoke_token(engine(), caller().token_id)
    return Response(status=204)


@bp.get("/auth/me")
@operation("Who am I: tenant, role, permissions", responses={200: Me})
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
            "permissions": sorted(_permissions(who)),
        }
    )


def _permissions(who: Any) -> frozenset[str]:
    """What the caller may do: the role's permissions, narrowed by a grant's scopes; staff
    signed in as themselves hold none in any tenant."""
    if who.role == security.PLATFORM_STAFF and who.grant_id is None:
        return frozenset()
    held = security.PERMISSIONS.get(who.role, frozenset())
    if who.grant_scopes is not None:
        held &= security.grant_permissions(who.grant_scopes)
    return held & (who.scopes or security.ALL_PERMISSIONS)


@bp.post("/auth/password")
@operation(
    "Change my password (ends all my sessions)",
    body=PasswordChange,
    responses={204: "changed", 403: "wrong current password, or an API key"},
)
def change_password(body: PasswordChange) -> Response:
    who = caller()
    if who.user_id is None:
        raise ApiError(403, "forbidden", "API keys have no password")
    service.change_password(
        engine(), who.user_id, body.current_password, body.new_password, client_ip()
    )
    return Response(status=204)


@bp.post("/auth/password-reset")
@operation(
    "Email a password reset token (same answer whether or not the account exists)",
    body=ResetRequest,
    responses={202: Accepted, 503: "mail unavailable"},
    public=True,
)
def password_reset(body: ResetRequest) -> Response:
    user = accounts.user_by_email(engine(), body.email)
    if user is not None and user["active"]:
        token = accounts.new_code(engine(), user["id"], "password_reset")
        service.send(
            mailer(),
            Mail(
                user["email"],
                "仓运通 重置密码 / password reset",
                f"重置密码请使用以下凭证（1 小时内有效）/ Reset token (1 hour):\n\n{token}\n\n"
                'POST /api/v1/auth/password-reset/confirm {"token": ..., "new_password": ...}',
            ),
        )
    return json_response({"message": "if the account exists, a reset email was sent"}, 202)


@bp.post("/auth/password-reset/confirm")
@operation(
    "Set a new password with the emailed token",
    body=ResetConfirm,
    responses={204: "changed", 400: "wrong, used or expired token"},
    public=True,
)
def password_reset_confirm(body: ResetConfirm) -> Response:
    user_id = accounts.use_code(engine(), "password_reset", body.token)
    if user_id is None:
        raise ApiError(400, "invalid_token", "the reset token is wrong, used or expired")
    user = accounts.user_by_id(engine(), user_id)
    assert user is not None
    service.check_password(
        accounts.policy_for(engine(), user["tenant_id"]), body.new_password, user["email"]
    )
    accounts.set_password(engine(), user_id, body.new_password, actor=user["email"], ip=client_ip())
    return Response(status=204)


# --- 安全策略 -----------------------------------------------------------------------------


@bp.get("/security-policy")
@requires("security_policy:read")
@operation("This tenant's security policy (安全策略)", responses={200: Policy})
def get_policy() -> Response:
    return json_response(tenant_accounts().policy().to_json())


@bp.put("/security-policy")
@requires("security_policy:write")
@operation(
    "Change the security policy (owner); fields left out keep their value",
    body=PolicyChange,
    responses={200: Policy},
)
def put_policy(body: PolicyChange) -> Response:
    store = tenant_accounts()
    policy = SecurityPolicy.from_json(body.model_dump(exclude_unset=True), base=store.policy())
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
@operation(
    "Audit log: every change and every login, newest first",
    query=AuditFilter,
    responses={200: Page[AuditEntry]},
)
def get_audit(query: AuditFilter) -> Response:
    return _audit_page(query)


def _audit_page(query: AuditFilter) -> Response:
    """The caller's tenant's log; for staff signed in as themselves, the platform's own."""
    total, items, last = tenant_accounts().audit_entries(
        before_id=query.cursor, limit=query.limit, action=query.action or None
    )
    return json_response(page(total, items, str(last) if last else None))


# --- users and roles ------------------------------------------------------------------


@bp.get("/users")
@requires("users:read")
@operation("Users of this tenant", responses={200: Page[User]})
def list_users() -> Response:
    items = tenant_accounts().users()
    return json_response(page(len(items), items, None))


@bp.get("/users/<int:user_id>")
@requires("users:read")
@operation("One user", responses={200: User, 404: "not in this tenant"})
def get_user(user_id: int) -> Response:
    return json_response(tenant_accounts().user(user_id))


@bp.post("/users")
@requires("users:write")
@operation("Add a user", body=NewUser, responses={201: User, 409: "email taken"})
def create_user(body: NewUser) -> Response:
    store = tenant_accounts()
    service.check_password(store.policy(), body.password, body.email)
    user = store.create_user(
        email=body.email,
        password=body.password,
        role=body.role,
        name=body.name,
        phone=body.phone,
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(user, 201)


@bp.patch("/users/<int:user_id>")
@requires("users:write")
@operation(
    "Change a user's role, status, name or phone",
    body=UserChange,
    responses={200: User, 404: "not in this tenant", 409: "the owner, or yourself"},
)
def update_user(user_id: int, body: UserChange) -> Response:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return json_response(tenant_accounts().update_user(user_id, changes, caller(), client_ip()))


# --- API keys (二次开发) -----------------------------------------------------------------


@bp.get("/api-keys")
@requires("api_keys:manage")
@feature("secondary_development")
@operation("API keys (二次开发)", responses={200: Page[ApiKey]})
def list_api_keys() -> Response:
    items = tenant_accounts().api_keys()
    return json_response(page(len(items), items, None))


@bp.post("/api-keys")
@requires("api_keys:manage")
@feature("secondary_development")
@operation(
    "Create a scoped, expiring API key; the key is shown only here",
    body=NewApiKey,
    responses={201: NewKey},
)
def create_api_key(body: NewApiKey) -> Response:
    who = caller()
    token, key = tenant_accounts().create_api_key(
        name=body.name,
        role=who.role,
        scopes=list(body.scopes),
        expires_at=utcnow() + timedelta(days=body.expires_in_days),
        caller=who,
        ip=client_ip(),
    )
    return json_response(key | {"key": token}, 201)


@bp.delete("/api-keys/<int:key_id>")
@requires("api_keys:manage")
@feature("secondary_development")
@operation("Revoke an API key", responses={204: "revoked", 404: "not in this tenant"})
def revoke_api_key(key_id: int) -> Response:
    tenant_accounts().revoke_api_key(key_id, caller(), client_ip())
    return Response(status=204)


# --- platform staff (代运营) ------------------------------------------------------------


@bp.get("/staff-grants")
@requires("staff_grants:manage")
@operation("Grants to platform staff and their requests (代运营)", responses={200: Page[Grant]})
def list_grants() -> Response:
    items = tenant_accounts().grants()
    return json_response(page(len(items), items, None))


@bp.post("/staff-grants")
@requires("staff_grants:manage")
@feature("value_added_services", add_on="managed_operations")
@operation(
    "Let a platform staff member act in this tenant for some hours within scopes (owner or"
    " admin); active at once",
    body=NewGrant,
    responses={201: Grant, 403: "add_on_not_purchased", 404: "no such staff member"},
)
def create_grant(body: NewGrant) -> Response:
    grant = tenant_accounts().create_grant(
        staff_email=body.staff_email,
        hours=body.hours,
        reason=body.reason,
        scopes=list(dict.fromkeys(body.scopes)),
        caller=caller(),
        ip=client_ip(),
    )
    return json_response(grant, 201)


@bp.post("/staff-grants/<int:grant_id>/approve")
@requires("staff_grants:manage")
@feature("value_added_services", add_on="managed_operations")
@operation(
    "Approve a staff member's request (owner or admin): active from now for its hours",
    responses={
        200: Grant,
        403: "add_on_not_purchased",
        404: "not in this tenant",
        409: "grant_not_requested: already answered",
    },
)
def approve_grant(grant_id: int) -> Response:
    return json_response(tenant_accounts().approve_grant(grant_id, caller(), client_ip()))


@bp.post("/staff-grants/<int:grant_id>/decline")
@requires("staff_grants:manage")
@operation(
    "Decline a staff member's request (owner or admin); it can never be used",
    responses={
        200: Grant,
        404: "not in this tenant",
        409: "grant_not_requested: already answered",
    },
)
def decline_grant(grant_id: int) -> Response:
    return json_response(tenant_accounts().decline_grant(grant_id, caller(), client_ip()))


@bp.delete("/staff-grants/<int:grant_id>")
@requires("staff_grants:manage")
@operation(
    "Revoke an active grant: its staff sessions end at once",
    responses={204: "revoked", 404: "no active grant in this tenant"},
)
def revoke_grant(grant_id: int) -> Response:
    tenant_accounts().revoke_grant(grant_id, caller(), client_ip())
    return Response(status=204)


@bp.post("/platform/grant-requests")
@platform_staff_only
@operation(
    "Platform staff: ask a tenant for a grant (代运营); it waits for the tenant's owner or an"
    " admin to approve it",
    body=GrantRequest,
    responses={201: Grant, 403: "not platform staff", 404: "no such tenant"},
)
def request_grant(body: GrantRequest) -> Response:
    grant = accounts.request_grant(
        engine(),
        caller(),
        tenant_code=body.tenant,
        scopes=list(dict.fromkeys(body.scopes)),
        hours=body.hours,
        reason=body.reason,
        ip=client_ip(),
    )
    return json_response(grant, 201)


@bp.delete("/platform/grant-requests/<int:grant_id>")
@platform_staff_only
@operation(
    "Platform staff: take back a request of mine still waiting for an answer",
    responses={204: "withdrawn", 403: "not platform staff", 404: "no such request of mine"},
)
def withdraw_grant_request(grant_id: int) -> Response:
    accounts.withdraw_request(engine(), caller(), grant_id, client_ip())
    return Response(status=204)


@bp.get("/platform/grants")
@platform_staff_only
@operation(
    "Platform staff: my grants and requests in every tenant",
    responses={200: Page[Grant], 403: "not platform staff"},
)
def my_grants() -> Response:
    user_id = caller().user_id
    items = accounts.grants_of_staff(engine(), user_id) if user_id is not None else []
    return json_response(page(len(items), items, None))


@bp.get("/platform/audit")
@platform_staff_only
@operation(
    "Platform staff: the platform's own audit log, newest first (payments settled, repeated"
    " or refused, gateway notifications refused, staff grants asked for and answered)",
    query=AuditFilter,
    responses={200: Page[AuditEntry], 403: "not platform staff"},
)
def platform_audit(query: AuditFilter) -> Response:
    return _audit_page(query)


@bp.post("/staff/act")
@operation(
    "Platform staff: a session inside a tenant that granted access; every step is audited",
    body=StaffAct,
    responses={200: StaffSession, 403: "not platform staff, or no active grant"},
)
def staff_act(body: StaffAct) -> Response:
    session = service.act_for_tenant(engine(), caller(), body.grant_id, client_ip())
    g.pop("caller", None)
    return json_response({"token": session.token, "expires_at": session.expires_at.isoformat()})
