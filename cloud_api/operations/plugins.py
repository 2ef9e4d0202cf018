"""行业插件 (industry plugins, professional edition): sector-specific rule packs a tenant
switches on. The catalogue is data; enabling one is recorded and audited."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cangyun.errors import NotFound
from cangyun.timeutil import utcnow
from cloud_api.platform.db import atomic
from cloud_api.platform.schema import tenant_plugins
from cloud_api.platform.tenancy import Caller, TenantStore, audit_caller

CATALOGUE: dict[str, tuple[str, str]] = {
    "cold_chain": ("冷链温控", "Cold chain: temperature zones and excursion alerts"),
    "pharma_gsp": ("医药 GSP", "Pharma GSP: drug traceability codes, expiry-first picking"),
    "food_traceability": ("食品追溯", "Food traceability: lot genealogy, recall lists"),
    "bonded_warehouse": ("保税仓", "Bonded warehouse: customs declarations per movement"),
}


class TenantPlugins(TenantStore):
    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            enabled = {
                row.plugin: row.enabled_at
                for row in conn.execute(
                    sa.select(tenant_plugins).where(tenant_plugins.c.tenant_id == self.tenant_id)
                )
            }
        return [
            {
                "code": code,
                "name": zh,
                "description": en,
                "enabled": code in enabled,
                "enabled_at": enabled[code].isoformat() if code in enabled else None,
            }
            for code, (zh, en) in CATALOGUE.items()
        ]

    def enable(self, code: str, caller: Caller, ip: str) -> dict[str, Any]:
        self._known(code)
        with atomic(self.engine) as conn:
            exists = conn.execute(
                sa.select(tenant_plugins.c.plugin).where(
                    tenant_plugins.c.tenant_id == self.tenant_id, tenant_plugins.c.plugin == code
                )
            ).first()
            if exists is None:
                conn.execute(
                    tenant_plugins.insert().values(
                        tenant_id=self.tenant_id, plugin=code, settings={}, enabled_at=utcnow()
                    )
                )
                audit_caller(conn, self.tenant_id, caller, "plugin.enabled", target=code, ip=ip)
        return next(p for p in self.list() if p["code"] == code)

    def disable(self, code: str, caller: Caller, ip: str) -> dict[str, Any]:
        self._known(code)
        with atomic(self.engine) as conn:
            result = conn.execute(
                tenant_plugins.delete().where(
                    tenant_plugins.c.tenant_id == self.tenant_id, tenant_plugins.c.plugin == code
                )
            )
            if result.rowcount:
                audit_caller(conn, self.tenant_id, caller, "plugin.disabled", target=code, ip=ip)
        return next(p for p in self.list() if p["code"] == code)

    @staticmethod
    def _known(code: str) -> None:
        if code not in CATALOGUE:
            raise NotFound(f"no plugin {code!r}")
