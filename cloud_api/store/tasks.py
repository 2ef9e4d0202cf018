"""任务管理: warehouse work orders (receive this ASN, count aisle C, ...), tenant-scoped."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cangyun.timeutil import TimestampError, parse_ts, utcnow
from cloud_api.schema import tasks, warehouses
from cloud_api.store.accounts import Caller, TenantStore, audit_caller
from cloud_api.store.registry import NotFound

KINDS = ("receive", "putaway", "pick", "ship", "count", "other")
STATUSES = ("open", "in_progress", "done", "cancelled")


class TaskError(ValueError):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class TenantTasks(TenantStore):
    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        conditions = [tasks.c.tenant_id == self.tenant_id]
        if status:
            conditions.append(tasks.c.status == status)
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(tasks, warehouses.c.code.label("warehouse"))
                    .outerjoin(warehouses, warehouses.c.id == tasks.c.warehouse_id)
                    .where(*conditions)
                    .order_by(tasks.c.id.desc())
                    .limit(500)
                )
                .mappings()
                .all()
            )
        return [_json(r) for r in rows]

    def create(self, data: Any, caller: Caller, ip: str) -> dict[str, Any]:
        values = self._values(data, creating=True)
        now = utcnow()
        with self.engine.begin() as conn:
            if "warehouse" in values:
                values["warehouse_id"] = self._warehouse_id(conn, values.pop("warehouse"))
            task_id = conn.execute(
                tasks.insert().values(
                    tenant_id=self.tenant_id,
                    status="open",
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            ).inserted_primary_key[0]
            audit_caller(
                conn,
                self.tenant_id,
                caller,
                "task.created",
                target=f"task:{task_id}",
                details={"title": values["title"]},
                ip=ip,
            )
        return self.get(task_id)

    def update(self, task_id: int, data: Any, caller: Caller, ip: str) -> dict[str, Any]:
        values = self._values(data, creating=False)
        with self.engine.begin() as conn:
            if "warehouse" in values:
                values["warehouse_id"] = self._warehouse_id(conn, values.pop("warehouse"))
            result = conn.execute(
                tasks.update()
                .where(tasks.c.tenant_id == self.tenant_id, tasks.c.id == task_id)
                .values(updated_at=utcnow(), **values)
            )
            if result.rowcount == 0:
                raise NotFound(f"no task {task_id}")
            audit_caller(
                conn,
                self.tenant_id,
                caller,
                "task.updated",
                target=f"task:{task_id}",
                details={k: str(v) for k, v in values.items()},
                ip=ip,
            )
        return self.get(task_id)

    def get(self, task_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(tasks, warehouses.c.code.label("warehouse"))
                    .outerjoin(warehouses, warehouses.c.id == tasks.c.warehouse_id)
                    .where(tasks.c.tenant_id == self.tenant_id, tasks.c.id == task_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no task {task_id}")
        return _json(row)

    def _warehouse_id(self, conn: sa.Connection, code: str) -> int:
        found = conn.execute(
            sa.select(warehouses.c.id).where(
                warehouses.c.tenant_id == self.tenant_id, warehouses.c.code == code
            )
        ).scalar()
        if found is None:
            raise TaskError("unknown_warehouse", f"no warehouse {code!r}", "warehouse")
        return found

    @staticmethod
    def _values(data: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise TaskError("invalid_body", "send a JSON object", "body")
        allowed = {"title", "kind", "assignee", "warehouse", "due_at"} | (
            set() if creating else {"status"}
        )
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise TaskError("unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
        values: dict[str, Any] = {}
        for name in ("title", "assignee", "warehouse"):
            if name in data:
                value = data[name]
                if not isinstance(value, str) or not value.strip() or len(value) > 200:
                    raise TaskError("invalid_field", f"{name} must be 1-200 characters", name)
                values[name] = value.strip()
        if "kind" in data:
            if data["kind"] not in KINDS:
                raise TaskError("invalid_field", f"kind must be one of {', '.join(KINDS)}", "kind")
            values["kind"] = data["kind"]
        if "status" in data:
            if data["status"] not in STATUSES:
                raise TaskError(
                    "invalid_field", f"status must be one of {', '.join(STATUSES)}", "status"
                )
            values["status"] = data["status"]
        if "due_at" in data:
            try:
                values["due_at"] = parse_ts(data["due_at"])
            except TimestampError as exc:
                raise TaskError("invalid_field", str(exc), "due_at") from exc
        if creating:
            for name in ("title", "kind"):
                if name not in values:
                    raise TaskError("missing_field", f"{name} is required", name)
        return values


def _json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "assignee": row["assignee"],
        "warehouse": row["warehouse"],
        "status": row["status"],
        "due_at": row["due_at"].isoformat() if row["due_at"] else None,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
