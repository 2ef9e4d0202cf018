"""任务管理: warehouse work orders (receive this ASN, count aisle C, ...), tenant-scoped."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cangyun.errors import Invalid, NotFound
from cangyun.timeutil import utcnow
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import tasks, warehouses
from cloud_api.platform.tenancy import Caller, TenantStore, audit_caller

KINDS = ("receive", "putaway", "pick", "ship", "count", "other")
STATUSES = ("open", "in_progress", "done", "cancelled")


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

    def create(self, values: dict[str, Any], caller: Caller, ip: str) -> dict[str, Any]:
        """``values``: title and kind, and optionally assignee, warehouse (code), due_at."""
        values = dict(values)
        now = utcnow()
        with atomic(self.engine) as conn:
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

    def update(
        self, task_id: int, values: dict[str, Any], caller: Caller, ip: str
    ) -> dict[str, Any]:
        """Change the given fields (those of ``create``, and status)."""
        values = dict(values)
        with atomic(self.engine) as conn:
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
            raise Invalid(f"no warehouse {code!r}", code="unknown_warehouse", field="warehouse")
        return found


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
