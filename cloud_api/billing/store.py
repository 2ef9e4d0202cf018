"""Orders, prepaid packages, what a tenant is entitled to, and closing metered days.

Rules (docs/billing.md):
- Prepaid only; one edition (or one add-on) per order; paying activates one package (``settle``
  is the only way, from a staff-confirmed transfer or a verified gateway notification); a
  renewal is a new order; no refunds; cancel only before payment. Every state change is
  audited in the same transaction.
- The tenant's edition is that of its most recently activated edition package. Buying a
  different edition switches features at once; what remains of older packages is still
  consumed (oldest first) — prepaid quota is never lost to an upgrade.
- Inbound is allowed while an edition package has quota left (flow, item) or is within its
  year (period). When it runs out, new inbound is refused at the edge (quota_exhausted);
  outbound and reads go on.
- Each closed business day posts its tonne-days and pieces once; a late movement into a
  closed day posts an adjustment (the difference) and never rewrites the posting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cangyun.errors import Conflict, DomainError, NotFound
from cangyun.timeutil import utcnow
from cloud_api.billing import catalog
from cloud_api.billing import usage_store as metering
from cloud_api.billing.catalog import Quote
from cloud_api.billing.metering import DayUsage, close, to_tonne_days, windows
from cloud_api.messaging import store as messaging
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import (
    ledger,
    metering_state,
    orders,
    package_allocations,
    packages,
    stock,
    tenants,
    usage_days,
    usage_postings,
)
from cloud_api.platform.tenancy import Caller, TenantStore, audit

ZERO = Decimal(0)
LATE_SAFETY = timedelta(seconds=60)  # rows younger than this may still be committing


class BillingError(Conflict):
    """An order in the wrong state for what was asked (paid, cancelled, refunds)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class Quota:
    unit: str
    remaining: Decimal
    total: Decimal  # of the packages that still have something left


@dataclass
class Entitlement:
    edition: str | None
    features: frozenset[str]
    add_ons: frozenset[str]
    inbound_allowed: bool
    quotas: list[Quota] = field(default_factory=list)
    period_ends_at: datetime | None = None
    has_bought: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "edition": self.edition,
            "features": sorted(self.features),
            "add_ons": sorted(self.add_ons),
            "inbound_allowed": self.inbound_allowed,
            "quotas": [
                {"unit": q.unit, "remaining": _num(q.remaining), "total": _num(q.total)}
                for q in self.quotas
            ],
            "period_ends_at": self.period_ends_at.isoformat() if self.period_ends_at else None,
        }


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(round(value, 6))


class TenantBilling(TenantStore):
    # --- orders ---------------------------------------------------------------------------

    def create_order(
        self, quote: Quote, area_m2: Decimal | None, caller: Caller, ip: str
    ) -> dict[str, Any]:
        with atomic(self.engine) as conn:
            order_id = self.insert_order(conn, quote, area_m2, caller, ip)
        return self.order(order_id)

    def insert_order(
        self,
        conn: sa.Connection,
        quote: Quote,
        area_m2: Decimal | None,
        caller: Caller,
        ip: str,
    ) -> int:
        """The order row and its audit entry, inside the caller's transaction (an accepted
        custom-service quote becomes its order in the same transaction)."""
        order_id = conn.execute(
            orders.insert().values(
                tenant_id=self.tenant_id,
                edition=quote.edition,
                add_on=quote.add_on,
                billing_mode=quote.billing_mode,
                unit=quote.unit,
                area=quote.area,
                business_area_m2=area_m2,
                quantity=quote.quantity,
                unit_price_yuan=quote.unit_price_yuan,
                total_yuan=quote.total_yuan,
                units=quote.units,
                status="pending_payment",
                created_by=caller.actor,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
        self._audit(
            conn,
            caller,
            "order.created",
            f"order:{order_id}",
            {
                "edition": quote.edition,
                "add_on": quote.add_on,
                "billing_mode": quote.billing_mode,
                "quantity": quote.quantity,
                "total_yuan": str(quote.total_yuan),
            },
            ip,
        )
        return order_id

    def orders(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(orders)
                    .where(orders.c.tenant_id == self.tenant_id)
                    .order_by(orders.c.id.desc())
                )
                .mappings()
                .all()
            )
        return [_order_json(r) for r in rows]

    def order(self, order_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._order_row(conn, order_id)
        return _order_json(row)

    def _order_row(self, conn: sa.Connection, order_id: int, lock: bool = False) -> Any:
        query = sa.select(orders).where(
            orders.c.tenant_id == self.tenant_id, orders.c.id == order_id
        )
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no order {order_id}")
        return row

    def _period(
        self, conn: sa.Connection, order: Any, now: datetime
    ) -> tuple[datetime, datetime | None]:
        """A year package starts now, or when the tenant's current year of the same kind ends
        (a renewal bought early extends coverage instead of overlapping it)."""
        if order["unit"] != "year":
            return now, None
        same_kind = [
            packages.c.tenant_id == self.tenant_id,
            packages.c.unit == "year",
            packages.c.expires_at > now,
        ]
        same_kind.append(
            packages.c.add_on == order["add_on"] if order["add_on"] else packages.c.add_on.is_(None)
        )
        latest = conn.execute(
            sa.select(sa.func.max(packages.c.expires_at)).where(*same_kind)
        ).scalar()
        start = max(now, latest) if latest else now
        years = int(order["units"])
        try:
            end = start.replace(year=start.year + years)
        except ValueError:  # 29 February
            end = start.replace(year=start.year + years, day=28)
        return start, end

    def cancel(self, order_id: int, caller: Caller, ip: str) -> dict[str, Any]:
        with atomic(self.engine) as conn:
            row = self._order_row(conn, order_id, lock=True)
            if row["status"] == "paid":
                raise BillingError(
                    "already_paid", "a paid order cannot be cancelled (no refunds once paid)"
                )
            if row["status"] == "pending_payment":
                conn.execute(
                    orders.update()
                    .where(orders.c.id == order_id)
                    .values(status="cancelled", cancelled_at=utcnow())
                )
                self._audit(conn, caller, "order.cancelled", f"order:{order_id}", {}, ip)
        return self.order(order_id)

    def refuse_refund(self, order_id: int, caller: Caller, ip: str) -> NoReturn:
        """Refunds do not exist; the attempt is audited all the same, then refused."""
        with atomic(self.engine) as conn:
            self._order_row(conn, order_id)
            self._audit(conn, caller, "order.refund_refused", f"order:{order_id}", {}, ip)
        raise BillingError(
            "refunds_not_supported",
            "purchased services are not refundable (已购买的服务暂不支持退费)",
        )

    # --- packages and entitlement ---------------------------------------------------------

    def packages(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or utcnow()
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(packages)
                    .where(packages.c.tenant_id == self.tenant_id)
                    .order_by(packages.c.activated_at, packages.c.id)
                )
                .mappings()
                .all()
            )
        return [_package_json(r, now) for r in rows]

    def entitlement(self, now: datetime | None = None) -> Entitlement:
        now = now or utcnow()
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(packages)
                    .where(packages.c.tenant_id == self.tenant_id)
                    .order_by(packages.c.activated_at, packages.c.id)
                )
                .mappings()
                .all()
            )
        return entitlement_of(rows, now)

    # --- usage ----------------------------------------------------------------------------

    def zone(self) -> ZoneInfo:
        with self.engine.connect() as conn:
            name = conn.execute(
                sa.select(tenants.c.timezone).where(tenants.c.id == self.tenant_id)
            ).scalar_one()
        return ZoneInfo(name)

    def usage(self, first: date, last: date, now: datetime | None = None) -> dict[str, Any]:
        """Closed days as posted (with their revisions) and open days computed live."""
        now = now or utcnow()
        zone = self.zone()
        with self.engine.connect() as conn:
            closed = {
                r["day"]: r
                for r in conn.execute(
                    sa.select(usage_days).where(
                        usage_days.c.tenant_id == self.tenant_id,
                        usage_days.c.day >= first,
                        usage_days.c.day <= last,
                    )
                ).mappings()
            }
            live_days = windows(zone, first, last)
            opening, sums = metering.movement_sums(conn, self.tenant_id, live_days, zone)
        live = {u.day: u for u in close(opening, sums, live_days)}
        today = now.astimezone(zone).date()
        by_day = []
        for window in live_days:
            row = closed.get(window.day)
            if window.day > today:
                break
            if row is not None:
                entry = {
                    "day": window.day.isoformat(),
                    "closed": True,
                    "revision": row["revision"],
                    "tonne_days": float(round(to_tonne_days(int(row["gram_ms"])), 6)),
                    "pieces_in": int(row["pieces_in"]),
                    "pieces_out": int(row["pieces_out"]),
                }
            else:
                u = live[window.day]
                if window.day == today:  # so far today
                    u = _partial_day(u, window.start_ms, _ms(now))
                entry = {
                    "day": window.day.isoformat(),
                    "closed": False,
                    "revision": 0,
                    "tonne_days": float(round(u.tonne_days, 6)),
                    "pieces_in": u.pieces_in,
                    "pieces_out": u.pieces_out,
                }
            by_day.append(entry)
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "timezone": zone.key,
            "tonne_days": round(sum(d["tonne_days"] for d in by_day), 6),
            "pieces": sum(d["pieces_in"] + d["pieces_out"] for d in by_day),
            "pieces_in": sum(d["pieces_in"] for d in by_day),
            "pieces_out": sum(d["pieces_out"] for d in by_day),
            "by_day": by_day,
        }

    def current_stock_tonnes(self) -> Decimal:
        with self.engine.connect() as conn:
            grams = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(stock.c.weight_g), 0)).where(
                    stock.c.tenant_id == self.tenant_id
                )
            ).scalar_one()
        return Decimal(int(grams)) / Decimal(1_000_000)

    def average_daily_pieces(self, days: int = 14, now: datetime | None = None) -> Decimal:
        now = now or utcnow()
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(
                    sa.func.coalesce(
                        sa.func.sum(usage_days.c.pieces_in + usage_days.c.pieces_out), 0
                    )
                ).where(
                    usage_days.c.tenant_id == self.tenant_id,
                    usage_days.c.day >= (now - timedelta(days=days)).date(),
                )
            ).scalar_one()
        return Decimal(int(total)) / days

    def close_days(self, now: datetime | None = None) -> dict[str, int]:
        """Close every finished business day not closed yet and redo closed days that late
        movements changed. Idempotent; safe to run from several processes."""
        now = now or utcnow()
        zone = self.zone()
        yesterday = now.astimezone(zone).date() - timedelta(days=1)
        result = {"closed": 0, "adjusted": 0}
        with atomic(self.engine) as conn:
            if conn.dialect.name == "postgresql":  # one closer per tenant at a time
                conn.execute(
                    sa.select(tenants.c.id).where(tenants.c.id == self.tenant_id).with_for_update()
                )
            state = conn.execute(
                sa.select(metering_state.c.last_ledger_id).where(
                    metering_state.c.tenant_id == self.tenant_id
                )
            ).scalar()
            seen = state or 0
            safe_max = _settled_ledger_id(conn, self.tenant_id, now - LATE_SAFETY)
            last_closed = conn.execute(
                sa.select(sa.func.max(usage_days.c.day)).where(
                    usage_days.c.tenant_id == self.tenant_id
                )
            ).scalar()
            earliest_new = conn.execute(
                sa.select(sa.func.min(ledger.c.occurred_at)).where(
                    ledger.c.tenant_id == self.tenant_id,
                    ledger.c.id > seen,
                    ledger.c.id <= safe_max,
                )
            ).scalar()
            if last_closed is None:
                if earliest_new is None:
                    self._save_state(conn, state, safe_max)
                    return result
                first = earliest_new.astimezone(zone).date()
            else:
                first = last_closed + timedelta(days=1)
                if earliest_new is not None:
                    first = min(first, earliest_new.astimezone(zone).date())
            if first <= yesterday:
                days = windows(zone, first, yesterday)
                known_opening = None
                if last_closed is not None and first == last_closed + timedelta(days=1):
                    known_opening = conn.execute(  # the common case: just the new days
                        sa.select(usage_days.c.closing_g).where(
                            usage_days.c.tenant_id == self.tenant_id,
                            usage_days.c.day == last_closed,
                        )
                    ).scalar()
                opening, sums = metering.movement_sums(
                    conn, self.tenant_id, days, zone, known_opening
                )
                for usage in close(opening, sums, days):
                    changed = self._record_day(conn, usage, now)
                    result[changed] = result.get(changed, 0) + 1
            self._save_state(conn, state, safe_max)
        result.pop("unchanged", None)
        return result

    def _save_state(self, conn: sa.Connection, state: int | None, last_id: int) -> None:
        values = {"last_ledger_id": last_id, "updated_at": utcnow()}
        if state is None:
            conn.execute(metering_state.insert().values(tenant_id=self.tenant_id, **values))
        else:
            conn.execute(
                metering_state.update()
                .where(metering_state.c.tenant_id == self.tenant_id)
                .values(**values)
            )

    def _record_day(self, conn: sa.Connection, usage: DayUsage, now: datetime) -> str:
        existing = (
            conn.execute(
                sa.select(usage_days).where(
                    usage_days.c.tenant_id == self.tenant_id, usage_days.c.day == usage.day
                )
            )
            .mappings()
            .first()
        )
        values = {
            "gram_ms": usage.gram_ms,
            "closing_g": usage.closing_g,
            "pieces_in": usage.pieces_in,
            "pieces_out": usage.pieces_out,
            "closed_at": now,
        }
        if existing is None:
            conn.execute(
                usage_days.insert().values(
                    tenant_id=self.tenant_id, day=usage.day, revision=1, **values
                )
            )
            self._post(conn, usage.day, 1, "usage", usage.tonne_days, Decimal(usage.pieces), now)
            return "closed"
        before_gram_ms = int(existing["gram_ms"])
        before_pieces = int(existing["pieces_in"]) + int(existing["pieces_out"])
        if (
            before_gram_ms == usage.gram_ms
            and before_pieces == usage.pieces
            and int(existing["closing_g"]) == usage.closing_g
        ):
            return "unchanged"
        revision = existing["revision"] + 1
        conn.execute(
            usage_days.update()
            .where(usage_days.c.tenant_id == self.tenant_id, usage_days.c.day == usage.day)
            .values(revision=revision, **values)
        )
        self._post(
            conn,
            usage.day,
            revision,
            "adjustment",
            to_tonne_days(usage.gram_ms - before_gram_ms),
            Decimal(usage.pieces - before_pieces),
            now,
        )
        return "adjusted"

    def _post(
        self,
        conn: sa.Connection,
        day: date,
        revision: int,
        kind: str,
        tonne_days: Decimal,
        pieces: Decimal,
        now: datetime,
    ) -> None:
        for unit, amount in (("tonne_day", tonne_days), ("piece", pieces)):
            if amount == 0:
                continue
            posting_id = conn.execute(
                usage_postings.insert().values(
                    tenant_id=self.tenant_id,
                    day=day,
                    unit=unit,
                    amount=amount,
                    kind=kind,
                    revision=revision,
                    posted_at=now,
                )
            ).inserted_primary_key[0]
            self._allocate(conn, posting_id, unit, amount, now)

    def _allocate(
        self, conn: sa.Connection, posting_id: int, unit: str, amount: Decimal, now: datetime
    ) -> None:
        """Charge ``amount`` to packages oldest first (a negative amount gives back to the
        newest charged first). What no package covers stays unallocated: overage."""
        rows = conn.execute(
            sa.select(packages.c.id, packages.c.total, packages.c.consumed)
            .where(
                packages.c.tenant_id == self.tenant_id,
                packages.c.unit == unit,
                packages.c.edition.is_not(None),
            )
            .order_by(packages.c.activated_at, packages.c.id)
        ).all()
        if amount < 0:
            rows = list(reversed(rows))
        left = amount
        for package_id, total, consumed in rows:
            if left == 0:
                break
            if left > 0:
                take = min(Decimal(total) - Decimal(consumed), left)
                if take <= 0:
                    continue
            else:
                take = -min(Decimal(consumed), -left)
                if take >= 0:
                    continue
            _draw(conn, posting_id, package_id, take)
            left -= take

    def _absorb_overage(self, conn: sa.Connection, unit: str, now: datetime) -> None:
        """Usage nobody's package covered (overage) is charged to a package bought later."""
        if unit not in ("tonne_day", "piece"):
            return
        postings = conn.execute(
            sa.select(
                usage_postings.c.id,
                usage_postings.c.amount,
                sa.func.coalesce(sa.func.sum(package_allocations.c.amount), 0),
            )
            .outerjoin(package_allocations, package_allocations.c.posting_id == usage_postings.c.id)
            .where(
                usage_postings.c.tenant_id == self.tenant_id,
                usage_postings.c.unit == unit,
                usage_postings.c.amount > 0,
            )
            .group_by(usage_postings.c.id, usage_postings.c.amount)
            .order_by(usage_postings.c.id)
        ).all()
        for posting_id, amount, allocated in postings:
            open_amount = Decimal(amount) - Decimal(allocated)
            if open_amount > 0:
                self._allocate_into_new(conn, posting_id, unit, open_amount)

    def _allocate_into_new(
        self, conn: sa.Connection, posting_id: int, unit: str, amount: Decimal
    ) -> None:
        rows = conn.execute(
            sa.select(packages.c.id, packages.c.total, packages.c.consumed)
            .where(
                packages.c.tenant_id == self.tenant_id,
                packages.c.unit == unit,
                packages.c.edition.is_not(None),
                packages.c.consumed < packages.c.total,
            )
            .order_by(packages.c.activated_at, packages.c.id)
        ).all()
        left = amount
        for package_id, total, consumed in rows:
            take = min(Decimal(total) - Decimal(consumed), left)
            if take <= 0:
                continue
            already = conn.execute(
                sa.select(package_allocations.c.amount).where(
                    package_allocations.c.posting_id == posting_id,
                    package_allocations.c.package_id == package_id,
                )
            ).scalar()
            if already is not None:
                continue
            _draw(conn, posting_id, package_id, take)
            left -= take
            if left == 0:
                break


# --- settling an order: the only way a package becomes active ----------------------------


@dataclass(frozen=True)
class Received:
    """Money a gateway says arrived for an order."""

    gateway: str  # cloud_api.billing.payments.GATEWAYS
    transaction_id: str  # the gateway's id of this payment (a transfer: the bank's reference)
    amount_yuan: Decimal
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """What the order keeps in payment_reference; unique, so one payment pays one order."""
        return f"{self.gateway}:{self.transaction_id}"


@dataclass(frozen=True)
class Payer:
    """Who reports the payment: a staff member confirming a transfer, or a gateway."""

    actor: str
    user_id: int | None = None
    ip: str = ""


def settle(
    engine: Engine, order_id: int | None, received: Received, payer: Payer
) -> dict[str, Any]:
    """Mark an order paid and activate its package, once.

    The order must exist and wait for payment, and the amount received must equal its total
    exactly. The same payment again (gateway and transaction id) answers the same paid order
    and activates nothing; a payment that already paid another order is refused. Every
    refusal is audited (the platform's log, and the tenant's when the order is known) and
    leaves the order as it was."""
    now = utcnow()
    refusal: DomainError | None = None
    with atomic(engine) as conn:
        row = _order_for_payment(conn, order_id)
        try:
            outcome = _check_payment(conn, row, order_id, received)
        except DomainError as exc:
            refusal = exc
            _record_payment(conn, row, order_id, received, payer, "payment.refused", exc.code)
        else:
            if outcome == "new":
                _activate(engine, conn, row, received, payer, now)
            action = "payment.settled" if outcome == "new" else "payment.repeated"
            _record_payment(conn, row, order_id, received, payer, action, None)
    if refusal is not None:
        raise refusal
    return TenantBilling(engine, row["tenant_id"]).order(row["id"])


def refuse_payment(
    engine: Engine, refusal: DomainError, gateway: str, details: dict[str, Any], payer: Payer
) -> None:
    """Audit a notification refused before it could name an order (bad signature, stale
    timestamp, wrong merchant): nothing in it is believed, so it goes to the platform's log."""
    with atomic(engine) as conn:
        audit(
            conn,
            _platform_tenant_id(conn),
            payer.actor,
            "payment.refused",
            target=f"gateway:{gateway}",
            # The message may quote what the sender wrote: bounded, as nothing of it is believed.
            details={"code": refusal.code, "message": refusal.message[:300], **details},
            ip=payer.ip,
            actor_user_id=payer.user_id,
        )


def orders_by_status(
    engine: Engine, status: str, limit: int, before_id: int | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Orders of every tenant in one state, newest first, with their tenant (platform staff)."""
    where = [orders.c.status == status]
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        if before_id is not None:
            where.append(orders.c.id < before_id)
        rows = (
            conn.execute(
                sa.select(
                    orders,
                    tenants.c.code.label("tenant"),
                    tenants.c.name.label("tenant_name"),
                )
                .join(tenants, tenants.c.id == orders.c.tenant_id)
                .where(*where)
                .order_by(orders.c.id.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return total, [
        _order_json(r) | {"tenant": r["tenant"], "tenant_name": r["tenant_name"]} for r in rows
    ]


def _order_for_payment(conn: sa.Connection, order_id: int | None) -> Any:
    if order_id is None:
        return None
    query = sa.select(orders).where(orders.c.id == order_id)
    if conn.dialect.name == "postgresql":  # two notifications of one payment: one settles
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def _check_payment(conn: sa.Connection, row: Any, order_id: int | None, received: Received) -> str:
    """What the payment is to the order: 'new', 'repeated' (the same payment again), or the
    refusal."""
    if row is None:
        named = f"order {order_id}" if order_id is not None else "order of that reference"
        raise NotFound(f"no {named} to pay", code="unknown_order")
    if row["status"] == "paid":
        if row["payment_reference"] == received.reference:
            return "repeated"
        raise BillingError("already_paid", "this order is already paid")
    if row["status"] == "cancelled":
        raise BillingError("order_cancelled", "a cancelled order cannot be paid")
    used = conn.execute(
        sa.select(orders.c.id).where(orders.c.payment_reference == received.reference)
    ).scalar()
    if used is not None:
        raise BillingError("reference_used", "this payment already paid another order")
    total = Decimal(row["total_yuan"])
    if received.amount_yuan != total:
        raise Conflict(
            f"received {received.amount_yuan} yuan; the order's total is {total} yuan",
            code="amount_mismatch",
            details={"received_yuan": str(received.amount_yuan), "total_yuan": str(total)},
        )
    return "new"


def _activate(
    engine: Engine, conn: sa.Connection, row: Any, received: Received, payer: Payer, now: datetime
) -> None:
    billing = TenantBilling(engine, row["tenant_id"])
    conn.execute(
        orders.update()
        .where(orders.c.id == row["id"])
        .values(status="paid", paid_at=now, payment_reference=received.reference)
    )
    if row["billing_mode"] != catalog.QUOTED:
        _add_package(conn, billing, row, now)
    else:  # custom work is delivered, not a package: both sides hear it is paid
        _custom_work_paid(conn, row, now)
    audit(
        conn,
        row["tenant_id"],
        payer.actor,
        "order.paid",
        target=f"order:{row['id']}",
        details={
            "payment_reference": received.reference,
            "amount_yuan": str(received.amount_yuan),
            "total_yuan": str(row["total_yuan"]),
        },
        ip=payer.ip,
        actor_user_id=payer.user_id,
    )


def _add_package(conn: sa.Connection, billing: TenantBilling, row: Any, now: datetime) -> None:
    """The package a paid order buys; overage the tenant ran up meanwhile is drawn from it."""
    starts, expires = billing._period(conn, row, now)
    conn.execute(
        packages.insert().values(
            tenant_id=row["tenant_id"],
            order_id=row["id"],
            edition=row["edition"],
            add_on=row["add_on"],
            billing_mode=row["billing_mode"],
            unit=row["unit"],
            total=row["units"],
            consumed=ZERO,
            starts_at=starts,
            expires_at=expires,
            activated_at=now,
        )
    )
    billing._absorb_overage(conn, row["unit"], now)


def _custom_work_paid(conn: sa.Connection, row: Any, now: datetime) -> None:
    title = f"定制服务订单已付款 Custom-service order paid #{row['id']}"
    body = f"订单 order {row['id']}: ¥{Decimal(row['total_yuan']):.2f}"
    for reader in dict.fromkeys([row["tenant_id"], _platform_tenant_id(conn)]):
        if reader is not None:
            messaging.queue_message(
                conn,
                reader,
                messaging.CUSTOM_SERVICE,
                title,
                body,
                [str(row["id"])],
                now,
                reference=f"order:{row['id']}",
            )


def _record_payment(
    conn: sa.Connection,
    row: Any,
    order_id: int | None,
    received: Received,
    payer: Payer,
    action: str,
    code: str | None,
) -> None:
    """The platform's record of every payment reported, and the tenant's of a refused one."""
    details = {
        "gateway": received.gateway,
        "transaction_id": received.transaction_id,
        "amount_yuan": str(received.amount_yuan),
        **received.details,
    }
    if code is not None:
        details["code"] = code
    if row is not None:
        details |= {"tenant_of_order": row["tenant_id"], "total_yuan": str(row["total_yuan"])}
    target = f"order:{order_id}" if order_id is not None else f"gateway:{received.gateway}"
    entries = [_platform_tenant_id(conn)]
    if code is not None and row is not None:
        entries.append(row["tenant_id"])
    for tenant_id in entries:
        audit(
            conn,
            tenant_id,
            payer.actor,
            action,
            target=target,
            details=details,
            ip=payer.ip,
            actor_user_id=payer.user_id,
        )


def _platform_tenant_id(conn: sa.Connection) -> int | None:
    """The platform's own tenant (its staff's home); None before any staff account exists."""
    return conn.execute(sa.select(tenants.c.id).where(tenants.c.code == "platform")).scalar()


def _settled_ledger_id(conn: sa.Connection, tenant_id: int, cutoff: datetime) -> int:
    """The highest ledger id of the tenant received before ``cutoff``: rows newer than that
    may belong to transactions still committing, so they wait for the next run. Walks back
    from the newest rows, which are almost always the only ones after the cutoff."""
    recent = conn.execute(
        sa.select(ledger.c.id, ledger.c.received_at)
        .where(ledger.c.tenant_id == tenant_id)
        .order_by(ledger.c.id.desc())
        .limit(2000)
    ).all()
    for row_id, received_at in recent:
        if received_at < cutoff:
            return int(row_id)
    if len(recent) < 2000:
        return 0
    return int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(ledger.c.id), 0)).where(
                ledger.c.tenant_id == tenant_id, ledger.c.received_at < cutoff
            )
        ).scalar_one()
    )


def entitlement_of(rows: list[Any], now: datetime) -> Entitlement:
    """What a tenant may do, from its packages (oldest first)."""
    edition_rows = [r for r in rows if r["edition"] is not None]
    if not edition_rows:
        return Entitlement(None, frozenset(), frozenset(), False)
    edition = edition_rows[-1]["edition"]
    features = catalog.EDITION_FEATURES[edition]
    add_ons = frozenset(
        r["add_on"]
        for r in rows
        if r["add_on"]
        and r["starts_at"] <= now
        and (r["expires_at"] is None or now < r["expires_at"])
    )
    if "value_added_services" not in features:
        add_ons = frozenset()  # 溯源版 has no value-added services
    quotas: dict[str, list[Decimal]] = {}
    inbound = False
    period_end: datetime | None = None
    for row in edition_rows:
        remaining = Decimal(row["total"]) - Decimal(row["consumed"])
        if row["unit"] == "year":
            if row["starts_at"] <= now < row["expires_at"]:
                inbound = True
            if row["expires_at"] > now:
                period_end = max(period_end, row["expires_at"]) if period_end else row["expires_at"]
            continue
        entry = quotas.setdefault(row["unit"], [ZERO, ZERO])
        if remaining > 0:
            inbound = True
            entry[0] += remaining
            entry[1] += Decimal(row["total"])
    return Entitlement(
        edition=edition,
        features=features,
        add_ons=add_ons,
        inbound_allowed=inbound,
        quotas=[
            Quota(unit, remaining, total) for unit, (remaining, total) in sorted(quotas.items())
        ],
        period_ends_at=period_end,
        has_bought=True,
    )


def _partial_day(usage: DayUsage, start_ms: int, now_ms: int) -> DayUsage:
    """Today so far: the live integral counts the level until midnight; cut it at now."""
    full_day = 86_400_000
    remaining_ms = max(0, start_ms + full_day - now_ms)
    return DayUsage(
        usage.day,
        usage.gram_ms - usage.closing_g * remaining_ms,
        usage.opening_g,
        usage.closing_g,
        usage.pieces_in,
        usage.pieces_out,
    )


def _ms(moment: datetime) -> int:
    from cloud_api.billing.metering import epoch_ms

    return epoch_ms(moment)


def _order_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "edition": row["edition"],
        "add_on": row["add_on"],
        "billing_mode": row["billing_mode"],
        "unit": row["unit"],
        "area": row["area"],
        "business_area_m2": float(row["business_area_m2"]) if row["business_area_m2"] else None,
        "quantity": row["quantity"],
        "unit_price_yuan": _num(Decimal(row["unit_price_yuan"])),
        "total_yuan": _num(Decimal(row["total_yuan"])),
        "units": _num(Decimal(row["units"])),
        "status": row["status"],
        "payment_reference": row["payment_reference"],
        "created_at": row["created_at"].isoformat(),
        "paid_at": row["paid_at"].isoformat() if row["paid_at"] else None,
        "cancelled_at": row["cancelled_at"].isoformat() if row["cancelled_at"] else None,
    }


def _package_json(row: Any, now: datetime) -> dict[str, Any]:
    total, consumed = Decimal(row["total"]), Decimal(row["consumed"])
    if row["unit"] == "year":
        status = (
            "active"
            if row["starts_at"] <= now < row["expires_at"]
            else "scheduled"
            if now < row["starts_at"]
            else "expired"
        )
        remaining: Decimal = max(
            ZERO, Decimal((row["expires_at"] - max(now, row["starts_at"])).total_seconds()) / 86400
        )
    else:
        remaining = total - consumed
        status = "active" if remaining > 0 else "exhausted"
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "edition": row["edition"],
        "add_on": row["add_on"],
        "billing_mode": row["billing_mode"],
        "unit": row["unit"],
        "total": _num(total),
        "consumed": _num(consumed),
        "remaining": _num(round(remaining, 6)),
        "remaining_unit": "day" if row["unit"] == "year" else row["unit"],
        "status": status,
        "starts_at": row["starts_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        "activated_at": row["activated_at"].isoformat(),
    }


def _draw(conn: sa.Connection, posting_id: int, package_id: int, amount: Decimal) -> None:
    """Draw ``amount`` of a posting on a package (negative gives back), with the record of it."""
    conn.execute(
        packages.update()
        .where(packages.c.id == package_id)
        .values(consumed=packages.c.consumed + amount)
    )
    conn.execute(
        package_allocations.insert().values(
            posting_id=posting_id, package_id=package_id, amount=amount
        )
    )


__all__ = [
    "UTC",
    "BillingError",
    "Entitlement",
    "Payer",
    "Received",
    "TenantBilling",
    "entitlement_of",
    "orders_by_status",
    "refuse_payment",
    "settle",
]
