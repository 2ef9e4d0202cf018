"""Who acts, and inside which tenant: the base of every tenant-scoped store.

``TenantStore`` is built with one tenant id and every query it runs is filtered by it, so a
route cannot forget the tenant. ``audit``/``audit_caller`` write the audit log entry that
belongs to a change, inside the change's own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.timeutil import utcnow
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import audit_log


@dataclass(frozen=True)
class Caller:
    """The authenticated party of a request, always inside exactly one tenant."""

    tenant_id: int
    tenant: str
    role: str
    token_id: int
    user_id: int | None
    actor: str  # email, or the API key's name
    kind: str  # session | api_key
    scopes: frozenset[str] | None
    password_expired: bool
    grant_id: int | None
    grant_scopes: frozenset[str] | None = None  # a staff session: its grant's scopes


def audit(
    conn: sa.Connection,
    tenant_id: int | None,
    actor: str,
    action: str,
    *,
    target: str = "",
    details: dict[str, Any] | None = None,
    ip: str = "",
    actor_user_id: int | None = None,
    via_grant_id: int | None = None,
) -> None:
    conn.execute(
        audit_log.insert().values(
            tenant_id=tenant_id,
            actor_user_id=actor_user_id,
            actor=actor[:254],
            via_grant_id=via_grant_id,
            action=action,
            target=target[:200],
            details=details or {},
            ip=ip[:64],
            created_at=utcnow(),
        )
    )


def audit_caller(
    conn: sa.Connection,
    tenant_id: int,
    caller: Caller,
    action: str,
    *,
    target: str = "",
    details: dict[str, Any] | None = None,
    ip: str = "",
) -> None:
    """What an authenticated caller did in ``tenant_id``, with the grant a staff member
    acted under (the tenant sees who did it, and on whose authority)."""
    audit(
        conn,
        tenant_id,
        caller.actor,
        action,
        target=target,
        details=details,
        ip=ip,
        actor_user_id=caller.user_id,
        via_grant_id=caller.grant_id,
    )


class TenantStore:
    """The data layer of one tenant: built with its id, every query it makes stays inside."""

    def __init__(self, engine: Engine, tenant_id: int) -> None:
        self.engine = engine
        self.tenant_id = tenant_id

    def record(
        self, caller: Caller, action: str, target: str, details: dict[str, Any], ip: str
    ) -> None:
        """An audit entry for a change another module committed (edge provisioning)."""
        with atomic(self.engine) as conn:
            self._audit(conn, caller, action, target, details, ip)

    def _audit(
        self,
        conn: sa.Connection,
        caller: Caller,
        action: str,
        target: str,
        details: dict[str, Any],
        ip: str,
    ) -> None:
        audit_caller(conn, self.tenant_id, caller, action, target=target, details=details, ip=ip)
