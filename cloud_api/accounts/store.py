"""Accounts: registration, login state, sessions and API keys, security policy, audit log,
platform staff grants. All their SQL.

``TenantAccounts`` is built with one tenant id and every query it runs is filtered by it:
routes never add tenant conditions themselves, so a route cannot forget one.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound
from cangyun.timeutil import utcnow
from cloud_api.accounts import credentials, security
from cloud_api.accounts.security import SecurityPolicy
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import (
    api_tokens,
    audit_log,
    one_time_codes,
    security_policies,
    staff_grants,
    tenants,
    users,
)
from cloud_api.platform.tenancy import Caller, TenantStore, audit

CODE_TTL = {"password_reset": timedelta(hours=1), "login": timedelta(minutes=10)}
MAX_CODE_ATTEMPTS = 5
LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write on every request


def policy_for(engine: Engine | sa.Connection, tenant_id: int) -> SecurityPolicy:
    query = sa.select(security_policies.c.policy).where(security_policies.c.tenant_id == tenant_id)
    if isinstance(engine, sa.Connection):
        stored = engine.execute(query).scalar()
    else:
        with engine.connect() as conn:
            stored = conn.execute(query).scalar()
    return SecurityPolicy.from_json(stored) if stored else SecurityPolicy()


# --- registration and login (before a tenant is known) -------------------------------


def register(
    engine: Engine, *, tenant_name: str, email: str, password: str, phone: str, ip: str
) -> tuple[int, int, str]:
    """Create a tenant and its owner; returns (tenant id, user id, tenant code)."""
    email = email.strip().lower()
    code = _tenant_code(tenant_name, email)
    now = utcnow()
    try:
        with atomic(engine) as conn:
            tenant_id = conn.execute(
                tenants.insert().values(code=code, name=tenant_name, created_at=now)
            ).inserted_primary_key[0]
            user_id = insert_user(
                conn, tenant_id=tenant_id, email=email, password=password, role="owner", phone=phone
            )
            audit(
                conn,
                tenant_id,
                email,
                "tenant.registered",
                target=code,
                ip=ip,
                actor_user_id=user_id,
            )
    except sa.exc.IntegrityError as exc:
        raise AlreadyExists(
            "an account with this email already exists", code="email_taken", field="email"
        ) from exc
    return tenant_id, user_id, code


def insert_user(
    conn: sa.Connection,
    *,
    tenant_id: int,
    email: str,
    password: str,
    role: str,
    name: str = "",
    phone: str = "",
) -> int:
    """The one way a user comes to exist (registration, an admin, provisioning, platform
    staff). The password counts as set now, so the tenant's rotation applies to everyone."""
    now = utcnow()
    return conn.execute(
        users.insert().values(
            tenant_id=tenant_id,
            email=email.strip().lower(),
            password_hash=credentials.hash_password(password),
            role=role,
            name=name,
            phone=phone,
            created_at=now,
            password_changed_at=now,
        )
    ).inserted_primary_key[0]


def create_owner(engine: Engine, tenant_id: int, email: str, password: str) -> int:
    """The first owner of a tenant made by provisioning (the operator's CLI)."""
    try:
        with atomic(engine) as conn:
            user_id = insert_user(
                conn, tenant_id=tenant_id, email=email, password=password, role="owner"
            )
            audit(conn, tenant_id, "provisioning", "user.created", target=f"user:{user_id}",
                  details={"email": email.strip().lower(), "role": "owner"})  # fmt: skip
    except sa.exc.IntegrityError as exc:
        raise AlreadyExists(f"user {email!r} already exists") from exc
    return user_id


def issue_token(
    conn: sa.Connection,
    *,
    tenant_id: int,
    role: str,
    kind: str,
    name: str,
    user_id: int | None = None,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    password_expired: bool = False,
    grant_id: int | None = None,
) -> tuple[str, int]:
    """The one way a bearer token is made: a console/API session or an API key. Only its
    hash is stored; the token itself is returned once. Returns (token, row id)."""
    token = credentials.new_token()
    token_id = conn.execute(
        api_tokens.insert().values(
            tenant_id=tenant_id,
            user_id=user_id,
            token_hash=credentials.token_hash(token),
            name=name,
            role=role,
            kind=kind,
            scopes=sorted(scopes) if scopes is not None else None,
            prefix=token[:10],
            created_at=utcnow(),
            expires_at=expires_at,
            password_expired=password_expired,
            grant_id=grant_id,
        )
    ).inserted_primary_key[0]
    return token, token_id


def create_api_key(
    engine: Engine,
    tenant_id: int,
    role: str,
    *,
    name: str,
    actor: str,
    expires_at: datetime | None = None,
) -> str:
    """A full-role API key made outside a session (provisioning, `cangyun cloud token create`)."""
    with atomic(engine) as conn:
        token, key_id = issue_token(
            conn, tenant_id=tenant_id, role=role, kind="api_key", name=name, expires_at=expires_at
        )
        audit(conn, tenant_id, actor, "api_key.created", target=f"api_key:{key_id}",
              details={"name": name, "role": role})  # fmt: skip
    return token


def _tenant_code(name: str, email: str) -> str:
    """A readable, unique topic-safe code: from the name, else (Chinese names) the email's
    domain, plus a random suffix."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30]
    if not slug:
        slug = re.sub(r"[^a-z0-9]+", "-", email.split("@")[-1].split(".")[0].lower()).strip("-")
    return f"{slug[:30] or 't'}-{secrets.token_hex(3)}"


def user_by_email(engine: Engine, email: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(users, tenants.c.code.label("tenant"))
                .join(tenants, tenants.c.id == users.c.tenant_id)
                .where(users.c.email == email.strip().lower())
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def user_by_id(engine: Engine, user_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(users, tenants.c.code.label("tenant"))
                .join(tenants, tenants.c.id == users.c.tenant_id)
                .where(users.c.id == user_id)
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def login_failed(
    engine: Engine, user: dict[str, Any], policy: SecurityPolicy, ip: str
) -> datetime | None:
    """Count a failed login; returns when the account unlocks if this failure locked it."""
    now = utcnow()
    with atomic(engine) as conn:
        failures = conn.execute(
            users.update()
            .where(users.c.id == user["id"])
            .values(failed_logins=users.c.failed_logins + 1)
            .returning(users.c.failed_logins)
        ).scalar_one()
        locked_until = policy.lock_after_failure(failures, now)
        if locked_until is not None:
            conn.execute(
                users.update()
                .where(users.c.id == user["id"])
                .values(locked_until=locked_until, failed_logins=0)
            )
        audit(
            conn,
            user["tenant_id"],
            user["email"],
            "login.failed",
            ip=ip,
            actor_user_id=user["id"],
            details={"locked_until": locked_until.isoformat() if locked_until else None},
        )
    return locked_until


def login_succeeded(
    engine: Engine,
    user: dict[str, Any],
    policy: SecurityPolicy,
    ip: str,
    *,
    name: str = "login",
    grant_id: int | None = None,
    tenant_id: int | None = None,
) -> tuple[str, datetime, bool]:
    """Open a session; returns (token, expiry, password expired)."""
    now = utcnow()
    expired = policy.password_expired(user.get("password_changed_at"), now)
    expires_at = policy.session_expiry(now)
    with atomic(engine) as conn:
        conn.execute(
            users.update()
            .where(users.c.id == user["id"])
            .values(failed_logins=0, locked_until=None, last_login_at=now)
        )
        token, _ = issue_token(
            conn,
            tenant_id=tenant_id or user["tenant_id"],
            role=user["role"],
            kind="session",
            name=name,
            user_id=user["id"],
            expires_at=expires_at,
            password_expired=expired,
            grant_id=grant_id,
        )
        audit(
            conn,
            tenant_id or user["tenant_id"],
            user["email"],
            "login.succeeded",
            ip=ip,
            actor_user_id=user["id"],
            via_grant_id=grant_id,
        )
    return token, expires_at, expired


def clear_expired_lock(engine: Engine, user_id: int) -> None:
    with atomic(engine) as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(locked_until=None))


def caller_for_token(engine: Engine, token: str) -> Caller | None:
    now = utcnow()
    query = (
        sa.select(
            api_tokens,
            tenants.c.code.label("tenant"),
            users.c.email,
            users.c.active,
            staff_grants.c.expires_at.label("grant_expires"),
            staff_grants.c.status.label("grant_status"),
            staff_grants.c.scopes.label("grant_scopes"),
        )
        .join(tenants, tenants.c.id == api_tokens.c.tenant_id)
        .outerjoin(users, users.c.id == api_tokens.c.user_id)
        .outerjoin(staff_grants, staff_grants.c.id == api_tokens.c.grant_id)
        .where(api_tokens.c.token_hash == credentials.token_hash(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    if row["user_id"] is not None and not row["active"]:
        return None
    # A staff session lives only as long as its grant is active: revoking ends it at once.
    if row["grant_id"] is not None and (
        row["grant_status"] != "active" or row["grant_expires"] <= now
    ):
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] > LAST_USED_RESOLUTION:
        with atomic(engine) as conn:
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == row["id"]).values(last_used_at=now)
            )
    return Caller(
        tenant_id=row["tenant_id"],
        tenant=row["tenant"],
        role=row["role"],
        token_id=row["id"],
        user_id=row["user_id"],
        actor=row["email"] or f"api-key:{row['name'] or row['prefix']}",
        kind=row["kind"],
        scopes=frozenset(row["scopes"]) if row["scopes"] is not None else None,
        password_expired=bool(row["password_expired"]),
        grant_id=row["grant_id"],
        grant_scopes=frozenset(row["grant_scopes"]) if row["grant_id"] is not None else None,
    )


def revoke_token(engine: Engine, token_id: int) -> None:
    with atomic(engine) as conn:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def new_code(engine: Engine, user_id: int, purpose: str) -> str:
    """A one-time code (password reset link token, or a 6-digit login code)."""
    code = f"{secrets.randbelow(10**6):06d}" if purpose == "login" else secrets.token_urlsafe(24)
    now = utcnow()
    salted = f"{purpose}:{user_id}:{code}" if purpose == "login" else f"{purpose}:{code}"
    with atomic(engine) as conn:
        conn.execute(
            one_time_codes.insert().values(
                user_id=user_id,
                purpose=purpose,
                code_hash=credentials.token_hash(salted),
                created_at=now,
                expires_at=now + CODE_TTL[purpose],
            )
        )
    return code


def use_code(engine: Engine, purpose: str, code: str, *, user_id: int | None = None) -> int | None:
    """The user a valid, unused, unexpired code belongs to, marking it used; else None."""
    salted = f"{purpose}:{user_id}:{code}" if purpose == "login" else f"{purpose}:{code}"
    now = utcnow()
    with atomic(engine) as conn:
        if purpose == "login" and user_id is not None:
            # Count the attempt on the user's newest open login code: 5 wrong guesses burn it.
            conn.execute(
                one_time_codes.update()
                .where(
                    one_time_codes.c.user_id == user_id,
                    one_time_codes.c.purpose == purpose,
                    one_time_codes.c.used_at.is_(None),
                )
                .values(attempts=one_time_codes.c.attempts + 1)
            )
        row = (
            conn.execute(
                sa.select(one_time_codes).where(
                    one_time_codes.c.code_hash == credentials.token_hash(salted),
                    one_time_codes.c.purpose == purpose,
                )
            )
            .mappings()
            .first()
        )
        if (
            row is None
            or row["used_at"] is not None
            or row["expires_at"] <= now
            or row["attempts"] > MAX_CODE_ATTEMPTS
        ):
            return None
        conn.execute(
            one_time_codes.update().where(one_time_codes.c.id == row["id"]).values(used_at=now)
        )
        return row["user_id"]


def set_password(engine: Engine, user_id: int, password: str, *, actor: str, ip: str) -> None:
    now = utcnow()
    with atomic(engine) as conn:
        tenant_id = conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                password_hash=credentials.hash_password(password),
                password_changed_at=now,
                failed_logins=0,
                locked_until=None,
            )
            .returning(users.c.tenant_id)
        ).scalar_one()
        # Every session of the user ends; API keys are not sessions and keep working.
        conn.execute(
            api_tokens.update()
            .where(
                api_tokens.c.user_id == user_id,
                api_tokens.c.kind == "session",
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        audit(
            conn,
            tenant_id,
            actor,
            "password.changed",
            target=f"user:{user_id}",
            ip=ip,
            actor_user_id=user_id,
        )


# --- inside one tenant ---------------------------------------------------------------


class TenantAccounts(TenantStore):
    # policy

    def policy(self) -> SecurityPolicy:
        return policy_for(self.engine, self.tenant_id)

    def set_policy(self, policy: SecurityPolicy, caller: Caller, ip: str) -> None:
        insert_values = {
            "tenant_id": self.tenant_id,
            "policy": policy.to_json(),
            "updated_at": utcnow(),
        }
        with atomic(self.engine) as conn:
            updated = conn.execute(
                security_policies.update()
                .where(security_policies.c.tenant_id == self.tenant_id)
                .values(policy=insert_values["policy"], updated_at=insert_values["updated_at"])
            )
            if updated.rowcount == 0:
                conn.execute(security_policies.insert().values(**insert_values))
            self._audit(
                conn, caller, "security_policy.updated", "security_policy", policy.to_json(), ip
            )

    # users

    def users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(users).where(users.c.tenant_id == self.tenant_id).order_by(users.c.id)
                )
                .mappings()
                .all()
            )
        return [_user_json(r) for r in rows]

    def user(self, user_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(users).where(
                        users.c.tenant_id == self.tenant_id, users.c.id == user_id
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no user {user_id}")
        return _user_json(row)

    def create_user(
        self,
        *,
        email: str,
        password: str,
        role: str,
        name: str,
        phone: str,
        caller: Caller,
        ip: str,
    ) -> dict[str, Any]:
        try:
            with atomic(self.engine) as conn:
                user_id = insert_user(
                    conn,
                    tenant_id=self.tenant_id,
                    email=email,
                    password=password,
                    role=role,
                    name=name,
                    phone=phone,
                )
                self._audit(
                    conn,
                    caller,
                    "user.created",
                    f"user:{user_id}",
                    {"email": email, "role": role},
                    ip,
                )
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                "a user with this email already exists", code="email_taken", field="email"
            ) from exc
        return self.user(user_id)

    def update_user(
        self, user_id: int, changes: dict[str, Any], caller: Caller, ip: str
    ) -> dict[str, Any]:
        current = self.user(user_id)
        if current["role"] == "owner" and ("role" in changes or changes.get("active") is False):
            raise Conflict("the owner cannot be demoted or disabled", code="owner_protected")
        if user_id == caller.user_id and ("role" in changes or "active" in changes):
            raise Conflict(
                "change your own role or status through another admin", code="self_change"
            )
        with atomic(self.engine) as conn:
            conn.execute(
                users.update()
                .where(users.c.tenant_id == self.tenant_id, users.c.id == user_id)
                .values(**changes)
            )
            if changes.get("active") is False or "role" in changes:
                # A disabled user or a changed role must not keep old sessions.
                conn.execute(
                    api_tokens.update()
                    .where(
                        api_tokens.c.user_id == user_id,
                        api_tokens.c.kind == "session",
                        api_tokens.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=utcnow())
                )
            self._audit(
                conn,
                caller,
                "user.updated",
                f"user:{user_id}",
                {"before": {k: current.get(k) for k in changes}, "after": changes},
                ip,
            )
        return self.user(user_id)

    # audit

    def audit_entries(
        self, *, before_id: int | None, limit: int, action: str | None = None
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        conditions = [audit_log.c.tenant_id == self.tenant_id]
        if action:
            conditions.append(audit_log.c.action.like(f"{action}%"))
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(audit_log).where(*conditions)
            ).scalar_one()
            if before_id is not None:
                conditions.append(audit_log.c.id < before_id)
            rows = (
                conn.execute(
                    sa.select(audit_log)
                    .where(*conditions)
                    .order_by(audit_log.c.id.desc())
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            {
                "id": r["id"],
                "actor": r["actor"],
                "action": r["action"],
                "target": r["target"],
                "details": r["details"],
                "ip": r["ip"],
                "via_grant": r["via_grant_id"],
                "created_at": r["created_at"].isoformat(timespec="seconds"),
            }
            for r in rows
        ]
        return total, items, rows[-1]["id"] if more and rows else None

    # API keys (二次开发)

    def api_keys(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(api_tokens)
                    .where(api_tokens.c.tenant_id == self.tenant_id, api_tokens.c.kind == "api_key")
                    .order_by(api_tokens.c.id)
                )
                .mappings()
                .all()
            )
        return [_key_json(r) for r in rows]

    def create_api_key(
        self,
        *,
        name: str,
        role: str,
        scopes: list[str],
        expires_at: datetime | None,
        caller: Caller,
        ip: str,
    ) -> tuple[str, dict[str, Any]]:
        """A key with the creator's role, narrowed to ``scopes``: never more than they may do."""
        mine = security.PERMISSIONS[caller.role] & (caller.scopes or security.ALL_PERMISSIONS)
        beyond = sorted(set(scopes) - mine)
        if beyond:
            raise Invalid(
                "a key cannot do more than its creator",
                code="invalid_scopes",
                field="scopes",
                details={"not_allowed": beyond, "allowed": sorted(mine)},
            )
        with atomic(self.engine) as conn:
            token, key_id = issue_token(
                conn,
                tenant_id=self.tenant_id,
                role=role,
                kind="api_key",
                name=name,
                expires_at=expires_at,
                scopes=scopes,
            )
            self._audit(
                conn,
                caller,
                "api_key.created",
                f"api_key:{key_id}",
                {"name": name, "scopes": sorted(scopes)},
                ip,
            )
            row = (
                conn.execute(sa.select(api_tokens).where(api_tokens.c.id == key_id))
                .mappings()
                .one()
            )
        return token, _key_json(row)

    def revoke_api_key(self, key_id: int, caller: Caller, ip: str) -> None:
        with atomic(self.engine) as conn:
            result = conn.execute(
                api_tokens.update()
                .where(
                    api_tokens.c.tenant_id == self.tenant_id,
                    api_tokens.c.id == key_id,
                    api_tokens.c.kind == "api_key",
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            if result.rowcount == 0:
                raise NotFound(f"no active API key {key_id}")
            self._audit(conn, caller, "api_key.revoked", f"api_key:{key_id}", {}, ip)

    # platform staff grants (代运营)

    def grants(self) -> list[dict[str, Any]]:
        return _grants(self.engine, staff_grants.c.tenant_id == self.tenant_id)

    def grant(self, grant_id: int) -> dict[str, Any]:
        found = _grants(
            self.engine, staff_grants.c.tenant_id == self.tenant_id, staff_grants.c.id == grant_id
        )
        if not found:
            raise NotFound(f"no grant {grant_id}")
        return found[0]

    def create_grant(
        self,
        *,
        staff_email: str,
        hours: int,
        reason: str,
        scopes: list[str],
        caller: Caller,
        ip: str,
    ) -> dict[str, Any]:
        """An offer by the tenant's owner or an admin: active at once."""
        staff = user_by_email(self.engine, staff_email)
        if staff is None or staff["role"] != security.PLATFORM_STAFF:
            raise NotFound(f"no platform staff member {staff_email}")
        now = utcnow()
        with atomic(self.engine) as conn:
            grant_id = conn.execute(
                staff_grants.insert().values(
                    tenant_id=self.tenant_id,
                    staff_user_id=staff["id"],
                    granted_by=caller.user_id,
                    reason=reason,
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                    status="active",
                    scopes=sorted(scopes),
                    hours=hours,
                    approved_by=caller.user_id,
                    approved_at=now,
                )
            ).inserted_primary_key[0]
            details = {"staff": staff["email"], "hours": hours, "reason": reason,
                       "scopes": sorted(scopes)}  # fmt: skip
            self._audit_grant(conn, caller, "staff_grant.created", grant_id, details, ip)
        return self.grant(grant_id)

    def approve_grant(self, grant_id: int, caller: Caller, ip: str) -> dict[str, Any]:
        """A staff member's request becomes active now, for the hours it asked for."""
        current = self.grant(grant_id)
        now = utcnow()
        with atomic(self.engine) as conn:
            changed = conn.execute(
                staff_grants.update()
                .where(*self._requested(grant_id))
                .values(
                    status="active",
                    approved_by=caller.user_id,
                    approved_at=now,
                    expires_at=now + timedelta(hours=current["hours"]),
                )
            ).rowcount
            if changed == 0:
                raise _not_requested(grant_id)
            details = {"staff": current["staff"], "scopes": current["scopes"],
                       "hours": current["hours"]}  # fmt: skip
            self._audit_grant(conn, caller, "staff_grant.approved", grant_id, details, ip)
        return self.grant(grant_id)

    def decline_grant(self, grant_id: int, caller: Caller, ip: str) -> dict[str, Any]:
        current = self.grant(grant_id)
        with atomic(self.engine) as conn:
            changed = conn.execute(
                staff_grants.update()
                .where(*self._requested(grant_id))
                .values(status="declined", declined_at=utcnow())
            ).rowcount
            if changed == 0:
                raise _not_requested(grant_id)
            details = {"staff": current["staff"]}
            self._audit_grant(conn, caller, "staff_grant.declined", grant_id, details, ip)
        return self.grant(grant_id)

    def revoke_grant(self, grant_id: int, caller: Caller, ip: str) -> None:
        """Ends the grant and every session opened under it, at once."""
        now = utcnow()
        with atomic(self.engine) as conn:
            result = conn.execute(
                staff_grants.update()
                .where(
                    staff_grants.c.tenant_id == self.tenant_id,
                    staff_grants.c.id == grant_id,
                    staff_grants.c.status == "active",
                )
                .values(status="revoked", revoked_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(f"no active grant {grant_id}")
            conn.execute(
                api_tokens.update()
                .where(api_tokens.c.grant_id == grant_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            self._audit_grant(conn, caller, "staff_grant.revoked", grant_id, {}, ip)

    def _requested(self, grant_id: int) -> tuple[Any, ...]:
        return (
            staff_grants.c.tenant_id == self.tenant_id,
            staff_grants.c.id == grant_id,
            staff_grants.c.status == "requested",
            staff_grants.c.created_at > utcnow() - REQUEST_LAPSES_AFTER,
        )

    def _audit_grant(
        self,
        conn: sa.Connection,
        caller: Caller,
        action: str,
        grant_id: int,
        details: dict[str, Any],
        ip: str,
    ) -> None:
        """Both sides keep the record: this tenant's log and the platform's."""
        for tenant_id in {self.tenant_id, _platform_tenant_id(conn)} - {None}:
            audit(conn, tenant_id, caller.actor, action, target=f"grant:{grant_id}",
                  details=details | {"tenant_id": self.tenant_id}, ip=ip,
                  actor_user_id=caller.user_id, via_grant_id=caller.grant_id)  # fmt: skip


def request_grant(
    engine: Engine,
    staff: Caller,
    *,
    tenant_code: str,
    scopes: list[str],
    hours: int,
    reason: str,
    ip: str,
) -> dict[str, Any]:
    """Platform staff ask a tenant for a grant: it waits, unusable, for the tenant's owner
    or an admin to approve it (``TenantAccounts.approve_grant``)."""
    if staff.user_id is None:
        raise Forbidden("only a signed-in staff member may ask for a grant")
    now = utcnow()
    with atomic(engine) as conn:
        tenant_id = conn.execute(
            sa.select(tenants.c.id).where(
                tenants.c.code == tenant_code, tenants.c.code != "platform"
            )
        ).scalar()
        if tenant_id is None:
            raise NotFound(f"no tenant {tenant_code}", field="tenant")
        grant_id = conn.execute(
            staff_grants.insert().values(
                tenant_id=tenant_id,
                staff_user_id=staff.user_id,
                granted_by=staff.user_id,
                requested_by=staff.user_id,
                reason=reason,
                created_at=now,
                expires_at=now + timedelta(hours=hours),  # set again on approval
                status="requested",
                scopes=sorted(scopes),
                hours=hours,
            )
        ).inserted_primary_key[0]
        details = {"staff": staff.actor, "tenant_id": tenant_id, "scopes": sorted(scopes),
                   "hours": hours, "reason": reason}  # fmt: skip
        for audited in {tenant_id, staff.tenant_id}:
            audit(conn, audited, staff.actor, "staff_grant.requested", target=f"grant:{grant_id}",
                  details=details, ip=ip, actor_user_id=staff.user_id)  # fmt: skip
    return _grants(engine, staff_grants.c.id == grant_id)[0]


def withdraw_request(engine: Engine, staff: Caller, grant_id: int, ip: str) -> None:
    """Staff take back a request of theirs still waiting for an answer."""
    with atomic(engine) as conn:
        row = conn.execute(
            sa.select(staff_grants.c.tenant_id).where(
                staff_grants.c.id == grant_id,
                staff_grants.c.staff_user_id == staff.user_id,
                staff_grants.c.status == "requested",
            )
        ).first()
        if row is None:
            raise NotFound(f"no request {grant_id} of yours waiting for an answer")
        conn.execute(
            staff_grants.update()
            .where(staff_grants.c.id == grant_id)
            .values(status="withdrawn", declined_at=utcnow())
        )
        for audited in {row.tenant_id, staff.tenant_id}:
            audit(conn, audited, staff.actor, "staff_grant.withdrawn", target=f"grant:{grant_id}",
                  details={"tenant_id": row.tenant_id}, ip=ip,
                  actor_user_id=staff.user_id)  # fmt: skip


def grants_of_staff(engine: Engine, staff_user_id: int) -> list[dict[str, Any]]:
    """A staff member's grants and requests in every tenant."""
    return _grants(engine, staff_grants.c.staff_user_id == staff_user_id)


def _grants(engine: Engine, *conditions: Any) -> list[dict[str, Any]]:
    now = utcnow()
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(staff_grants, users.c.email, tenants.c.code.label("tenant"))
                .join(users, users.c.id == staff_grants.c.staff_user_id)
                .join(tenants, tenants.c.id == staff_grants.c.tenant_id)
                .where(*conditions)
                .order_by(staff_grants.c.id)
            )
            .mappings()
            .all()
        )
    return [_grant_json(r, now) for r in rows]


def _not_requested(grant_id: int) -> Conflict:
    return Conflict(
        f"grant {grant_id} is not a request waiting for an answer", code="grant_not_requested"
    )


def _platform_tenant_id(conn: sa.Connection) -> int | None:
    return conn.execute(sa.select(tenants.c.id).where(tenants.c.code == "platform")).scalar()


# A request nobody answered in a week is stale: staff ask again if they still need it.
REQUEST_LAPSES_AFTER = timedelta(days=7)


def grant_state(status: str, expires_at: datetime, created_at: datetime, now: datetime) -> str:
    """requested, active, declined, revoked, withdrawn, expired (an active grant past its
    end) or lapsed (a request unanswered for REQUEST_LAPSES_AFTER)."""
    if status == "active" and expires_at <= now:
        return "expired"
    if status == "requested" and created_at + REQUEST_LAPSES_AFTER <= now:
        return "lapsed"
    return status


def active_grant(engine: Engine, grant_id: int, staff_user_id: int) -> dict[str, Any] | None:
    now = utcnow()
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(staff_grants).where(
                    staff_grants.c.id == grant_id,
                    staff_grants.c.staff_user_id == staff_user_id,
                    staff_grants.c.status == "active",
                    staff_grants.c.expires_at > now,
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def ensure_platform_staff(engine: Engine, email: str, password: str) -> int:
    """The platform's own tenant and a staff user in it (idempotent)."""
    with atomic(engine) as conn:
        tenant_id = conn.execute(
            sa.select(tenants.c.id).where(tenants.c.code == "platform")
        ).scalar()
        if tenant_id is None:
            tenant_id = conn.execute(
                tenants.insert().values(code="platform", name="仓运通平台", created_at=utcnow())
            ).inserted_primary_key[0]
        user_id = conn.execute(sa.select(users.c.id).where(users.c.email == email)).scalar()
        if user_id is None:
            user_id = insert_user(
                conn, tenant_id=tenant_id, email=email, password=password, role="platform_staff"
            )
    return user_id


def _user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "phone": row["phone"],
        "role": row["role"],
        "active": bool(row["active"]),
        "locked_until": _iso(row["locked_until"]),
        "last_login_at": _iso(row["last_login_at"]),
        "password_changed_at": _iso(row["password_changed_at"]),
        "created_at": _iso(row["created_at"]),
    }


def _key_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "role": row["role"],
        "scopes": row["scopes"] or [],
        "created_at": _iso(row["created_at"]),
        "expires_at": _iso(row["expires_at"]),
        "revoked_at": _iso(row["revoked_at"]),
        "last_used_at": _iso(row["last_used_at"]),
    }


def _grant_json(row: Any, now: datetime) -> dict[str, Any]:
    requested = row["status"] == "requested"
    return {
        "id": row["id"],
        "tenant": row["tenant"],
        "staff": row["email"],
        "status": grant_state(row["status"], row["expires_at"], row["created_at"], now),
        "scopes": list(row["scopes"]),
        "hours": row["hours"],
        "requested": row["requested_by"] is not None,
        "reason": row["reason"],
        "created_at": _iso(row["created_at"]),
        "approved_at": _iso(row["approved_at"]),
        "expires_at": None if requested else _iso(row["expires_at"]),
        "declined_at": _iso(row["declined_at"]),
        "revoked_at": _iso(row["revoked_at"]),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


__all__ = ["Caller", "TenantAccounts", "register"]
