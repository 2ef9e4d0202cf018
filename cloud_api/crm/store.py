"""CRM (客户关系管理): cargo owners (货主), their notes and timeline; all their SQL.

``TenantCustomers`` is built with one tenant id and filters every query by it, as
``TenantAccounts`` does. A customer is never removed: deleting sets ``deleted_at`` and the
code stays taken, because ledger movements carry it as ``customer`` and must keep meaning
the same cargo owner. Every change writes its audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cangyun.errors import AlreadyExists, Invalid, NotFound
from cangyun.movement import grams_to_kg
from cangyun.timeutil import utcnow
from cloud_api.crm.records import RATE_NAMES, ParsedCsv, RowError, money
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import customer_notes, customers, devices, ledger, warehouses
from cloud_api.platform.tenancy import Caller, TenantStore, audit

IMPORT_BATCH = 1000  # rows per INSERT/UPDATE round trip during an import
EXPORT_CHUNK = 1000  # customers read per query while exporting
LOOKUP_CHUNK = 1000  # codes per IN (...) while matching an import against the table
MOVEMENT, NOTE = 0, 1  # timeline tie-break at the same instant: notes above movements
ROW_ERRORS_SHOWN = 50  # invalid rows listed in a refused import's details


@dataclass(frozen=True)
class Actor:
    """Who changes a customer, as the audit log records it."""

    name: str
    ip: str = ""
    user_id: int | None = None
    grant_id: int | None = None

    @classmethod
    def of(cls, caller: Caller, ip: str) -> Actor:
        return cls(caller.actor, ip, caller.user_id, caller.grant_id)


@dataclass(frozen=True)
class TimelineKey:
    """Position in a timeline, newest first: (time, kind, id) descending."""

    at: datetime
    kind: int
    id: int


@dataclass(frozen=True)
class ImportOutcome:
    created: int
    updated: int


class ImportRejected(Invalid):
    """An import with invalid rows; nothing was written. ``errors`` holds every row's
    problem; the details list the first ``ROW_ERRORS_SHOWN``."""

    code = "invalid_rows"

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(
            f"{len(errors)} rows are invalid; nothing was imported",
            field="file",
            details={
                "error_count": len(errors),
                "rows": [e.to_json() for e in errors[:ROW_ERRORS_SHOWN]],
            },
        )
        self.errors = errors


class TenantCustomers(TenantStore):
    # reads

    def search(
        self, q: str, *, after: str | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], str | None]:
        """Live customers by code; ``q`` matches code, name and contact name/phone/email."""
        conditions = self._live()
        if q:
            conditions.append(_matches(self.engine.dialect.name, q))
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(customers).where(*conditions)
            ).scalar_one()
            if after is not None:
                conditions.append(customers.c.code > after)
            rows = (
                conn.execute(
                    sa.select(customers)
                    .where(*conditions)
                    .order_by(customers.c.code)
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return total, [_customer_json(r) for r in rows], rows[-1]["code"] if more else None

    def get(self, code: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return _customer_json(self._row(conn, code))

    def export(self) -> Iterator[dict[str, Any]]:
        """Every live customer by code, read in chunks so a large tenant streams."""
        after = None
        while True:
            conditions = self._live()
            if after is not None:
                conditions.append(customers.c.code > after)
            with self.engine.connect() as conn:
                rows = (
                    conn.execute(
                        sa.select(customers)
                        .where(*conditions)
                        .order_by(customers.c.code)
                        .limit(EXPORT_CHUNK)
                    )
                    .mappings()
                    .all()
                )
            for row in rows:
                yield _customer_json(row)
            if len(rows) < EXPORT_CHUNK:
                return
            after = rows[-1]["code"]

    def notes(
        self, code: str, *, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        with self.engine.connect() as conn:
            customer_id = self._row(conn, code)["id"]
            conditions = [
                customer_notes.c.tenant_id == self.tenant_id,
                customer_notes.c.customer_id == customer_id,
            ]
            total = conn.execute(
                sa.select(sa.func.count()).select_from(customer_notes).where(*conditions)
            ).scalar_one()
            if before_id is not None:
                conditions.append(customer_notes.c.id < before_id)
            rows = (
                conn.execute(
                    sa.select(customer_notes)
                    .where(*conditions)
                    .order_by(customer_notes.c.id.desc())
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return total, [_note_json(r) for r in rows], rows[-1]["id"] if more else None

    def timeline(
        self, code: str, *, after: TimelineKey | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], TimelineKey | None]:
        """The customer's ledger movements and notes merged, newest first.

        Each source is read by keyset from the cursor, ``limit + 1`` rows at most, so a
        page costs two indexed-range queries however long the history is.
        """
        moved = [ledger.c.tenant_id == self.tenant_id, ledger.c.customer == code]
        with self.engine.connect() as conn:
            customer_id = self._row(conn, code)["id"]
            noted = [
                customer_notes.c.tenant_id == self.tenant_id,
                customer_notes.c.customer_id == customer_id,
            ]
            total = (
                conn.execute(
                    sa.select(sa.func.count()).select_from(ledger).where(*moved)
                ).scalar_one()
                + conn.execute(
                    sa.select(sa.func.count()).select_from(customer_notes).where(*noted)
                ).scalar_one()
            )
            if after is not None:
                moved.append(_before(ledger.c.occurred_at, ledger.c.id, MOVEMENT, after))
                noted.append(_before(customer_notes.c.created_at, customer_notes.c.id, NOTE, after))
            movement_rows = (
                conn.execute(
                    sa.select(
                        ledger,
                        warehouses.c.code.label("warehouse"),
                        devices.c.code.label("device"),
                    )
                    .select_from(
                        ledger.join(warehouses, warehouses.c.id == ledger.c.warehouse_id).join(
                            devices, devices.c.id == ledger.c.device_id
                        )
                    )
                    .where(*moved)
                    .order_by(ledger.c.occurred_at.desc(), ledger.c.id.desc())
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
            note_rows = (
                conn.execute(
                    sa.select(customer_notes)
                    .where(*noted)
                    .order_by(customer_notes.c.created_at.desc(), customer_notes.c.id.desc())
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        entries = [
            (TimelineKey(r["occurred_at"], MOVEMENT, r["id"]), _timeline_movement(r))
            for r in movement_rows
        ] + [(TimelineKey(r["created_at"], NOTE, r["id"]), _timeline_note(r)) for r in note_rows]
        entries.sort(key=lambda e: (e[0].at, e[0].kind, e[0].id), reverse=True)
        page = entries[:limit]
        more = len(entries) > limit
        return total, [item for _, item in page], page[-1][0] if more and page else None

    # writes

    def create(self, values: dict[str, Any], by: Actor) -> dict[str, Any]:
        now = utcnow()
        code = values["code"]
        try:
            with atomic(self.engine) as conn:
                taken = conn.execute(
                    sa.select(customers.c.deleted_at).where(
                        customers.c.tenant_id == self.tenant_id, customers.c.code == code
                    )
                ).first()
                if taken is not None:
                    raise _code_taken(code, taken.deleted_at is not None)
                conn.execute(
                    customers.insert().values(
                        tenant_id=self.tenant_id, created_at=now, updated_at=now, **values
                    )
                )
                self._audit_customer(conn, by, "customer.created", code, _loggable(values))
                return _customer_json(self._row(conn, code))
        except sa.exc.IntegrityError as exc:  # a concurrent create won the race
            raise _code_taken(code, False) from exc

    def update(self, code: str, changes: dict[str, Any], by: Actor) -> dict[str, Any]:
        """Change the fields in ``changes``; a ``code`` in them must be the customer's own."""
        changes = dict(changes)
        if changes.pop("code", code) != code:
            raise Invalid(
                "a customer's code cannot be changed", code="immutable_field", field="code"
            )
        with atomic(self.engine) as conn:
            current = self._row(conn, code, lock=True)
            changed = {k: v for k, v in changes.items() if current[k] != v}
            if changed:
                conn.execute(
                    customers.update()
                    .where(customers.c.tenant_id == self.tenant_id, customers.c.id == current["id"])
                    .values(updated_at=utcnow(), **changed)
                )
                self._audit_customer(
                    conn,
                    by,
                    "customer.updated",
                    code,
                    {
                        "before": _loggable({k: current[k] for k in changed}),
                        "after": _loggable(changed),
                    },
                )
            return _customer_json(self._row(conn, code))

    def delete(self, code: str, by: Actor) -> None:
        with atomic(self.engine) as conn:
            result = conn.execute(
                customers.update()
                .where(*self._live(), customers.c.code == code)
                .values(deleted_at=utcnow())
            )
            if result.rowcount == 0:
                raise NotFound(f"no customer {code!r} in this tenant")
            self._audit_customer(conn, by, "customer.deleted", code, {})

    def add_note(self, code: str, text: str, by: Actor) -> dict[str, Any]:
        with atomic(self.engine) as conn:
            customer_id = self._row(conn, code)["id"]
            note_id = conn.execute(
                customer_notes.insert().values(
                    tenant_id=self.tenant_id,
                    customer_id=customer_id,
                    author=by.name[:254],
                    text=text,
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]
            self._audit_customer(conn, by, "customer.note_added", code, {"note": note_id})
            row = conn.execute(
                sa.select(customer_notes).where(customer_notes.c.id == note_id)
            ).mappings()
            return _note_json(row.one())

    def import_csv(
        self,
        parsed: ParsedCsv,
        by: Actor,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ImportOutcome:
        """Upsert every row by code in one transaction, or raise ``ImportRejected`` having
        written nothing. ``progress`` is told how many rows each written batch held."""
        errors = list(parsed.errors)
        now = utcnow()
        rate_columns = [r for r in RATE_NAMES if r in parsed.columns]
        try:
            with atomic(self.engine) as conn:
                existing = self._by_codes(conn, [c.code for c in parsed.customers])
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                for row in parsed.customers:
                    found = existing.get(row.code)
                    if found is None:
                        inserts.append(
                            {
                                "tenant_id": self.tenant_id,
                                "code": row.code,
                                "name": row.name,
                                "contacts": [row.contact] if row.contact else [],
                                "contracts": [],
                                **{r: Decimal(0) for r in RATE_NAMES},
                                **row.rates,
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    elif found["deleted_at"] is not None:
                        errors.append(RowError(row.row, "code", _taken(row.code, True)))
                    else:
                        contacts = list(found["contacts"] or [])
                        if row.contact:
                            contacts[:1] = [row.contact]  # the CSV carries the first contact
                        updates.append(
                            {
                                "b_id": found["id"],
                                "b_name": row.name,
                                "b_contacts": contacts,
                                "b_updated_at": now,
                                **{f"b_{r}": row.rates[r] for r in rate_columns},
                            }
                        )
                if errors:
                    raise ImportRejected(sorted(errors, key=lambda e: e.row))
                for batch in _batches(inserts):
                    conn.execute(customers.insert(), batch)
                    if progress:
                        progress(len(batch))
                statement = (
                    customers.update()
                    .where(
                        customers.c.tenant_id == self.tenant_id,
                        customers.c.id == sa.bindparam("b_id"),
                    )
                    .values(
                        {
                            column: sa.bindparam(f"b_{column}")
                            for column in ("name", "contacts", "updated_at", *rate_columns)
                        }
                    )
                )
                for batch in _batches(updates):
                    conn.execute(statement, batch)
                    if progress:
                        progress(len(batch))
                self._audit_customer(
                    conn,
                    by,
                    "customer.imported",
                    "customers",
                    {"created": len(inserts), "updated": len(updates)},
                )
        except sa.exc.IntegrityError as exc:  # a customer created meanwhile by someone else
            raise AlreadyExists(
                "a customer in the file was created meanwhile; retry", code="code_taken"
            ) from exc
        return ImportOutcome(len(inserts), len(updates))

    # helpers

    def _live(self) -> list[Any]:
        return [customers.c.tenant_id == self.tenant_id, customers.c.deleted_at.is_(None)]

    def _row(self, conn: sa.Connection, code: str, *, lock: bool = False) -> Any:
        query = sa.select(customers).where(*self._live(), customers.c.code == code)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no customer {code!r} in this tenant")
        return row

    def _by_codes(self, conn: sa.Connection, codes: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(codes), LOOKUP_CHUNK):
            rows = conn.execute(
                sa.select(
                    customers.c.id, customers.c.code, customers.c.contacts, customers.c.deleted_at
                ).where(
                    customers.c.tenant_id == self.tenant_id,
                    customers.c.code.in_(codes[start : start + LOOKUP_CHUNK]),
                )
            ).mappings()
            found.update((r["code"], r) for r in rows)
        return found

    def _audit_customer(
        self, conn: sa.Connection, by: Actor, action: str, code: str, details: dict[str, Any]
    ) -> None:
        audit(
            conn,
            self.tenant_id,
            by.name,
            action,
            target=f"customer:{code}",
            details=details,
            ip=by.ip,
            actor_user_id=by.user_id,
            via_grant_id=by.grant_id,
        )


def _matches(dialect: str, q: str) -> Any:
    """Case-insensitive substring search over code, name and each contact's name, phone and
    email. Contacts are read with the database's own JSON functions: the stored JSON text
    escapes Chinese as \\uXXXX, so a LIKE over the raw column would miss it."""
    needle = q.lower()

    def like(expr: Any) -> Any:
        return sa.func.lower(expr).contains(needle, autoescape=True)

    each = sa.func.json_array_elements if dialect == "postgresql" else sa.func.json_each
    contact = each(customers.c.contacts).table_valued(sa.column("value", sa.JSON)).alias("contact")
    fields = {key: contact.c.value[key].as_string() for key in ("name", "phone", "email")}
    in_contact = [like(f) for f in fields.values()]
    digits = "".join(ch for ch in q if ch not in " -+()")
    if digits.isdigit():
        # "138 0013" finds 13800138000 and "1380013" finds 138-0013-8000: digits only.
        compact = fields["phone"]
        for separator in (" ", "-", "+", "(", ")"):
            compact = sa.func.replace(compact, separator, "")
        in_contact.append(compact.contains(digits, autoescape=True))
    return sa.or_(
        like(customers.c.code),
        like(customers.c.name),
        sa.exists(sa.select(1).select_from(contact).where(sa.or_(*in_contact))),
    )


def _before(at: Any, row_id: Any, kind: int, key: TimelineKey) -> Any:
    """Rows of one source that come after ``key`` in (time, kind, id) descending order."""
    if kind < key.kind:
        return at <= key.at
    if kind > key.kind:
        return at < key.at
    return sa.or_(at < key.at, sa.and_(at == key.at, row_id < key.id))


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), IMPORT_BATCH):
        yield rows[start : start + IMPORT_BATCH]


def _code_taken(code: str, deleted: bool) -> AlreadyExists:
    return AlreadyExists(_taken(code, deleted), code="code_taken", field="code")


def _taken(code: str, deleted: bool) -> str:
    if deleted:
        return f"code {code} belonged to a deleted customer; codes are never reused"
    return f"a customer with code {code} already exists"


def _loggable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: money(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _customer_json(row: Any) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "contacts": row["contacts"] or [],
        "contracts": row["contracts"] or [],
        **{r: money(row[r]) for r in RATE_NAMES},
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def _note_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "author": row["author"],
        "text": row["text"],
        "created_at": _iso(row["created_at"]),
    }


def _timeline_note(row: Any) -> dict[str, Any]:
    return {"kind": "note", "at": _iso(row["created_at"]), "note": _note_json(row)}


def _timeline_movement(row: Any) -> dict[str, Any]:
    return {
        "kind": "movement",
        "at": _iso(row["occurred_at"]),
        "movement": {
            "id": row["id"],
            "movement_id": row["movement_id"],
            "type": row["type"],
            "warehouse": row["warehouse"],
            "device": row["device"],
            "gtin": row["gtin"] or None,
            "sku": row["sku"] or None,
            "lot": row["lot"] or None,
            "qty": row["qty"],
            "qty_delta": row["qty_delta"],
            "weight_kg": grams_to_kg(row["weight_g"]) if row["weight_g"] is not None else None,
            "location": row["location"],
            "to_location": row["to_location"],
            "operator": row["operator"],
            "occurred_at": _iso(row["occurred_at"]),
        },
    }
