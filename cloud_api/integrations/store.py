"""Webhooks (二次开发管理): subscriptions, the delivery queue and its retries. All their SQL.

Deliveries are queued in the same transaction as what they report (a committed batch of
movements, a new alert), so a webhook fires exactly for what was committed. A worker claims
due deliveries with a lease, so several API processes may run workers side by side.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.errors import NotFound
from cangyun.timeutil import utcnow
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import webhook_deliveries, webhooks
from cloud_api.platform.tenancy import Caller, TenantStore, audit_caller

EVENTS = ("movements.created", "alerts.created", "ping")
LEASE = timedelta(seconds=60)  # a claimed delivery is retried if its worker dies
MAX_ATTEMPTS = 8


class TenantIntegrations(TenantStore):
    def webhooks(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(webhooks)
                    .where(webhooks.c.tenant_id == self.tenant_id)
                    .order_by(webhooks.c.id)
                )
                .mappings()
                .all()
            )
        return [_webhook_json(r) for r in rows]

    def webhook(self, webhook_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(webhooks).where(
                        webhooks.c.tenant_id == self.tenant_id, webhooks.c.id == webhook_id
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        return _webhook_json(row)

    def create(
        self, url: str, events: list[str], caller: Caller, ip: str
    ) -> tuple[dict[str, Any], str]:
        secret = "whsec_" + secrets.token_urlsafe(24)
        with atomic(self.engine) as conn:
            webhook_id = conn.execute(
                webhooks.insert().values(
                    tenant_id=self.tenant_id,
                    url=url,
                    events=sorted(events),
                    secret=secret,
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]
            audit_caller(
                conn,
                self.tenant_id,
                caller,
                "webhook.created",
                target=f"webhook:{webhook_id}",
                details={"url": url, "events": events},
                ip=ip,
            )
        return self.webhook(webhook_id), secret

    def delete(self, webhook_id: int, caller: Caller, ip: str) -> None:
        with atomic(self.engine) as conn:
            exists = conn.execute(
                sa.select(webhooks.c.id).where(
                    webhooks.c.tenant_id == self.tenant_id, webhooks.c.id == webhook_id
                )
            ).scalar()
            if exists is None:
                raise NotFound(f"no webhook {webhook_id}")
            conn.execute(
                webhook_deliveries.delete().where(webhook_deliveries.c.webhook_id == webhook_id)
            )
            conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
            audit_caller(
                conn,
                self.tenant_id,
                caller,
                "webhook.deleted",
                target=f"webhook:{webhook_id}",
                ip=ip,
            )

    def deliveries(self, webhook_id: int, limit: int = 100) -> list[dict[str, Any]]:
        self.webhook(webhook_id)  # 404 for another tenant's webhook
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.tenant_id == self.tenant_id,
                        webhook_deliveries.c.webhook_id == webhook_id,
                    )
                    .order_by(webhook_deliveries.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [
            {
                "id": r["id"],
                "event": r["event"],
                "status": r["status"],
                "attempts": r["attempts"],
                "last_error": r["last_error"],
                "created_at": r["created_at"].isoformat(),
                "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
            }
            for r in rows
        ]

    def ping(self, webhook_id: int) -> None:
        self.webhook(webhook_id)
        with atomic(self.engine) as conn:
            _queue(conn, self.tenant_id, webhook_id, "ping", {"event": "ping"})


def enqueue(conn: sa.Connection, tenant_id: int, event: str, payload: dict[str, Any]) -> int:
    """Queue ``event`` for every active webhook of the tenant that subscribed to it."""
    targets = conn.execute(
        sa.select(webhooks.c.id, webhooks.c.events).where(
            webhooks.c.tenant_id == tenant_id, webhooks.c.active.is_(True)
        )
    ).all()
    count = 0
    for webhook_id, events in targets:
        if event in (events or []):
            _queue(conn, tenant_id, webhook_id, event, payload)
            count += 1
    return count


def _queue(
    conn: sa.Connection, tenant_id: int, webhook_id: int, event: str, payload: dict[str, Any]
) -> None:
    now = utcnow()
    conn.execute(
        webhook_deliveries.insert().values(
            tenant_id=tenant_id,
            webhook_id=webhook_id,
            event=event,
            payload=json.dumps(
                {"event": event, "created_at": now.isoformat(), **payload},
                ensure_ascii=False,
                default=str,
            ),
            status="pending",
            next_attempt_at=now,
            created_at=now,
        )
    )


def claim_due(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """Take up to ``limit`` due deliveries for this worker (lease; attempts counted)."""
    now = utcnow()
    with atomic(engine) as conn:
        ids = (
            conn.execute(
                sa.select(webhook_deliveries.c.id)
                .where(
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        claimed = (
            conn.execute(
                webhook_deliveries.update()
                .where(
                    webhook_deliveries.c.id.in_(ids),
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE, attempts=webhook_deliveries.c.attempts + 1)
                .returning(webhook_deliveries.c.id)
            )
            .scalars()
            .all()
        )
        if not claimed:
            return []
        rows = (
            conn.execute(
                sa.select(webhook_deliveries, webhooks.c.url, webhooks.c.secret)
                .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                .where(webhook_deliveries.c.id.in_(claimed))
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def delivered(engine: Engine, delivery_id: int) -> None:
    with atomic(engine) as conn:
        conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == delivery_id)
            .values(status="delivered", delivered_at=utcnow(), last_error="")
        )


def failed(
    engine: Engine, delivery_id: int, attempts: int, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retry at ``retry_at``, or give up after MAX_ATTEMPTS."""
    values: dict[str, Any] = {"last_error": error[:500]}
    if retry_at is None or attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    with atomic(engine) as conn:
        conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == delivery_id)
            .values(**values)
        )


def _webhook_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": row["events"],
        "active": bool(row["active"]),
        "created_at": row["created_at"].isoformat(),
    }
