"""Cloud HTTP API on real databases through the Flask test client."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cangyun import wire
from cangyun.timeutil import utcnow
from cloud_api import provisioning
from cloud_api.accounts import store as accounts
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.schema import metadata
from cloud_api.sites import registry

EPOCH = "e" * 32


@pytest.fixture
def two_tenants(cloud):
    """acme and bright, each with a warehouse, an edge box and five receipts filed."""
    settings, engine = cloud.settings, cloud.engine
    tokens = {}
    for tenant, warehouse, device in (("acme", "sh-01", "edge-a"), ("bright", "bj-01", "edge-b")):
        tokens[tenant] = provisioning.create_tenant(
            engine, tenant, tenant, admin_email=f"boss@{tenant}.test", admin_password="pw-1234567"
        ).token
        provisioning.create_warehouse(engine, tenant, warehouse, warehouse)
        provisioning.create_device(
            settings, engine, tenant=tenant, warehouse=warehouse, code=device
        )
    service = IngestService(engine)
    for tenant, warehouse, device, sku in (
        ("acme", "sh-01", "edge-a", "A"),
        ("bright", "bj-01", "edge-b", "B"),
    ):
        items = [
            wire.encode_item(
                s,
                f"{device}-{s}",
                "receive",
                f"2026-11-{10 + s:02d}T01:00:00+00:00",
                {
                    "sku": sku,
                    "qty": s,
                    "weight_kg": s * 1.5,
                    "lot": f"L{s % 2}",
                    "customer": "owner-1",
                },
            )
            for s in range(1, 6)
        ]
        service.handle(
            wire.DeviceAddress(tenant, warehouse, device).topic(wire.UP_TX),
            wire.encode_batch(device, EPOCH, 1, items, "2026-11-26T01:00:00+00:00"),
        )
    with cloud.app.test_client() as client:
        yield client, tokens, engine


def get(client, token, path):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_movements_page_with_total_and_cursor(two_tenants):
    client, tokens, _ = two_tenants
    first = get(client, tokens["acme"], "/api/v1/movements?limit=2").get_json()
    assert first["total"] == 5
    assert [m["seq"] for m in first["items"]] == [1, 2]
    second = get(client, tokens["acme"], f"/api/v1/movements?limit=2&cursor={first['next']}")
    assert [m["seq"] for m in second.get_json()["items"]] == [3, 4]
    newest = get(client, tokens["acme"], "/api/v1/movements?order=desc&limit=1").get_json()
    assert newest["items"][0]["seq"] == 5


@pytest.mark.parametrize(
    ("query", "total"),
    [
        ("lot=L1", 3),
        ("device=edge-a", 5),
        ("warehouse=sh-01", 5),
        ("type=ship", 0),
        ("from=2026-11-13T00:00:00%2B00:00", 3),
        ("to=2026-11-13T00:00:00Z", 2),
        ("customer=owner-1", 5),
        ("sku=B", 0),
    ],
)
def test_movement_filters(two_tenants, query, total):
    client, tokens, _ = two_tenants
    assert get(client, tokens["acme"], f"/api/v1/movements?{query}").get_json()["total"] == total


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=abc",
        "type=teleport",
        "from=yesterday",
        "cursor=@@@",
        "order=up",
        "gtin=123",
    ],
)
def test_bad_parameters_are_400(two_tenants, query):
    client, tokens, _ = two_tenants
    response = get(client, tokens["acme"], f"/api/v1/movements?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in ("invalid_parameter", "invalid_cursor")


def test_stock_per_warehouse_owner_goods_lot(two_tenants):
    client, tokens, _ = two_tenants
    items = get(client, tokens["acme"], "/api/v1/stock").get_json()["items"]
    assert {(i["warehouse"], i["sku"], i["lot"], i["qty"], i["weight_kg"]) for i in items} == {
        ("sh-01", "A", "L1", 1 + 3 + 5, 13.5),
        ("sh-01", "A", "L0", 2 + 4, 9.0),
    }


def test_device_sync_view(two_tenants):
    client, tokens, _ = two_tenants
    view = get(client, tokens["acme"], "/api/v1/devices/edge-a/sync").get_json()
    assert (view["watermark"], view["filed"], view["lag"], view["epoch"]) == (5, 5, 0, EPOCH)
    assert get(client, tokens["acme"], "/api/v1/devices").get_json()["total"] == 1


def test_tenants_never_see_each_other(two_tenants):
    client, tokens, _ = two_tenants
    movements = get(client, tokens["bright"], "/api/v1/movements").get_json()
    assert {m["device"] for m in movements["items"]} == {"edge-b"}
    assert {
        s["sku"] for s in get(client, tokens["bright"], "/api/v1/stock").get_json()["items"]
    } == {"B"}
    assert get(client, tokens["bright"], "/api/v1/devices/edge-a/sync").status_code == 404
    assert get(client, tokens["bright"], "/api/v1/movements?device=edge-a").get_json()["total"] == 0


def test_tokens_missing_forged_expired_are_401(two_tenants):
    client, tokens, engine = two_tenants
    assert client.get("/api/v1/movements").status_code == 401
    assert get(client, "cy_forged", "/api/v1/movements").status_code == 401
    tenant_id = registry.tenant_by_code(engine, "acme")["id"]
    expired = accounts.create_api_key(
        engine,
        tenant_id,
        "viewer",
        name="expired",
        actor="test",
        expires_at=utcnow() - timedelta(seconds=1),
    )
    assert get(client, expired, "/api/v1/movements").status_code == 401


def test_login_gives_a_token_that_works(two_tenants):
    client, _, _ = two_tenants
    bad = client.post("/api/v1/auth/login", json={"email": "boss@acme.test", "password": "nope"})
    assert (bad.status_code, bad.get_json()["error"]["code"]) == (401, "invalid_credentials")
    good = client.post(
        "/api/v1/auth/login", json={"email": "BOSS@acme.test", "password": "pw-1234567"}
    )
    assert good.status_code == 200
    assert get(client, good.get_json()["token"], "/api/v1/movements").get_json()["total"] == 5
    assert (
        client.post("/api/v1/auth/login", data="x", content_type="application/json").status_code
        == 400
    )


def test_openapi_covers_every_api_route(two_tenants):
    client, _, _ = two_tenants
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    for rule in client.application.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, f"{method} {path} undocumented"


def test_migrations_create_exactly_the_schema_in_code(two_tenants):
    _, _, engine = two_tenants
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    from pathlib import Path

    from alembic.script import ScriptDirectory

    import cloud_api

    head = ScriptDirectory(str(Path(cloud_api.__file__).parent / "migrations")).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
