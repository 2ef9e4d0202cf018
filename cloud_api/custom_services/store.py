"""定制服务 custom services: a tenant's request, staff's quote on it, the tenant's acceptance
as a prepaid order. All their SQL.

A request moves submitted → quoted → accepted; before it is accepted the tenant may withdraw
it and staff may decline it, and staff may revise a quote (the newest one counts). Accepting
writes the order at the quoted price in the same transaction (``TenantBilling.insert_order``);
from then on the order says the rest: paying it is the platform's one payment path
(``billing.store.settle``), cancelling it is the tenant's. So ``paid`` and ``cancelled`` are
read from the order, never stored twice.

Each step is one transaction that writes the step, its history row, an audit entry in the
tenant's log and in the platform's, and the other side's notification (in-site and email,
``messaging.queue_message``): a step is never recorded without its notice, or the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.errors import Conflict, NotFound
from cangyun.timeutil import utcnow
from cloud_api.billing import catalog
from cloud_api.billing.store import TenantBilling
from cloud_api.messaging.store import CUSTOM_SERVICE, queue_message
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import (
    custom_service_events,
    custom_services,
    orders,
    tenants,
    warehouses,
)
from cloud_api.platform.tenancy import Caller, TenantStore, audit

# The seed: delivery in 5 to 15 working days (交付周期：5 - 15工作日).
DELIVERY_DAYS = (5, 15)
OPEN = ("submitted", "quoted")  # states a request can still be quoted, withdrawn or declined
STATUSES = ("submitted", "quoted", "accepted", "paid", "cancelled", "withdrawn", "declined")
TENANT, PLATFORM = "tenant", "platform"


class CustomServiceError(Conflict):
    """A step the request's state does not allow (HTTP 409)."""

    def __init__(self, code: str, message: str, status: str) -> None:
        super().__init__(message, code=code, details={"status": status})


@dataclass(frozen=True)
class NewRequest:
    title: str
    description: str
    warehouses: tuple[str, ...]
    private_deployment: bool
    contact_name: str
    contact_phone: str
    contact_email: str


@dataclass(frozen=True)
class NewQuote:
    price_yuan: Decimal
    scope: str
    delivery_working_days: int
    valid_days: int


class TenantCustomServices(TenantStore):
    """One tenant's requests: submit, read, accept, withdraw, write to staff."""

    def submit(self, new: NewRequest, caller: Caller, ip: str) -> dict[str, Any]:
        now = utcnow()
        with atomic(self.engine) as conn:
            self._check_warehouses(conn, new.warehouses)
            request_id = conn.execute(
                custom_services.insert().values(
                    tenant_id=self.tenant_id,
                    title=new.title,
                    description=new.description,
                    warehouses=list(dict.fromkeys(new.warehouses)),
                    private_deployment=new.private_deployment,
                    contact_name=new.contact_name,
                    contact_phone=new.contact_phone,
                    contact_email=new.contact_email,
                    status="submitted",
                    created_by=caller.actor,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            _step(
                conn,
                self.tenant_id,
                request_id,
                caller,
                TENANT,
                "submitted",
                new.description,
                ip,
                {"title": new.title, "private_deployment": new.private_deployment},
                now,
            )
        return self.request(request_id)

    def requests(
        self, status: str | None, limit: int, before_id: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """The tenant's requests, newest first: (total, page)."""
        mine = [custom_services.c.tenant_id == self.tenant_id]
        with self.engine.connect() as conn:
            total = _count(conn, mine, status)
            if before_id is not None:
                mine.append(custom_services.c.id < before_id)
            return total, [_request_json(conn, r) for r in _select(conn, mine, status, limit)]

    def request(self, request_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return _request_json(conn, self._row(conn, request_id), history=True)

    def accept(self, request_id: int, caller: Caller, ip: str) -> dict[str, Any]:
        """The quote becomes a prepaid order at its price, in this transaction."""
        now = utcnow()
        with atomic(self.engine) as conn:
            row = self._row(conn, request_id, lock=True)
            if row["status"] != "quoted":
                raise CustomServiceError(
                    "not_quoted", "only a quoted request can be accepted", row["status"]
                )
            if row["quote_valid_until"] <= now:
                raise CustomServiceError(
                    "quote_expired",
                    f"the quote was valid until {row['quote_valid_until'].isoformat()}; ask"
                    " for a new one",
                    row["status"],
                )
            price = Decimal(row["price_yuan"])
            billing = TenantBilling(self.engine, self.tenant_id)
            order_id = billing.insert_order(conn, catalog.quoted_service(price), None, caller, ip)
            _move(conn, request_id, OPEN[1:], "accepted", now, order_id=order_id)
            _step(
                conn,
                self.tenant_id,
                request_id,
                caller,
                TENANT,
                "accepted",
                "",
                ip,
                {"order_id": order_id, "price_yuan": str(price)},
                now,
            )
        return self.request(request_id)

    def withdraw(self, request_id: int, caller: Caller, ip: str) -> dict[str, Any]:
        now = utcnow()
        with atomic(self.engine) as conn:
            row = self._row(conn, request_id, lock=True)
            _require_open(row, "withdrawn")
            _move(conn, request_id, OPEN, "withdrawn", now)
            _step(conn, self.tenant_id, request_id, caller, TENANT, "withdrawn", "", ip, {}, now)
        return self.request(request_id)

    def write(self, request_id: int, text: str, caller: Caller, ip: str) -> dict[str, Any]:
        """A message to staff on the request, in any state."""
        now = utcnow()
        with atomic(self.engine) as conn:
            self._row(conn, request_id)
            _touch(conn, request_id, now)
            _step(conn, self.tenant_id, request_id, caller, TENANT, "message", text, ip, {}, now)
        return self.request(request_id)

    def _row(self, conn: sa.Connection, request_id: int, lock: bool = False) -> Any:
        return _row(conn, request_id, self.tenant_id, lock)

    def _check_warehouses(self, conn: sa.Connection, codes: tuple[str, ...]) -> None:
        found = set(
            conn.execute(
                sa.select(warehouses.c.code).where(
                    warehouses.c.tenant_id == self.tenant_id, warehouses.c.code.in_(codes)
                )
            ).scalars()
        )
        missing = [code for code in codes if code not in found]
        if missing:
            raise NotFound(f"no warehouse {', '.join(missing)}", field="warehouses")


# --- platform staff -----------------------------------------------------------------------


def platform_requests(
    engine: Engine, status: str | None, limit: int, before_id: int | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Requests of every tenant, newest first, with their tenant."""
    with engine.connect() as conn:
        total = _count(conn, [], status)
        where = [custom_services.c.id < before_id] if before_id is not None else []
        return total, [_request_json(conn, r) for r in _select(conn, where, status, limit)]


def platform_request(engine: Engine, request_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return _request_json(conn, _row(conn, request_id, None), history=True)


def quote(
    engine: Engine, request_id: int, offer: NewQuote, staff: Caller, ip: str
) -> dict[str, Any]:
    """Staff's price, scope and delivery time; a later quote replaces an earlier one."""
    now = utcnow()
    with atomic(engine) as conn:
        row = _row(conn, request_id, None, lock=True)
        _require_open(row, "quoted")
        valid_until = now + timedelta(days=offer.valid_days)
        conn.execute(
            custom_services.update()
            .where(custom_services.c.id == request_id)
            .values(
                status="quoted",
                price_yuan=offer.price_yuan,
                scope=offer.scope,
                delivery_working_days=offer.delivery_working_days,
                quote_valid_until=valid_until,
                quoted_by=staff.actor,
                quoted_at=now,
                updated_at=now,
            )
        )
        _step(
            conn,
            row["tenant_id"],
            request_id,
            staff,
            PLATFORM,
            "quoted",
            offer.scope,
            ip,
            {
                "price_yuan": str(offer.price_yuan),
                "delivery_working_days": offer.delivery_working_days,
                "valid_until": valid_until.isoformat(),
            },
            now,
        )
    return platform_request(engine, request_id)


def decline(engine: Engine, request_id: int, reason: str, staff: Caller, ip: str) -> dict[str, Any]:
    now = utcnow()
    with atomic(engine) as conn:
        row = _row(conn, request_id, None, lock=True)
        _require_open(row, "declined")
        _move(conn, request_id, OPEN, "declined", now)
        _step(conn, row["tenant_id"], request_id, staff, PLATFORM, "declined", reason, ip, {}, now)
    return platform_request(engine, request_id)


def staff_write(
    engine: Engine, request_id: int, text: str, staff: Caller, ip: str
) -> dict[str, Any]:
    now = utcnow()
    with atomic(engine) as conn:
        row = _row(conn, request_id, None)
        _touch(conn, request_id, now)
        _step(conn, row["tenant_id"], request_id, staff, PLATFORM, "message", text, ip, {}, now)
    return platform_request(engine, request_id)


# --- shared -------------------------------------------------------------------------------


def _row(conn: sa.Connection, request_id: int, tenant_id: int | None, lock: bool = False) -> Any:
    query = (
        sa.select(
            custom_services, tenants.c.code.label("tenant"), tenants.c.name.label("tenant_name")
        )
        .join(tenants, tenants.c.id == custom_services.c.tenant_id)
        .where(custom_services.c.id == request_id)
    )
    if tenant_id is not None:
        query = query.where(custom_services.c.tenant_id == tenant_id)
    if lock and conn.dialect.name == "postgresql":  # two answers at once: one wins
        query = query.with_for_update(of=custom_services)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no custom-service request {request_id}")
    return row


def _select(conn: sa.Connection, where: list[Any], status: str | None, limit: int) -> list[Any]:
    """Requests newest first, with their tenant."""
    query = (
        sa.select(
            custom_services, tenants.c.code.label("tenant"), tenants.c.name.label("tenant_name")
        )
        .select_from(custom_services)
        .join(tenants, tenants.c.id == custom_services.c.tenant_id)
        .outerjoin(orders, orders.c.id == custom_services.c.order_id)
        .where(*where, *_in_status(status))
        .order_by(custom_services.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query).mappings().all())


def _count(conn: sa.Connection, where: list[Any], status: str | None) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(custom_services)
        .outerjoin(orders, orders.c.id == custom_services.c.order_id)
        .where(*where, *_in_status(status))
    )
    return conn.execute(query).scalar_one()


def _in_status(status: str | None) -> list[Any]:
    """A status as the reader sees it: paid and cancelled are the accepted order's."""
    stored, order_status = custom_services.c.status, sa.func.coalesce(orders.c.status, "")
    if status in ("paid", "cancelled"):
        return [stored == "accepted", order_status == status]
    if status == "accepted":
        return [stored == "accepted", order_status == "pending_payment"]
    return [stored == status] if status is not None else []


def _require_open(row: Any, wanted: str) -> None:
    if row["status"] not in OPEN:
        raise CustomServiceError(
            "request_closed",
            f"the request is {row['status']}: it can no longer be {wanted}",
            row["status"],
        )


def _move(
    conn: sa.Connection,
    request_id: int,
    from_states: tuple[str, ...],
    to: str,
    now: datetime,
    **values: Any,
) -> None:
    """Change the state only from where it was read: a step racing another finds it moved."""
    moved = conn.execute(
        custom_services.update()
        .where(custom_services.c.id == request_id, custom_services.c.status.in_(from_states))
        .values(status=to, updated_at=now, **values)
    ).rowcount
    if moved != 1:
        raise CustomServiceError("request_changed", "the request changed meanwhile", to)


def _touch(conn: sa.Connection, request_id: int, now: datetime) -> None:
    conn.execute(
        custom_services.update().where(custom_services.c.id == request_id).values(updated_at=now)
    )


# What the other side reads when a step happens (title, body), in both languages.
NOTICES = {
    "submitted": ("新的定制服务需求 New custom-service request", "{tenant}: {title}"),
    "quoted": (
        "定制服务已报价 Custom service quoted",
        "{title}: ¥{price_yuan}, {delivery_working_days} 个工作日 working days,"
        " 有效期至 valid until {valid_until}",
    ),
    "accepted": (
        "定制服务报价已接受 Custom-service quote accepted",
        "{tenant}: {title} → 订单 order {order_id}",
    ),
    "withdrawn": ("定制服务需求已撤回 Custom-service request withdrawn", "{tenant}: {title}"),
    "declined": ("定制服务需求未能承接 Custom-service request declined", "{title}: {body}"),
    "message": ("定制服务留言 Message on a custom-service request", "{title}: {body}"),
}


def _step(
    conn: sa.Connection,
    tenant_id: int,
    request_id: int,
    who: Caller,
    side: str,
    action: str,
    body: str,
    ip: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """History row, audit entries on both sides, and the other side's notice."""
    conn.execute(
        custom_service_events.insert().values(
            request_id=request_id,
            side=side,
            actor=who.actor,
            action=action,
            body=body,
            created_at=now,
        )
    )
    target = f"custom_service:{request_id}"
    platform_id = conn.execute(sa.select(tenants.c.id).where(tenants.c.code == "platform")).scalar()
    for log_tenant in dict.fromkeys([tenant_id, platform_id]):
        if log_tenant is None:
            continue  # no staff account yet: the platform has no log of its own
        audit(
            conn,
            log_tenant,
            who.actor,
            f"custom_service.{action}",
            target=target,
            details=details | ({"tenant_of_request": tenant_id} if log_tenant != tenant_id else {}),
            ip=ip,
            actor_user_id=who.user_id,
            via_grant_id=who.grant_id,
        )
    reader = platform_id if side == TENANT else tenant_id
    if reader is None:
        return
    facts = conn.execute(
        sa.select(custom_services.c.title, tenants.c.code)
        .join(tenants, tenants.c.id == custom_services.c.tenant_id)
        .where(custom_services.c.id == request_id)
    ).one()
    title, text = NOTICES[action]
    values = {"tenant": facts.code, "title": facts.title, "body": body[:500], **details}
    queue_message(
        conn,
        reader,
        CUSTOM_SERVICE,
        f"{title} #{request_id}",
        text.format(**values),
        [str(request_id)],
        now,
        reference=target,
    )


def _request_json(conn: sa.Connection, row: Any, history: bool = False) -> dict[str, Any]:
    order = None
    status = row["status"]
    if row["order_id"] is not None:
        found = conn.execute(
            sa.select(orders.c.id, orders.c.status, orders.c.total_yuan, orders.c.paid_at).where(
                orders.c.id == row["order_id"]
            )
        ).one()
        order = {
            "id": found.id,
            "status": found.status,
            "total_yuan": str(Decimal(found.total_yuan).quantize(Decimal("0.01"))),
            "paid_at": found.paid_at.isoformat() if found.paid_at else None,
        }
        status = {"paid": "paid", "cancelled": "cancelled"}.get(found.status, status)
    offer = None
    if row["quoted_at"] is not None:
        offer = {
            "price_yuan": str(Decimal(row["price_yuan"]).quantize(Decimal("0.01"))),
            "scope": row["scope"],
            "delivery_working_days": row["delivery_working_days"],
            "valid_until": row["quote_valid_until"].isoformat(),
            "quoted_by": row["quoted_by"],
            "quoted_at": row["quoted_at"].isoformat(),
        }
    result = {
        "id": row["id"],
        "tenant": row["tenant"],
        "tenant_name": row["tenant_name"],
        "title": row["title"],
        "description": row["description"],
        "warehouses": list(row["warehouses"]),
        "private_deployment": bool(row["private_deployment"]),
        "contact": {
            "name": row["contact_name"],
            "phone": row["contact_phone"],
            "email": row["contact_email"],
        },
        "status": status,
        "quote": offer,
        "order": order,
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
    if history:
        events = conn.execute(
            sa.select(custom_service_events)
            .where(custom_service_events.c.request_id == row["id"])
            .order_by(custom_service_events.c.id)
        ).mappings()
        result["history"] = [
            {
                "side": e["side"],
                "actor": e["actor"],
                "action": e["action"],
                "body": e["body"],
                "at": e["created_at"].isoformat(),
            }
            for e in events
        ]
        if order and order["paid_at"]:  # the payment is the order's record, told here too
            paid = {
                "side": PLATFORM,
                "actor": "",
                "action": "paid",
                "body": "",
                "at": order["paid_at"],
            }
            result["history"].append(paid)
    return result
