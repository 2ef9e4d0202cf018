"""Tenant isolation, walked from the OpenAPI document rather than from memory.

Tenant A (甲) owns one of everything. Tenant B (乙), a paying owner with every permission,
then calls every operation the API publishes with A's identifiers in the path and, where a
body names another object, A's codes in the body. Every such call must answer 404 (the
object does not exist for B, and B cannot learn otherwise); no response may carry one of A's
markers; and A's rows in every tenant-scoped table must be byte-for-byte what they were.

A new endpoint without an entry in EXAMPLES fails this test, so isolation is decided when
the endpoint is written, not discovered later. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from cangyun import wire
from cangyun.timeutil import format_ts, utcnow
from cloud_api.accounts import store as accounts
from cloud_api.billing import payments
from cloud_api.ledger.ingest import IngestService
from cloud_api.messaging import store as messaging
from cloud_api.platform.schema import metadata, tenants
from cloud_api.settings import PaymentSection
from cloud_api.sites import registry
from tests.support.cloud import STRONG, make_cloud
from tests.support.wechatpay import MCHID, FakeWechatPay

A_MARK = "甲方机密AMARK"
B_MARK = "乙方可见BMARK"
EPOCH = "c" * 32

# Operations that are not about a tenant's objects: sign-up, sign-in, public documents.
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/login/verify"),
    ("post", "/api/v1/auth/password-reset"),
    ("post", "/api/v1/auth/password-reset/confirm"),
    ("get", "/api/v1/catalog"),
    ("get", "/api/v1/openapi.json"),
}
# Operations that would end B's own session or change B's password: walked last, or not at all.
SESSION = {("post", "/api/v1/auth/logout"), ("post", "/api/v1/auth/password")}

# A body B could legitimately send for each operation; `{a.x}` is filled with A's objects.
EXAMPLES: dict[tuple[str, str], Any] = {
    ("put", "/api/v1/security-policy"): {"min_length": 12},
    ("post", "/api/v1/users"): {
        "email": "clerk@b.test",
        "password": STRONG,
        "role": "operator",
        "name": B_MARK,
    },
    ("patch", "/api/v1/users/{user_id}"): {"role": "viewer", "name": "hijacked"},
    ("post", "/api/v1/api-keys"): {"name": B_MARK, "scopes": ["movements:read"]},
    ("post", "/api/v1/staff-grants"): {
        "staff_email": "ops@cangyun.cn",
        "hours": 1,
        "scopes": ["read"],
    },
    # Staff ask a tenant for a grant; B, a tenant's owner, may not ask for A's (403, below).
    ("post", "/api/v1/platform/grant-requests"): {"tenant": "{a.tenant_code}", "scopes": ["read"]},
    ("post", "/api/v1/staff/act"): {"grant_id": "{a.grant_id}"},
    ("post", "/api/v1/customers"): {"code": "B-CUST", "name": B_MARK},
    ("post", "/api/v1/customers/import"): "code,name\nB-CSV,乙方导入\n",
    ("patch", "/api/v1/customers/{code}"): {"name": "hijacked"},
    ("post", "/api/v1/customers/{code}/notes"): {"text": "hijacked"},
    ("post", "/api/v1/warehouses"): {"code": "b-wh2", "name": B_MARK},
    ("patch", "/api/v1/warehouses/{code}"): {"name": "hijacked"},
    ("post", "/api/v1/warehouses/{code}/zones"): {"code": "z9", "name": "hijacked"},
    ("post", "/api/v1/warehouses/{code}/locations"): {"code": "Z-99"},
    ("post", "/api/v1/warehouses/{code}/locations/bulk"): {"aisles": 1, "racks": 1, "levels": 1},
    ("post", "/api/v1/warehouses/{code}/expected"): {
        "direction": "in",
        "sscc": "069123456789012340",
        "qty": 1,
        "reference": B_MARK,
    },
    # The body names A's warehouse: B must not be able to put a device into it.
    ("post", "/api/v1/devices"): {"warehouse": "{a.warehouse}", "code": "b-sneak", "kind": "edge"},
    ("patch", "/api/v1/devices/{code}"): {"name": "hijacked"},
    ("post", "/api/v1/webhooks"): {"url": "http://127.0.0.1:9/b", "events": ["movements.created"]},
    ("post", "/api/v1/orders"): {"edition": "basic", "billing_mode": "flow", "quantity": 1},
    # A tenant never pays: confirming is platform staff's, and B is not (403, below).
    ("post", "/api/v1/platform/orders/{order_id}/confirm"): {
        "amount_yuan": "150000.00",
        "bank_reference": "B-PAYS-FOR-A",
    },
    # Public, and B's bearer means nothing to it: an unsigned notification naming A's order
    # is refused before a word of it is believed (401 bad_signature, below).
    ("post", "/api/v1/payments/wechatpay/notify"): {
        "id": "EV-B",
        "event_type": "TRANSACTION.SUCCESS",
        "resource_type": "encrypt-resource",
        "resource": {
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": "",
            "nonce": "",
            "out_trade_no": "{a.order_reference}",
        },
    },
    # The body names A's warehouse: B must not be able to hang a task on it.
    ("post", "/api/v1/tasks"): {"title": "sneak", "kind": "receive", "warehouse": "{a.warehouse}"},
    ("patch", "/api/v1/tasks/{task_id}"): {"title": "hijacked", "status": "done"},
    ("put", "/api/v1/subscriptions"): {"renewal_reminder": ["site"]},
    # The body names A's warehouse: B must not learn it exists (404, as for devices).
    ("post", "/api/v1/custom-services"): {
        "title": B_MARK,
        "description": B_MARK,
        "warehouses": ["{a.warehouse}"],
        "contact_name": "乙",
        "contact_email": "b@b.test",
    },
    ("post", "/api/v1/custom-services/{request_id}/messages"): {"text": "hijacked"},
    # Quoting and declining are staff's, and B is not (403, below).
    ("post", "/api/v1/platform/custom-services/{request_id}/quote"): {
        "price_yuan": "1.00",
        "scope": "hijacked",
        "delivery_working_days": 5,
    },
    ("post", "/api/v1/platform/custom-services/{request_id}/decline"): {"reason": "hijacked"},
    ("post", "/api/v1/platform/custom-services/{request_id}/messages"): {"text": "hijacked"},
}
# Operations whose body names A's object: refused exactly as if the object did not exist
# (a field naming nothing is 422; B is not platform staff, so staff/act stops at 403).
BODY_REFERENCES_A = {
    ("post", "/api/v1/staff/act"): 403,
    ("post", "/api/v1/devices"): 404,
    ("post", "/api/v1/tasks"): 422,
    ("post", "/api/v1/custom-services"): 404,
}
# Operations of the platform's own staff: B, a tenant's owner, is refused whatever it names.
STAFF_ONLY = {
    ("get", "/api/v1/platform/orders"): 403,
    ("post", "/api/v1/platform/orders/{order_id}/confirm"): 403,
    ("get", "/api/v1/platform/grants"): 403,
    ("post", "/api/v1/platform/grant-requests"): 403,
    ("delete", "/api/v1/platform/grant-requests/{grant_id}"): 403,
    ("get", "/api/v1/platform/audit"): 403,
    ("get", "/api/v1/platform/custom-services"): 403,
    ("get", "/api/v1/platform/custom-services/{request_id}"): 403,
    ("post", "/api/v1/platform/custom-services/{request_id}/quote"): 403,
    ("post", "/api/v1/platform/custom-services/{request_id}/decline"): 403,
    ("post", "/api/v1/platform/custom-services/{request_id}/messages"): 403,
}
# Operations a gateway calls, proving itself by signature: B's forgery is refused.
SIGNED = {("post", "/api/v1/payments/wechatpay/notify"): 401}
# Collections that must show B its own rows (so "no A marker" is not trivially true).
SHOWS_B = {
    "/api/v1/users",
    "/api/v1/api-keys",
    "/api/v1/customers",
    "/api/v1/customers/export.csv",
    "/api/v1/warehouses",
    "/api/v1/devices",
    "/api/v1/tasks",
    "/api/v1/custom-services",
    "/api/v1/messages",
    "/api/v1/movements",
    "/api/v1/stock",
}


class TenantA:
    """Identifiers of A's objects, by the path parameter or body field that names them."""

    def __init__(self) -> None:
        self.ids: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return self.ids[name]


def ingest(engine: Any, tenant: str, warehouse: str, device: str, sku: str, customer: str) -> None:
    item = wire.encode_item(
        1,
        f"{device}-1",
        "receive",
        format_ts(utcnow()),
        {"sku": sku, "qty": 3, "weight_kg": 2.5, "customer": customer},
    )
    replies = IngestService(engine).handle(
        wire.DeviceAddress(tenant, warehouse, device).topic(wire.UP_TX),
        wire.encode_batch(device, EPOCH, 1, [item], format_ts(utcnow())),
    )
    assert replies and not json.loads(replies[0].payload).get("rejected"), replies


def populate(cloud: Any, token: str, mark: str, prefix: str) -> dict[str, Any]:
    """One of everything, through the API as the tenant's owner would make it."""

    def ok(method: str, path: str, body: Any = None, status: int = 201) -> Any:
        response = cloud.call(method, "/api/v1" + path, token, json=body)
        assert response.status_code == status, (path, response.get_json())
        return response.get_json()

    cloud.buy(token, "professional", add_ons=("managed_operations",))
    ids: dict[str, Any] = {}
    ids["user_id"] = ok(
        "POST",
        "/users",
        {"email": f"clerk@{prefix}.test", "password": STRONG, "role": "operator", "name": mark},
    )["id"]
    ids["key_id"] = ok("POST", "/api-keys", {"name": mark, "scopes": ["movements:read"]})["id"]
    ids["grant_id"] = ok(
        "POST", "/staff-grants", {"staff_email": "ops@cangyun.cn", "hours": 2, "reason": mark}
    )["id"]
    ids["customer"] = ok("POST", "/customers", {"code": f"{prefix}-HD", "name": mark})["code"]
    ok("POST", f"/customers/{ids['customer']}/notes", {"text": mark})
    ids["warehouse"] = ok("POST", "/warehouses", {"code": f"{prefix}-wh", "name": mark})["code"]
    ok("POST", f"/warehouses/{ids['warehouse']}/zones", {"code": "z1", "name": mark})
    ids["location"] = ok(
        "POST",
        f"/warehouses/{ids['warehouse']}/locations",
        {"code": "A-01-01", "name": mark, "zone": "z1"},
    )["code"]
    ids["line_id"] = ok(
        "POST",
        f"/warehouses/{ids['warehouse']}/expected",
        {"direction": "in", "gtin": "06901234567892", "qty": 3, "reference": mark},
    )["id"]
    ids["device"] = ok(
        "POST",
        "/devices",
        {"warehouse": ids["warehouse"], "code": f"{prefix}-edge", "kind": "edge", "name": mark},
    )["code"]
    ids["webhook_id"] = ok(
        "POST",
        "/webhooks",
        {"url": f"http://127.0.0.1:9/{prefix}", "events": ["movements.created"]},
    )["id"]
    ids["order_id"] = ok(
        "POST", "/orders", {"edition": "professional", "billing_mode": "flow", "quantity": 1}
    )["id"]  # left unpaid
    ids["order_reference"] = payments.order_reference(ids["order_id"])
    ids["task_id"] = ok(
        "POST", "/tasks", {"title": mark, "kind": "receive", "warehouse": ids["warehouse"]}
    )["id"]
    ok("POST", "/plugins/cold_chain/enable", status=200)
    ids["request_id"] = ok(
        "POST",
        "/custom-services",
        {
            "title": mark,
            "description": mark,
            "warehouses": [ids["warehouse"]],
            "contact_name": mark,
            "contact_email": f"boss@{prefix}.test",
        },
    )["id"]
    tenant_code = ok("GET", "/auth/me", status=200)["tenant"]
    tenant_id = registry.tenant_by_code(cloud.engine, tenant_code)["id"]
    with cloud.engine.begin() as conn:
        messaging.queue_message(conn, tenant_id, "renewal_reminder", mark, mark, [mark], utcnow())
    ids["message_id"] = ok("GET", "/messages", status=200)["items"][0]["id"]
    ingest(cloud.engine, tenant_code, ids["warehouse"], ids["device"], mark, ids["customer"])
    ids["tenant_id"] = tenant_id
    return ids


def snapshot(engine: Any, tenant_id: int) -> dict[str, list[str]]:
    """Every row of the tenant in every tenant-scoped table, rendered exactly."""
    shot = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "tenant_id" in table.c:
                where = table.c.tenant_id == tenant_id
            elif table is tenants:
                where = tenants.c.id == tenant_id
            else:
                continue
            rows = conn.execute(sa.select(table).where(where)).mappings()
            shot[table.name] = sorted(
                json.dumps(dict(r), default=str, sort_keys=True) for r in rows
            )
    return shot


def fill(template: Any, a: TenantA) -> Any:
    if isinstance(template, str) and template.startswith("{a.") and template.endswith("}"):
        return a.ids[template[3:-1]]
    if isinstance(template, dict):
        return {k: fill(v, a) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, a) for v in template]
    return template


def concrete_path(path: str, a: TenantA) -> str:
    owner = {
        "/api/v1/customers/": a.customer,
        "/api/v1/warehouses/": a.warehouse,
        "/api/v1/devices/": a.device,
        "/api/v1/plugins/": "cold_chain",  # the catalogue's, not A's: enabling is per tenant
    }
    for prefix, code in owner.items():
        if path.startswith(prefix):
            path = path.replace("{code}", str(code))
    for name in (
        "user_id",
        "key_id",
        "grant_id",
        "webhook_id",
        "order_id",
        "task_id",
        "message_id",
        "location",
        "line_id",
        "request_id",
    ):
        path = path.replace("{" + name + "}", str(a.ids[name]))
    assert "{" not in path, f"no identifier of A for {path}"
    return path


@pytest.fixture
def two_tenants(database_url, tmp_path):
    gateway = FakeWechatPay()  # the online gateway on, so a forgery meets its signature check
    payment = PaymentSection(
        wechatpay_mchid=MCHID,
        wechatpay_apiv3_key=gateway.apiv3_key.decode(),
        wechatpay_public_key_file=str(gateway.write_public_key(tmp_path / "wechatpay.pem")),
    )
    cloud = make_cloud(tmp_path, database_url, payment=payment)
    accounts.ensure_platform_staff(cloud.engine, "ops@cangyun.cn", STRONG)
    a_owner = cloud.register("甲仓储", "owner@a.test")
    b_owner = cloud.register("乙仓储", "owner@b.test")
    a = TenantA()
    a.ids = populate(cloud, a_owner["token"], A_MARK, "a")
    populate(cloud, b_owner["token"], B_MARK, "b")
    a.ids["token"] = a_owner["token"]
    a.ids["tenant_code"] = a_owner["tenant"]
    yield cloud, a, b_owner["token"]
    cloud.engine.dispose()


def test_every_operation_refuses_another_tenants_objects(two_tenants):
    cloud, a, b_token = two_tenants
    before = snapshot(cloud.engine, a.tenant_id)
    spec = cloud.client.get("/api/v1/openapi.json").get_json()
    walked = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            key = (method, path)
            if key in PUBLIC or key in SESSION:
                continue
            if "requestBody" in operation:
                assert key in EXAMPLES, f"add an example body for {method.upper()} {path}"
            body = fill(EXAMPLES.get(key), a)
            url = concrete_path(path, a)
            kwargs: dict[str, Any] = (
                {"data": body.encode(), "content_type": "text/csv"}
                if isinstance(body, str)
                else {"json": body}
            )
            response = cloud.call(method.upper(), url, b_token, **kwargs)
            text = response.get_data(as_text=True)
            walked.append((method, path, response.status_code))
            assert response.status_code < 500, (method, url, text)
            assert A_MARK not in text, f"{method.upper()} {url} leaked A's data: {text[:300]}"
            names_a = "{" in path and not path.startswith("/api/v1/plugins/")
            expected = {**BODY_REFERENCES_A, **STAFF_ONLY, **SIGNED}
            if key in expected:
                assert response.status_code == expected[key], (method, url, text)
            elif names_a:
                assert response.status_code == 404, (method, url, response.status_code, text)
            elif method == "get" and path in SHOWS_B:
                assert B_MARK in text, f"{url} showed B nothing, so the check above proves little"
    assert len(walked) >= 60, walked
    assert snapshot(cloud.engine, a.tenant_id) == before


def test_b_sessions_end_without_touching_a(two_tenants):
    """The session operations skipped above, walked last: B's logout is B's alone."""
    cloud, a, b_token = two_tenants
    before = snapshot(cloud.engine, a.tenant_id)
    assert cloud.call("POST", "/api/v1/auth/logout", b_token).status_code == 204
    assert cloud.call("GET", "/api/v1/auth/me", b_token).status_code == 401
    assert snapshot(cloud.engine, a.tenant_id) == before
    assert cloud.call("GET", "/api/v1/auth/me", a.token).status_code == 200


def test_expected_lines_stay_with_their_tenant(two_tenants):
    """B names A's line under B's own warehouse: still nothing; B's list holds B's alone."""
    cloud, a, b_token = two_tenants
    before = snapshot(cloud.engine, a.tenant_id)
    path = f"/api/v1/warehouses/b-wh/expected/{a.line_id}"
    assert cloud.call("DELETE", path, b_token).status_code == 404
    listed = cloud.call("GET", "/api/v1/warehouses/b-wh/expected", b_token)
    text = listed.get_data(as_text=True)
    assert listed.status_code == 200 and B_MARK in text and A_MARK not in text
    assert snapshot(cloud.engine, a.tenant_id) == before
