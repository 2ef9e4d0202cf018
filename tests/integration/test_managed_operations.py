"""代运营 managed operations on real databases (SQLite and PostgreSQL): platform staff ask a
tenant for a scoped, time-boxed grant or are offered one, act in the tenant through it while
the tenant holds the add-on, and lose it the moment it is revoked. What staff record reaches
the warehouse's edge box like any cloud work: an ASN line sent down by the ingest service,
read back with the box's own decoder."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cangyun import wire
from cangyun.timeutil import format_ts, utcnow
from cloud_api.accounts import store as accounts
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.schema import audit_log, packages, staff_grants, tenants
from tests.support.cloud import STRONG

OPS = "ops@cangyun.cn"
WAREHOUSE, DEVICE = "sh-01", "sh-edge-1"
SSCC = "069123456789012340"
ASN = {"direction": "in", "sscc": SSCC, "gtin": "6901234567892", "qty": 40,
       "customer": "acme", "reference": "ASN-7"}  # fmt: skip
SHIPMENT = {"direction": "out", "gtin": "6901234567892", "qty": 5, "reference": "SO-1"}


class Tenant:
    """A tenant with a warehouse and its edge box, and a platform staff member."""

    def __init__(
        self, cloud, name: str, email: str, add_ons=("managed_operations",), device=DEVICE
    ) -> None:
        self.cloud = cloud
        owner = cloud.register(name, email)
        self.token, self.code = owner["token"], owner["tenant"]
        cloud.buy(self.token, "professional", add_ons=add_ons)
        for path, body in [
            ("/api/v1/warehouses", {"code": WAREHOUSE, "name": "嘉定一号库"}),
            ("/api/v1/devices", {"warehouse": WAREHOUSE, "code": device, "kind": "edge"}),
        ]:
            made = cloud.call("POST", path, self.token, json=body)
            assert made.status_code == 201, made.get_json()
        accounts.ensure_platform_staff(cloud.engine, OPS, STRONG)
        self.staff = cloud.login(OPS).get_json()["token"]

    def call(self, method, path, token=None, body=None):
        return self.cloud.call(method, "/api/v1" + path, token or self.token, json=body)

    def ask(self, scopes, hours=4):
        body = {"tenant": self.code, "scopes": scopes, "hours": hours, "reason": "月末盘点"}
        return self.call("POST", "/platform/grant-requests", self.staff, body)

    def offer(self, scopes, token=None):
        body = {"staff_email": OPS, "hours": 2, "reason": "代运营", "scopes": scopes}
        return self.call("POST", "/staff-grants", token, body)

    def act(self, grant_id):
        return self.call("POST", "/staff/act", self.staff, {"grant_id": grant_id})

    def acting(self, grant_id) -> str:
        opened = self.act(grant_id)
        assert opened.status_code == 200, opened.get_json()
        return opened.get_json()["token"]

    def expect(self, token, line=ASN):
        return self.call("POST", f"/warehouses/{WAREHOUSE}/expected", token, line)


@pytest.fixture
def tenant(cloud):
    return Tenant(cloud, "冷链仓储", "owner@cold.test")


def refused(response, status, code):
    body = response.get_json()
    assert (response.status_code, body["error"]["code"]) == (status, code), body
    return body["error"]


def audit_of(engine, tenant_code):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log)
            .join(tenants, tenants.c.id == audit_log.c.tenant_id)
            .where(tenants.c.code == tenant_code)
            .order_by(audit_log.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def lines_sent_on_hello(engine, tenant_code):
    """What the warehouse's box is sent when it says hello, decoded as the box decodes it."""
    address = wire.DeviceAddress(tenant_code, WAREHOUSE, DEVICE)
    hello = wire.encode_hello(wire.Hello(DEVICE, "e" * 32, 0, 0, format_ts(utcnow())))
    sent = []
    for reply in IngestService(engine).handle(address.topic(wire.UP_HELLO), hello):
        if reply.topic == address.topic(wire.DOWN_CMD):
            command = wire.decode_command(reply.payload)
            if command.kind == wire.CMD_EXPECTED:
                update = wire.decode_expected(command, warehouse=WAREHOUSE)
                sent += [(line.id, line.line.sscc, line.line.direction) for line in update.lines]
    return sent


def test_a_requested_grant_approved_records_a_receipt_that_reaches_the_box_until_revoked(tenant):
    cloud = tenant.cloud
    asked = tenant.ask(["inbound", "read"])
    assert asked.status_code == 201, asked.get_json()
    grant = asked.get_json()
    assert (grant["status"], grant["scopes"], grant["requested"], grant["expires_at"]) == (
        "requested",
        ["inbound", "read"],
        True,
        None,
    )
    refused(tenant.act(grant["id"]), 403, "no_grant")  # not until the tenant says yes

    listed = tenant.call("GET", "/staff-grants").get_json()["items"]
    assert [(g["id"], g["status"], g["staff"]) for g in listed] == [(grant["id"], "requested", OPS)]
    approved = tenant.call("POST", f"/staff-grants/{grant['id']}/approve")
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "active" and approved.get_json()["expires_at"]
    mine = tenant.call("GET", "/platform/grants", tenant.staff).get_json()["items"]
    assert [(g["tenant"], g["status"]) for g in mine] == [(tenant.code, "active")]

    acting = tenant.acting(grant["id"])
    me = tenant.call("GET", "/auth/me", acting).get_json()
    assert "expected:write" in me["permissions"] and "users:read" not in me["permissions"]
    created = tenant.expect(acting)
    assert created.status_code == 201, created.get_json()
    line = created.get_json()
    assert (line["id"], SSCC, "in") in lines_sent_on_hello(cloud.engine, tenant.code)
    assert tenant.call("GET", "/stock", acting).status_code == 200  # read: statistics

    # The tenant sees who did it and on whose authority; both sides saw the grant's story.
    done = [e for e in audit_of(cloud.engine, tenant.code) if e["action"] == "expected.created"]
    assert [(e["actor"], e["via_grant_id"]) for e in done] == [(OPS, grant["id"])]
    staff_rows = [e for e in audit_of(cloud.engine, tenant.code) if e["actor"] == OPS]
    assert {e["action"] for e in staff_rows} >= {"staff_grant.requested", "login.succeeded"}
    assert all(
        e["via_grant_id"] == grant["id"]
        for e in staff_rows
        if e["action"] != "staff_grant.requested"
    )
    via_api = tenant.call("GET", "/audit?action=expected").get_json()["items"]
    assert [(e["actor"], e["via_grant"]) for e in via_api] == [(OPS, grant["id"])]
    platform = {(e["action"], e["target"]) for e in audit_of(cloud.engine, "platform")}
    assert {
        ("staff_grant.requested", f"grant:{grant['id']}"),
        ("staff_grant.approved", f"grant:{grant['id']}"),
    } <= platform

    assert tenant.call("DELETE", f"/staff-grants/{grant['id']}").status_code == 204
    again = tenant.expect(acting, {**ASN, "sscc": "069123456789012357"})
    assert again.status_code == 401, again.get_json()
    refused(tenant.act(grant["id"]), 403, "no_grant")
    assert tenant.call("GET", "/staff-grants").get_json()["items"][0]["status"] == "revoked"
    assert ("staff_grant.revoked", f"grant:{grant['id']}") in {
        (e["action"], e["target"]) for e in audit_of(cloud.engine, "platform")
    }


def test_a_staff_session_does_only_what_its_grant_scopes_allow(tenant):
    inbound = tenant.offer(["inbound"])
    assert inbound.status_code == 201, inbound.get_json()
    assert inbound.get_json()["status"] == "active" and not inbound.get_json()["requested"]
    acting = tenant.acting(inbound.get_json()["id"])
    assert tenant.expect(acting).status_code == 201
    error = refused(tenant.expect(acting, SHIPMENT), 403, "outside_grant_scope")
    assert error["details"] == {"permission": "outbound", "scopes": ["inbound"]}
    refused(tenant.expect(acting, [SHIPMENT, {**ASN, "sscc": "069123456789012357"}]), 403,
            "outside_grant_scope")  # fmt: skip
    refused(tenant.call("GET", "/stock", acting), 403, "outside_grant_scope")
    refused(tenant.call("GET", "/movements", acting), 403, "outside_grant_scope")
    refused(tenant.call("GET", "/usage", acting), 403, "outside_grant_scope")
    refused(tenant.call("GET", "/users", acting), 403, "forbidden")  # never accounts
    refused(tenant.call("POST", "/staff/act", acting, {"grant_id": 1}), 403, "outside_grant_scope")

    # An admin offers too; a read grant sees and never records.
    clerk = {"email": "admin@cold.test", "password": STRONG, "role": "admin"}
    assert tenant.call("POST", "/users", body=clerk).status_code == 201
    admin = tenant.cloud.login("admin@cold.test").get_json()["token"]
    read = tenant.offer(["read"], token=admin)
    assert read.status_code == 201, read.get_json()
    reader = tenant.acting(read.get_json()["id"])
    for path in ("/stock", "/movements", "/usage", f"/warehouses/{WAREHOUSE}/expected"):
        assert tenant.call("GET", path, reader).status_code == 200, path
    refused(tenant.expect(reader, {**ASN, "sscc": "069123456789012364"}), 403,
            "outside_grant_scope")  # fmt: skip

    # An offer without scopes only lets staff look.
    body = {"staff_email": OPS, "hours": 1}
    assert tenant.call("POST", "/staff-grants", body=body).get_json()["scopes"] == ["read"]
    # An operator neither offers nor answers.
    clerk = {"email": "op@cold.test", "password": STRONG, "role": "operator"}
    assert tenant.call("POST", "/users", body=clerk).status_code == 201
    operator = tenant.cloud.login("op@cold.test").get_json()["token"]
    refused(tenant.offer(["read"], token=operator), 403, "forbidden")


def test_without_the_add_on_no_grant_starts_and_an_active_one_stops(cloud):
    tenant = Tenant(cloud, "无代运营", "owner@plain.test", add_ons=(), device="plain-1")
    refused(tenant.offer(["read"]), 403, "add_on_not_purchased")
    asked = tenant.ask(["read", "inbound"]).get_json()  # asking is free; starting is not
    refused(tenant.call("POST", f"/staff-grants/{asked['id']}/approve"), 403,
            "add_on_not_purchased")  # fmt: skip
    refused(tenant.act(asked["id"]), 403, "no_grant")

    cloud.buy(tenant.token, "professional", add_ons=("managed_operations",))
    approved = tenant.call("POST", f"/staff-grants/{asked['id']}/approve")
    assert approved.status_code == 200, approved.get_json()
    acting = tenant.acting(asked["id"])
    assert tenant.call("GET", "/stock", acting).status_code == 200

    with cloud.engine.begin() as conn:
        tenant_id = conn.execute(sa.select(tenants.c.id).where(tenants.c.code == tenant.code))
        conn.execute(
            packages.update()
            .where(
                packages.c.tenant_id == tenant_id.scalar_one(),
                packages.c.add_on == "managed_operations",
            )
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error = refused(tenant.call("GET", "/stock", acting), 403, "add_on_required")
    assert error["details"] == {"add_on": "managed_operations"}
    refused(tenant.expect(acting), 403, "add_on_required")
    assert tenant.call("POST", "/auth/logout", acting).status_code == 204  # leaving still works
    assert tenant.call("GET", "/stock", tenant.token).status_code == 200  # the tenant goes on


def test_a_declined_request_cannot_be_used_or_answered_again(tenant):
    asked = tenant.ask(["outbound"]).get_json()
    declined = tenant.call("POST", f"/staff-grants/{asked['id']}/decline")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    refused(tenant.act(asked["id"]), 403, "no_grant")
    for answer in ("approve", "decline"):
        refused(tenant.call("POST", f"/staff-grants/{asked['id']}/{answer}"), 409,
                "grant_not_requested")  # fmt: skip
    refused(tenant.call("DELETE", f"/staff-grants/{asked['id']}"), 404, "not_found")
    actions = [e["action"] for e in audit_of(tenant.cloud.engine, "platform")]
    assert "staff_grant.declined" in actions


def test_staff_withdraw_a_request_and_an_unanswered_one_lapses(tenant):
    asked = tenant.ask(["read"]).get_json()
    other = tenant.cloud.staff_token()  # another staff member cannot take it back
    refused(
        tenant.call("DELETE", f"/platform/grant-requests/{asked['id']}", other), 404, "not_found"
    )
    gone = tenant.call("DELETE", f"/platform/grant-requests/{asked['id']}", tenant.staff)
    assert gone.status_code == 204
    refused(tenant.call("POST", f"/staff-grants/{asked['id']}/approve"), 409, "grant_not_requested")
    mine = tenant.call("GET", "/platform/grants", tenant.staff).get_json()["items"]
    assert [g["status"] for g in mine if g["id"] == asked["id"]] == ["withdrawn"]
    refused(
        tenant.call("DELETE", f"/platform/grant-requests/{asked['id']}", tenant.staff),
        404,
        "not_found",
    )

    stale = tenant.ask(["read"]).get_json()
    with tenant.cloud.engine.begin() as conn:  # asked eight days ago, never answered
        conn.execute(
            staff_grants.update()
            .where(staff_grants.c.id == stale["id"])
            .values(created_at=utcnow() - timedelta(days=8))
        )
    listed = tenant.call("GET", "/staff-grants").get_json()["items"]
    assert [g["status"] for g in listed if g["id"] == stale["id"]] == ["lapsed"]
    refused(tenant.call("POST", f"/staff-grants/{stale['id']}/approve"), 409, "grant_not_requested")
    refused(tenant.act(stale["id"]), 403, "no_grant")
    actions = [e["action"] for e in audit_of(tenant.cloud.engine, tenant.code)]
    assert "staff_grant.withdrawn" in actions


def test_staff_see_no_tenant_without_a_grant(cloud, tenant):
    refused(tenant.call("GET", "/stock", tenant.staff), 403, "no_grant")
    refused(tenant.call("GET", f"/warehouses/{WAREHOUSE}/expected", tenant.staff), 403, "no_grant")
    assert tenant.call("GET", "/auth/me", tenant.staff).get_json()["permissions"] == []
    # Another tenant answers only its own requests; a grant opens only its own tenant.
    other = Tenant(cloud, "另一家", "owner@other.test", device="other-1")
    asked = tenant.ask(["read"]).get_json()
    refused(other.call("POST", f"/staff-grants/{asked['id']}/approve"), 404, "not_found")
    refused(other.call("DELETE", f"/staff-grants/{asked['id']}"), 404, "not_found")
    tenant.call("POST", f"/staff-grants/{asked['id']}/approve")
    acting = tenant.acting(asked["id"])
    assert tenant.call("GET", "/auth/me", acting).get_json()["tenant"] == tenant.code
    refused(other.call("POST", "/staff-grants", body={"staff_email": "owner@cold.test"}), 404,
            "not_found")  # fmt: skip
    # Tenants' own users cannot ask for grants, nor can a staff session; nor can anyone ask
    # the platform itself.
    body = {"tenant": other.code, "scopes": ["read"]}
    for token in (tenant.token, acting):
        refused(tenant.call("POST", "/platform/grant-requests", token, body), 403, "forbidden")
    body = {"tenant": "platform", "scopes": ["read"]}
    refused(tenant.call("POST", "/platform/grant-requests", tenant.staff, body), 404, "not_found")
