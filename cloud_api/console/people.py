"""The console's people pages: users of the tenant and its security policy."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, url_for

from cangyun.apispec import validate
from cangyun.errors import DomainError, NotFound
from cangyun.httpapi import ApiError
from cloud_api.accounts import api as accounts_api
from cloud_api.accounts import security, service
from cloud_api.accounts.security import PolicyError, SecurityPolicy
from cloud_api.accounts.store import TenantAccounts
from cloud_api.console import bp
from cloud_api.console.session import require
from cloud_api.platform.auth import client_ip, engine


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
