"""Who is calling, and may they: one place for every /api/v1 route.

``identify_caller`` runs before every API request: bearer token → ``Caller`` (tenant, role,
API-key scopes), then the tenant's IP allow-list, then "password expired: change it first".
A route then states what it needs in one line: ``@requires("customers:write")``; the
licensing work adds ``@feature("secondary_development")`` the same way.

A platform staff session inside a tenant (代运营, ``Caller.grant_id``) may in addition only
call routes that state a permission, only within its grant's scopes
(``security.grant_permissions``), and only while the tenant holds the managed-operations
add-on; staff signed in as themselves reach no tenant route at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from sqlalchemy.engine import Engine

from cangyun.httpapi import ApiError, bearer_token
from cloud_api.accounts import security, service
from cloud_api.platform.mail import SmtpMailer
from cloud_api.platform.tenancy import Caller

F = TypeVar("F", bound=Callable[..., Any])

# Endpoints anyone may call (they authenticate by other means or not at all).
PUBLIC = {
    "api.accounts.register",
    "api.accounts.login",
    "api.accounts.login_verify",
    "api.accounts.password_reset",
    "api.accounts.password_reset_confirm",
    "api.billing.get_catalog",
    "api.openapi",
}
# What a caller whose password has expired may still do.
PASSWORD_EXPIRED_ALLOWED = {"api.accounts.change_password", "api.accounts.logout",
                            "api.accounts.me"}  # fmt: skip


def engine() -> Engine:
    return current_app.extensions["cangyun.engine"]


def mailer() -> SmtpMailer:
    return SmtpMailer(current_app.extensions["cangyun.settings"].smtp)


def client_ip() -> str:
    # Behind ``cloud.trusted_proxies`` reverse proxies, the app's ProxyFix (cloud_api.app) has
    # already set remote_addr from their X-Forwarded-For; with 0 that header is ignored.
    return request.remote_addr or ""


def caller() -> Caller:
    return g.caller


def identify_caller() -> None:
    """Before every API request: the bearer token's caller, from an allowed address, with a
    current password (``accounts.service.session_caller``, which the console uses too)."""
    if request.endpoint in PUBLIC or request.endpoint is None:
        return
    # Bearer only: the console's session cookie is not accepted here, so a browser can never
    # be tricked into calling the JSON API with its cookie (no CSRF surface).
    found = service.session_caller(engine(), bearer_token() or "", client_ip())
    if found.password_expired and request.endpoint not in PASSWORD_EXPIRED_ALLOWED:
        raise ApiError(
            403,
            "password_expired",
            "your password has expired; change it with POST /api/v1/auth/password",
        )
    g.caller = found
    if found.grant_id is not None:
        _grant_session_may_go_on()


# What a staff session (代运营) may call beyond routes that state a permission.
GRANT_SESSION_ALLOWED = {"api.accounts.me", "api.accounts.logout"}
MANAGED_OPERATIONS = "managed_operations"


def _grant_session_may_go_on() -> None:
    """Every request of a staff session: the tenant still holds the managed-operations
    add-on, and the route is one that states a permission (checked against the grant's
    scopes by ``requires``); anything else is outside every grant."""
    if request.endpoint != "api.accounts.logout":  # ending a session needs nothing
        if MANAGED_OPERATIONS not in entitlement().add_ons:
            raise ApiError(
                403,
                "add_on_required",
                f"the tenant no longer holds the {MANAGED_OPERATIONS} value-added service;"
                " staff sessions need it",
                {"add_on": MANAGED_OPERATIONS},
            )
    view = current_app.view_functions.get(request.endpoint or "")
    if request.endpoint not in GRANT_SESSION_ALLOWED and getattr(view, "permission", None) is None:
        raise _outside_grant(request.endpoint or "")


def _outside_grant(permission: str) -> ApiError:
    who = caller()
    return ApiError(
        403,
        "outside_grant_scope",
        f"grant {who.grant_id} ({', '.join(sorted(who.grant_scopes or ())) or 'no scopes'})"
        f" does not allow {permission.replace(':', ' ')}",
        {"permission": permission, "scopes": sorted(who.grant_scopes or ())},
    )


def require_direction_in_grant(direction: str) -> None:
    """For a staff session, the grant must carry the scope of goods going ``direction``
    (inbound for an ASN line, outbound for a shipment line); any other caller passes."""
    who = caller()
    scope = security.DIRECTION_SCOPES[direction]
    if who.grant_id is not None and scope not in (who.grant_scopes or ()):
        raise _outside_grant(scope)


def requires(permission: str) -> Callable[[F], F]:
    """The caller's role (and, for an API key, its scopes) must include ``permission``."""
    if permission not in security.ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            who = caller()
            if who.role == security.PLATFORM_STAFF and who.grant_id is None:
                # Staff see and change a tenant's data only inside a grant (POST /staff/act).
                raise ApiError(
                    403,
                    "no_grant",
                    "platform staff act in a tenant only through a grant: POST /api/v1/staff/act",
                    {"permission": permission},
                )
            if not security.allowed(who.role, permission, who.scopes):
                raise ApiError(
                    403,
                    "forbidden",
                    f"{who.role} {'key ' if who.kind == 'api_key' else ''}"
                    f"may not {permission.replace(':', ' ')}",
                    {"permission": permission},
                )
            if who.grant_scopes is not None and permission not in security.grant_permissions(
                who.grant_scopes
            ):
                raise _outside_grant(permission)
            return view(*args, **kwargs)

        wrapper.permission = permission  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def platform_staff_only(view: F) -> F:
    """Platform staff signed in as themselves (their own tenant, no grant session)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        who = caller()
        if who.role != security.PLATFORM_STAFF or who.tenant != "platform" or who.grant_id:
            raise ApiError(
                403,
                "forbidden",
                "only platform staff may do this",
                {"permission": "platform_staff"},
            )
        return view(*args, **kwargs)

    wrapper.permission = "platform_staff"  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def entitlement() -> Any:
    """The caller's tenant's entitlement, computed once per request."""
    found = g.get("entitlement")
    if found is None:
        from cloud_api.billing.store import TenantBilling

        found = g.entitlement = TenantBilling(engine(), caller().tenant_id).entitlement()
    return found


def feature(code: str, *, add_on: str | None = None) -> Callable[[F], F]:
    """The tenant's edition must include ``code`` (and, when given, the add-on be bought)."""
    from cloud_api.billing.catalog import FEATURE_CODES, VALUE_ADDED_CODES

    if code not in FEATURE_CODES or (add_on is not None and add_on not in VALUE_ADDED_CODES):
        raise ValueError(f"unknown feature {code} / add-on {add_on}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            held = entitlement()
            if code not in held.features:
                raise ApiError(
                    403,
                    "feature_not_in_edition",
                    f"{code} is not part of the {held.edition or 'current (none bought)'} edition",
                    {"feature": code, "edition": held.edition},
                )
            if add_on is not None and add_on not in held.add_ons:
                raise ApiError(
                    403,
                    "add_on_not_purchased",
                    f"the {add_on} value-added service is not purchased",
                    {"add_on": add_on},
                )
            return view(*args, **kwargs)

        wrapper.feature = code  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
