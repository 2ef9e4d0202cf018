"""注册登录 and 安全策略 on real databases, with a real SMTP server for the emails."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from cangyun.timeutil import utcnow
from cloud_api.accounts import store as accounts
from cloud_api.integrations import webhooks
from cloud_api.platform.schema import api_tokens, users
from tests.support.cloud import STRONG, body_text, code_in, make_cloud


@pytest.fixture
def cloud(tmp_path, database_url, smtp):
    """A cloud like the shared one whose mail (password resets, login codes) goes to smtp."""
    cloud = make_cloud(tmp_path, database_url, smtp_port=smtp.port)
    yield cloud
    cloud.engine.dispose()


def audit_actions(cloud, token) -> list[str]:
    return [e["action"] for e in cloud.call("GET", "/api/v1/audit", token).get_json()["items"]]


def test_register_login_logout(cloud):
    created = cloud.register("华东冷链", "boss@east.cn")
    assert created["role"] == "owner" and created["tenant"].startswith("east-")
    me = cloud.call("GET", "/api/v1/auth/me", created["token"]).get_json()
    assert (me["role"], me["tenant"]) == ("owner", created["tenant"])
    token = cloud.login("BOSS@east.cn").get_json()["token"]
    assert cloud.call("POST", "/api/v1/auth/logout", token).status_code == 204
    assert cloud.call("GET", "/api/v1/auth/me", token).status_code == 401
    assert (
        cloud.call(
            "POST",
            "/api/v1/auth/register",
            json={"tenant_name": "x", "email": "boss@east.cn", "password": STRONG},
        ).status_code
        == 409
    )
    assert {"tenant.registered", "login.succeeded"} <= set(audit_actions(cloud, created["token"]))


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"tenant_name": "x", "email": "bad", "password": STRONG}, 422, "invalid_field", "email"),
        ({"tenant_name": "x", "email": "a@b.cn", "password": "short1"}, 422, "weak_password",
         "password"),
        ({"tenant_name": "x", "email": "a@b.cn"}, 422, "missing_field", "password"),
        ([], 400, "invalid_body", None),
    ],
)  # fmt: skip
def test_registration_refuses_bad_input(cloud, payload, status, code, field):
    response = cloud.call("POST", "/api/v1/auth/register", json=payload)
    error = response.get_json()["error"]
    assert (response.status_code, error["code"], error["details"].get("field")) == (
        status,
        code,
        field,
    )


def test_lockout_answers_429_with_retry_after_then_unlocks(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    cloud.call(
        "PUT",
        "/api/v1/security-policy",
        owner["token"],
        json={"lockout_threshold": 3, "lockout_minutes": 5},
    )
    for _ in range(2):
        assert cloud.login("owner@acme.cn", "wrong-password-1").status_code == 401
    locked = cloud.login("owner@acme.cn", "wrong-password-1")
    assert locked.status_code == 429
    assert 290 <= int(locked.headers["Retry-After"]) <= 300
    # Even the right password is refused while locked.
    assert cloud.login("owner@acme.cn").status_code == 429
    with cloud.engine.begin() as conn:  # the lock runs out
        conn.execute(users.update().values(locked_until=utcnow() - timedelta(seconds=1)))
    assert cloud.login("owner@acme.cn").status_code == 200
    assert audit_actions(cloud, owner["token"]).count("login.failed") == 3


def test_policy_is_enforced_on_password_change_and_ends_other_sessions(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    policy = cloud.call(
        "PUT",
        "/api/v1/security-policy",
        owner["token"],
        json={"min_length": 14, "require_upper": True, "require_symbol": True},
    )
    assert policy.status_code == 200 and policy.get_json()["min_length"] == 14
    other_session = cloud.login("owner@acme.cn").get_json()["token"]
    change = {"current_password": STRONG}
    weak = cloud.call(
        "POST",
        "/api/v1/auth/password",
        owner["token"],
        json=change | {"new_password": "longenough-but-plain"},
    )
    assert (weak.status_code, weak.get_json()["error"]["code"]) == (422, "weak_password")
    assert (
        cloud.call(
            "POST",
            "/api/v1/auth/password",
            owner["token"],
            json={"current_password": "nope", "new_password": "X" * 20},
        ).status_code
        == 403
    )
    ok = cloud.call(
        "POST",
        "/api/v1/auth/password",
        owner["token"],
        json=change | {"new_password": "Much-Stronger-2026!"},
    )
    assert ok.status_code == 204
    assert cloud.call("GET", "/api/v1/auth/me", other_session).status_code == 401
    token = cloud.login("owner@acme.cn", "Much-Stronger-2026!").get_json()["token"]
    assert "password.changed" in audit_actions(cloud, token)
    assert "security_policy.updated" in audit_actions(cloud, token)


def test_bad_policies_are_refused(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    for body, field in (
        ({"min_length": 3}, "min_length"),
        ({"colour": 1}, "colour"),
        ({"ip_allowlist": ["not-an-ip"]}, "ip_allowlist"),
        ({"two_step": "yes"}, "two_step"),
        ({"ip_allowlist": ["10.9.9.0/24"]}, "ip_allowlist"),
    ):
        response = cloud.call("PUT", "/api/v1/security-policy", owner["token"], json=body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["details"]["field"] == field


def test_rotation_expires_the_password_and_only_a_change_is_allowed(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    cloud.call("PUT", "/api/v1/security-policy", owner["token"], json={"rotation_days": 30})
    with cloud.engine.begin() as conn:
        conn.execute(users.update().values(password_changed_at=utcnow() - timedelta(days=31)))
    session = cloud.login("owner@acme.cn").get_json()
    assert session["password_expired"] is True
    blocked = cloud.call("GET", "/api/v1/users", session["token"])
    assert blocked.get_json()["error"]["code"] == "password_expired"
    assert (
        cloud.call(
            "POST",
            "/api/v1/auth/password",
            session["token"],
            json={"current_password": STRONG, "new_password": "Another-pass-2027"},
        ).status_code
        == 204
    )
    fresh = cloud.login("owner@acme.cn", "Another-pass-2027").get_json()
    assert fresh["password_expired"] is False
    assert cloud.call("GET", "/api/v1/users", fresh["token"]).status_code == 200


def test_expired_and_forged_tokens_are_rejected(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    assert cloud.call("GET", "/api/v1/auth/me", owner["token"] + "x").status_code == 401
    assert cloud.call("GET", "/api/v1/auth/me", "cy_" + "A" * 43).status_code == 401
    with cloud.engine.begin() as conn:
        conn.execute(api_tokens.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    response = cloud.call("GET", "/api/v1/auth/me", owner["token"])
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_password_reset_by_email(cloud, smtp):
    cloud.register("Acme", "owner@acme.cn")
    assert (
        cloud.call(
            "POST", "/api/v1/auth/password-reset", json={"email": "nobody@acme.cn"}
        ).status_code
        == 202
    )
    assert (
        cloud.call(
            "POST", "/api/v1/auth/password-reset", json={"email": "owner@acme.cn"}
        ).status_code
        == 202
    )
    mail = smtp.inbox.wait_for("owner@acme.cn")[0]
    reset_token = body_text(mail).split("\n\n")[1].strip()
    confirm = {"token": reset_token, "new_password": "Reset-pass-2026"}
    assert (
        cloud.call("POST", "/api/v1/auth/password-reset/confirm", json=confirm).status_code == 204
    )
    assert (
        cloud.call("POST", "/api/v1/auth/password-reset/confirm", json=confirm).status_code == 400
    )  # used once
    assert cloud.login("owner@acme.cn", "Reset-pass-2026").status_code == 200
    assert smtp.inbox.to("nobody@acme.cn") == []


def test_two_step_login_by_email_code(cloud, smtp):
    owner = cloud.register("Acme", "owner@acme.cn")
    cloud.call("PUT", "/api/v1/security-policy", owner["token"], json={"two_step": True})
    first = cloud.login("owner@acme.cn")
    assert first.status_code == 202
    code = code_in(body_text(smtp.inbox.wait_for("owner@acme.cn")[0]))
    wrong = "000000" if code != "000000" else "111111"
    assert (
        cloud.call(
            "POST", "/api/v1/auth/login/verify", json={"email": "owner@acme.cn", "code": wrong}
        ).status_code
        == 401
    )
    verified = cloud.call(
        "POST", "/api/v1/auth/login/verify", json={"email": "owner@acme.cn", "code": code}
    )
    assert verified.status_code == 200
    assert (
        cloud.call(
            "POST", "/api/v1/auth/login/verify", json={"email": "owner@acme.cn", "code": code}
        ).status_code
        == 401
    )


def test_ip_allow_list(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    allowed = cloud.call(
        "PUT", "/api/v1/security-policy", owner["token"], json={"ip_allowlist": ["127.0.0.1/32"]}
    )
    assert allowed.status_code == 200
    assert cloud.call("GET", "/api/v1/users", owner["token"]).status_code == 200
    elsewhere = cloud.call(
        "GET", "/api/v1/users", owner["token"], environ_base={"REMOTE_ADDR": "203.0.113.9"}
    )
    assert (elsewhere.status_code, elsewhere.get_json()["error"]["code"]) == (403, "ip_not_allowed")


def test_roles_are_checked_on_every_endpoint(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    made = cloud.call(
        "POST",
        "/api/v1/users",
        owner["token"],
        json={"email": "viewer@acme.cn", "password": STRONG, "role": "viewer"},
    )
    assert made.status_code == 201
    viewer = cloud.login("viewer@acme.cn").get_json()["token"]
    assert cloud.call("GET", "/api/v1/movements", viewer).status_code == 200
    for method, path, body in (
        ("GET", "/api/v1/users", None),
        ("PUT", "/api/v1/security-policy", {"min_length": 12}),
        ("POST", "/api/v1/api-keys", {"name": "x", "scopes": ["stock:read"]}),
        ("GET", "/api/v1/audit", None),
    ):
        response = cloud.call(method, path, viewer, json=body)
        assert (response.status_code, response.get_json()["error"]["code"]) == (403, "forbidden")
    # The owner cannot be demoted; roles can only be assigned from the assignable set.
    owner_id = cloud.call("GET", "/api/v1/auth/me", owner["token"])
    assert owner_id.status_code == 200
    users_list = cloud.call("GET", "/api/v1/users", owner["token"]).get_json()["items"]
    owner_row = next(u for u in users_list if u["role"] == "owner")
    viewer_row = next(u for u in users_list if u["role"] == "viewer")
    assert (
        cloud.call(
            "PATCH", f"/api/v1/users/{owner_row['id']}", owner["token"], json={"role": "viewer"}
        ).status_code
        == 409
    )
    assert (
        cloud.call(
            "PATCH", f"/api/v1/users/{viewer_row['id']}", owner["token"], json={"role": "owner"}
        ).status_code
        == 422
    )
    disabled = cloud.call(
        "PATCH", f"/api/v1/users/{viewer_row['id']}", owner["token"], json={"active": False}
    )
    assert disabled.get_json()["active"] is False
    assert cloud.call("GET", "/api/v1/movements", viewer).status_code == 401


def test_api_key_scopes_and_expiry(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    cloud.buy(owner["token"], "standard")  # 二次开发管理 is in the standard edition
    created = cloud.call(
        "POST",
        "/api/v1/api-keys",
        owner["token"],
        json={"name": "BI export", "scopes": ["stock:read"], "expires_in_days": 30},
    )
    assert created.status_code == 201
    key = created.get_json()["key"]
    assert cloud.call("GET", "/api/v1/stock", key).status_code == 200
    denied = cloud.call("GET", "/api/v1/movements", key)
    assert (denied.status_code, denied.get_json()["error"]["code"]) == (403, "forbidden")
    assert (
        cloud.call(
            "POST",
            "/api/v1/api-keys",
            owner["token"],
            json={"name": "x", "scopes": ["users:write", "nonsense"]},
        ).status_code
        == 422
    )
    listed = cloud.call("GET", "/api/v1/api-keys", owner["token"]).get_json()["items"]
    assert listed[0]["prefix"] == key[:10] and "key" not in listed[0]
    assert (
        cloud.call("DELETE", f"/api/v1/api-keys/{listed[0]['id']}", owner["token"]).status_code
        == 204
    )
    assert cloud.call("GET", "/api/v1/stock", key).status_code == 401
    actions = audit_actions(cloud, owner["token"])
    assert {"api_key.created", "api_key.revoked"} <= set(actions)


def test_platform_staff_act_only_through_an_audited_grant(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    cloud.buy(owner["token"], "basic", add_ons=("managed_operations",))  # 代运营 add-on
    accounts.ensure_platform_staff(cloud.engine, "ops@cangyun.cn", STRONG)
    staff = cloud.login("ops@cangyun.cn").get_json()["token"]
    assert cloud.call("POST", "/api/v1/staff/act", staff, json={"grant_id": 1}).status_code == 403
    grant = cloud.call(
        "POST",
        "/api/v1/staff-grants",
        owner["token"],
        json={"staff_email": "ops@cangyun.cn", "hours": 2, "reason": "代运营入库"},
    )
    assert grant.status_code == 201
    acting = cloud.call(
        "POST", "/api/v1/staff/act", staff, json={"grant_id": grant.get_json()["id"]}
    ).get_json()["token"]
    assert cloud.call("GET", "/api/v1/movements", acting).status_code == 200
    assert cloud.call("GET", "/api/v1/users", acting).status_code == 403  # never accounts
    entries = cloud.call("GET", "/api/v1/audit", owner["token"]).get_json()["items"]
    staff_entries = [e for e in entries if e["actor"] == "ops@cangyun.cn"]
    assert staff_entries and all(e["via_grant"] == grant.get_json()["id"] for e in staff_entries)
    cloud.call("DELETE", f"/api/v1/staff-grants/{grant.get_json()['id']}", owner["token"])
    assert cloud.call("GET", "/api/v1/movements", acting).status_code == 401


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first delivery, 200 afterwards; keeps what it got."""

    received: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(500 if len(Receiver.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhooks_are_signed_and_retried(cloud, monkeypatch):
    from tests.integration.test_cloud_ingest import batch, item

    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tenant = cloud.register("Acme", "owner@acme.cn")
        cloud.buy(tenant["token"])
        url = f"http://127.0.0.1:{server.server_port}/hook"
        hook = cloud.call(
            "POST",
            "/api/v1/webhooks",
            tenant["token"],
            json={"url": url, "events": ["movements.created"]},
        ).get_json()
        from cangyun import wire
        from cloud_api.ledger.ingest import IngestService
        from cloud_api.provisioning import create_device, create_warehouse

        create_warehouse(cloud.engine, tenant["tenant"], "wh", "wh")
        create_device(
            cloud.settings, cloud.engine, tenant=tenant["tenant"], warehouse="wh", code="hook-edge"
        )
        IngestService(cloud.engine).handle(
            wire.DeviceAddress(tenant["tenant"], "wh", "hook-edge").topic(wire.UP_TX),
            batch([item(1), item(2)], device="hook-edge"),
        )
        monkeypatch.setattr(webhooks, "retry_delay", lambda attempts: 0.0)
        assert webhooks.deliver_due(cloud.engine, allow_private=True) == 1  # first attempt: 500
        assert webhooks.deliver_due(cloud.engine, allow_private=True) == 1  # retried: 200
        assert webhooks.deliver_due(cloud.engine, allow_private=True) == 0
    finally:
        server.shutdown()
    assert len(Receiver.received) == 2
    headers, body = Receiver.received[-1]
    timestamp, signature = (
        part.split("=", 1)[1] for part in headers["X-Cangyun-Signature"].split(",")
    )
    expected = hmac.new(
        hook["secret"].encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(signature, expected)
    payload = json.loads(body)
    assert payload["event"] == "movements.created" and len(payload["items"]) == 2
    deliveries = cloud.call(
        "GET", f"/api/v1/webhooks/{hook['id']}/deliveries", tenant["token"]
    ).get_json()["items"]
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 2)]
    with cloud.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM webhook_deliveries")).scalar() == 1
