"""续费提醒 end to end on real databases: a real SMTP server (aiosmtpd), the real Tencent SMS
adapter against a local server that answers like the Tencent API, in-site messages and
消息订阅 through the HTTP API."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from cangyun.timeutil import utcnow
from cloud_api.accounts import store as accounts
from cloud_api.messaging import notify
from cloud_api.messaging import store as messaging
from cloud_api.messaging.reminders import PeriodCoverage, QuotaSnapshot
from cloud_api.platform.schema import messages, notifications
from cloud_api.settings import SmsSection
from tests.support.cloud import STRONG, SmtpServer, body_text, make_cloud

OWNER_PHONE = "+8613800000000"  # make_cloud registers owners with 13800000000
LATER = timedelta(hours=2)  # past any retry delay and any lease


# --- a local server that answers like the Tencent Cloud SMS API ------------------------------


class TencentSmsServer:
    """Records each SendSms call; answers "Ok", or the next scripted failure."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.script: list[str] = []  # send-status codes, or "HTTP 500"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((dict(self.headers), body))
                code = outer.script.pop(0) if outer.script else "Ok"
                if code == "HTTP 500":
                    self.send_response(500)
                    self.end_headers()
                    return
                answer = {
                    "Response": {
                        "SendStatusSet": [
                            {
                                "SerialNo": uuid.uuid4().hex,
                                "PhoneNumber": number,
                                "Fee": 1,
                                "SessionContext": body.get("SessionContext", ""),
                                "Code": code,
                                "Message": "send success" if code == "Ok" else "refused",
                                "IsoCode": "CN",
                            }
                            for number in body["PhoneNumberSet"]
                        ],
                        "RequestId": str(uuid.uuid4()),
                    }
                }
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def phones(self) -> list[str]:
        return [number for _, body in self.requests for number in body["PhoneNumberSet"]]

    def __enter__(self) -> TencentSmsServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def sms_settings(endpoint: str) -> SmsSection:
    return SmsSection(
        provider="tencent",
        secret_id="AKIDtest",
        secret_key="test-secret-key",
        sdk_app_id="1400000001",
        sign_name="仓运通",
        template_id="2000001",
        endpoint=endpoint,
        protocol="http",
    )


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # The Tencent SDK honours HTTP_PROXY; the test server is local.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tencent():
    with TencentSmsServer() as server:
        yield server


def open_cloud(tmp_path, database_url, smtp_port, sms_endpoint: str | None):
    cloud = make_cloud(tmp_path, database_url, smtp_port=smtp_port)
    if sms_endpoint:
        cloud.settings = replace(cloud.settings, sms=sms_settings(sms_endpoint))
    return cloud


@pytest.fixture
def cloud(tmp_path, database_url, smtp, tencent):
    cloud = open_cloud(tmp_path, database_url, smtp.port, tencent.endpoint)
    yield cloud
    cloud.engine.dispose()


def tenant_of(cloud, created: dict[str, Any]) -> int:
    user = accounts.user_by_id(cloud.engine, created["user_id"])
    assert user is not None
    return user["tenant_id"]


def tonne_days(remaining, total=1000, days_left=None) -> list[QuotaSnapshot]:
    return [QuotaSnapshot("tonne_day", Decimal(remaining), Decimal(total), days_left)]


def evaluate(cloud, tenant_id, snapshots, now, coverage=None) -> list[str]:
    fired = messaging.evaluate_and_queue(
        cloud.engine, tenant_id, snapshots, coverage, cloud.settings, now
    )
    return [r.key for r in fired]


def deliver(cloud, now) -> int:
    return notify.deliver_due(cloud.engine, cloud.settings, now=now)


def outbox(cloud, tenant_id) -> list[dict[str, Any]]:
    with cloud.engine.connect() as conn:
        rows = conn.execute(
            sa.select(notifications)
            .where(notifications.c.tenant_id == tenant_id)
            .order_by(notifications.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def add_user(cloud, token, email, role, phone="") -> int:
    response = cloud.call(
        "POST",
        "/api/v1/users",
        token,
        json={"email": email, "password": STRONG, "role": role, "phone": phone},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


# --- reminders through every channel --------------------------------------------------------


def test_a_crossing_is_sent_once_by_email_sms_and_in_site(cloud, smtp, tencent):
    owner = cloud.register("华东冷链", "boss@east.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    assert evaluate(cloud, tenant_id, tonne_days(500), now) == []
    assert evaluate(cloud, tenant_id, tonne_days(150, days_left=12), now) == ["quota:tonne_day:20"]
    # The scheduler runs every minute: the same crossing never fires again.
    for remaining in (149, 140, 120, 101):
        assert evaluate(cloud, tenant_id, tonne_days(remaining), now) == []

    assert deliver(cloud, now) == 2
    assert deliver(cloud, now) == 0
    (mail,) = smtp.inbox.wait_for("boss@east.cn")
    assert subject(mail) == "【仓运通】吨·天流量包剩余 15%，请及时续费"
    text = body_text(mail)
    assert "剩余 15%（150 吨·天，约 12 天）" in text and "不支持自动续费" in text
    assert "no auto-renewal" in text

    ((headers, body),) = tencent.requests
    assert headers["X-TC-Action"] == "SendSms" and headers["X-TC-Version"] == "2021-01-11"
    assert headers["Authorization"].startswith("TC3-HMAC-SHA256 Credential=AKIDtest/")
    assert body["PhoneNumberSet"] == [OWNER_PHONE]
    assert (body["SmsSdkAppId"], body["TemplateId"], body["SignName"]) == (
        "1400000001",
        "2000001",
        "仓运通",
    )
    assert body["TemplateParamSet"] == ["吨·天流量包", "剩余15%（约 12 天）"]

    inbox = cloud.call("GET", "/api/v1/messages", owner["token"]).get_json()
    assert inbox["total"] == 1 and inbox["next"] is None
    (item,) = inbox["items"]
    assert item["message_type"] == "renewal_reminder" and item["read"] is False
    assert "约 12 天" in item["body"]
    assert [(n["channel"], n["status"], n["attempts"]) for n in outbox(cloud, tenant_id)] == [
        ("sms", "sent", 1),
        ("email", "sent", 1),
    ]


def test_a_big_drop_sends_one_message_for_the_lowest_threshold(cloud, smtp):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    assert evaluate(cloud, tenant_id, tonne_days(600), now) == []
    assert evaluate(cloud, tenant_id, tonne_days(0, 0), now) == ["quota:tonne_day:0"]
    deliver(cloud, now)
    (mail,) = smtp.inbox.wait_for("owner@acme.cn")
    assert "已用尽" in subject(mail)
    assert "拒绝新的入库，出库不受影响" in body_text(mail)
    state = messaging.TenantMessaging(cloud.engine, tenant_id).reminder_state()
    assert {k: v["armed"] for k, v in state.items()} == {
        "quota:tonne_day:20": False,
        "quota:tonne_day:10": False,
        "quota:tonne_day:0": False,
    }
    assert state["quota:tonne_day:20"]["fired_at"] is None  # silenced, never sent


def test_a_renewal_re_arms_the_reminders(cloud, smtp):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    assert evaluate(cloud, tenant_id, tonne_days(150), now) == ["quota:tonne_day:20"]
    assert evaluate(cloud, tenant_id, tonne_days(140), now) == []
    # A new package: what is left now is 1140 of 2000.
    assert evaluate(cloud, tenant_id, tonne_days(1140, 2000), now) == []
    assert evaluate(cloud, tenant_id, tonne_days(390, 2000), now + LATER) == ["quota:tonne_day:20"]
    deliver(cloud, now + LATER)
    assert len(smtp.inbox.wait_for("owner@acme.cn", 2)) == 2
    assert cloud.call("GET", "/api/v1/messages", owner["token"]).get_json()["total"] == 2


def test_period_reminders_and_a_fresh_set_after_extension(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    ends = now + timedelta(days=20)
    coverage = PeriodCoverage(ends)
    assert evaluate(cloud, tenant_id, [], now, coverage) == [f"period:{messaging_date(ends)}:30"]
    assert evaluate(cloud, tenant_id, [], now + timedelta(hours=1), coverage) == []
    extended = PeriodCoverage(ends + timedelta(days=365))
    assert evaluate(cloud, tenant_id, [], now + timedelta(days=1), extended) == []
    assert evaluate(cloud, tenant_id, [], ends + timedelta(days=360), extended) == [
        f"period:{messaging_date(extended.ends_at)}:7"
    ]
    items = cloud.call("GET", "/api/v1/messages", owner["token"]).get_json()["items"]
    assert [i["message_type"] for i in items] == ["period_ending", "period_ending"]
    assert "到期" in items[0]["body"] and "不支持自动续费" in items[0]["body"]


def messaging_date(moment: datetime) -> str:
    from cloud_api.messaging.reminders import DEFAULT_TZ

    return moment.astimezone(DEFAULT_TZ).date().isoformat()


def test_racing_evaluations_fire_a_crossing_once(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    fired: list[str] = []
    start = threading.Barrier(4)

    def scheduler() -> None:
        start.wait()
        fired.extend(evaluate(cloud, tenant_id, tonne_days(50), now))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fired == ["quota:tonne_day:10"]
    assert len(outbox(cloud, tenant_id)) == 2


# --- retries and failures -------------------------------------------------------------------


def test_an_sms_failure_code_is_retried_and_then_sent(cloud, smtp, tencent):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    tencent.script = ["LimitExceeded.PhoneNumberOneHourLimit"]
    evaluate(cloud, tenant_id, tonne_days(50), now)
    assert deliver(cloud, now) == 2
    sms, email = outbox(cloud, tenant_id)
    assert (sms["status"], email["status"]) == ("pending", "sent")
    assert "LimitExceeded.PhoneNumberOneHourLimit" in sms["last_error"]
    assert sms["next_attempt_at"] > now
    assert deliver(cloud, now) == 0  # not due yet
    assert deliver(cloud, now + LATER) == 1
    sms, _ = outbox(cloud, tenant_id)
    assert (sms["status"], sms["attempts"], sms["last_error"]) == ("sent", 2, "")
    assert tencent.phones() == [OWNER_PHONE, OWNER_PHONE]
    assert len(smtp.inbox.wait_for("owner@acme.cn")) == 1


def test_an_smtp_server_that_is_down_does_not_stop_the_sms(tmp_path, database_url, tencent):
    waiting = SmtpServer()  # its port is chosen but nothing listens yet
    cloud = open_cloud(tmp_path, database_url, waiting.port, tencent.endpoint)
    try:
        owner = cloud.register("Acme", "owner@acme.cn")
        tenant_id = tenant_of(cloud, owner)
        now = utcnow()
        evaluate(cloud, tenant_id, tonne_days(50), now)
        deliver(cloud, now)
        sms, email = outbox(cloud, tenant_id)
        assert sms["status"] == "sent" and tencent.phones() == [OWNER_PHONE]
        assert email["status"] == "pending" and "SMTP" in email["last_error"]
        with waiting:
            assert deliver(cloud, now + LATER) == 1
            assert len(waiting.inbox.wait_for("owner@acme.cn")) == 1
        assert [n["status"] for n in outbox(cloud, tenant_id)] == ["sent", "sent"]
    finally:
        cloud.engine.dispose()


def test_an_sms_provider_that_is_down_does_not_stop_the_email(cloud, smtp, tencent):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    tencent.script = ["HTTP 500"]
    evaluate(cloud, tenant_id, tonne_days(50), now)
    deliver(cloud, now)
    assert len(smtp.inbox.wait_for("owner@acme.cn")) == 1
    sms, email = outbox(cloud, tenant_id)
    assert (sms["status"], email["status"]) == ("pending", "sent")
    assert "ServerNetworkError" in sms["last_error"]
    deliver(cloud, now + LATER)
    assert [n["status"] for n in outbox(cloud, tenant_id)] == ["sent", "sent"]


def test_without_an_sms_provider_the_sms_fails_at_once_and_email_goes(tmp_path, database_url, smtp):
    cloud = open_cloud(tmp_path, database_url, smtp.port, sms_endpoint=None)
    try:
        owner = cloud.register("Acme", "owner@acme.cn")
        tenant_id = tenant_of(cloud, owner)
        now = utcnow()
        evaluate(cloud, tenant_id, tonne_days(50), now)
        assert deliver(cloud, now) == 2
        sms, email = outbox(cloud, tenant_id)
        assert (sms["status"], sms["attempts"]) == ("failed", 1)
        assert "no SMS provider configured" in sms["last_error"]
        assert email["status"] == "sent"
        assert deliver(cloud, now + LATER) == 0  # nothing loops
    finally:
        cloud.engine.dispose()


def test_a_notification_gives_up_after_the_last_attempt(
    tmp_path, database_url, tencent, monkeypatch
):
    monkeypatch.setattr(messaging, "MAX_ATTEMPTS", 3)
    cloud = open_cloud(tmp_path, database_url, SmtpServer().port, tencent.endpoint)
    try:
        owner = cloud.register("Acme", "owner@acme.cn")
        tenant_id = tenant_of(cloud, owner)
        now = utcnow()
        evaluate(cloud, tenant_id, tonne_days(50), now)
        for attempt in range(5):
            deliver(cloud, now + attempt * LATER)
        _, email = outbox(cloud, tenant_id)
        assert (email["status"], email["attempts"]) == ("failed", 3)
    finally:
        cloud.engine.dispose()


def test_claims_are_leased(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    evaluate(cloud, tenant_id, tonne_days(50), now)
    first = messaging.claim_due(cloud.engine, now, limit=10)
    assert [n["channel"] for n in first] == ["sms", "email"]
    assert messaging.claim_due(cloud.engine, now, limit=10) == []  # another worker: nothing
    # The worker died: after the lease the rows are taken again, the attempt counted.
    again = messaging.claim_due(cloud.engine, now + messaging.LEASE + timedelta(seconds=1))
    assert [n["attempts"] for n in again] == [2, 2]


def test_a_recipient_without_a_phone_gets_no_sms_row(cloud, caplog):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    clerk = add_user(cloud, owner["token"], "clerk@acme.cn", "admin")
    cloud.call(
        "PUT",
        "/api/v1/subscriptions",
        owner["token"],
        json={"renewal_reminder": {"channels": ["sms", "email"], "recipients": [clerk]}},
    )
    with caplog.at_level(logging.WARNING, logger="cloud_api.messaging.store"):
        evaluate(cloud, tenant_id, tonne_days(50), utcnow())
    assert [(n["channel"], n["recipient"]) for n in outbox(cloud, tenant_id)] == [
        ("email", "clerk@acme.cn")
    ]
    assert f"user {clerk} has no phone number" in caplog.text


# --- in-site messages and subscriptions over HTTP ------------------------------------------


def test_in_site_messages_are_listed_filtered_and_marked_read(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    now = utcnow()
    for remaining in (150, 90, 0):
        evaluate(cloud, tenant_id, tonne_days(remaining), now)
    token = owner["token"]
    first = cloud.call("GET", "/api/v1/messages?limit=2", token).get_json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next"]
    assert [i["message_type"] for i in first["items"]] == ["quota_exhausted", "renewal_reminder"]
    rest = cloud.call("GET", f"/api/v1/messages?limit=2&cursor={first['next']}", token)
    assert [i["id"] for i in rest.get_json()["items"]] == [first["items"][1]["id"] - 1]
    assert rest.get_json()["next"] is None

    newest = first["items"][0]["id"]
    read = cloud.call("POST", f"/api/v1/messages/{newest}/read", token)
    assert read.status_code == 200 and read.get_json()["read"] is True
    again = cloud.call("POST", f"/api/v1/messages/{newest}/read", token).get_json()
    assert again["read_at"] == read.get_json()["read_at"]
    unread = cloud.call("GET", "/api/v1/messages?unread=true", token).get_json()
    assert unread["total"] == 2 and newest not in [i["id"] for i in unread["items"]]

    for path, status in (
        ("/api/v1/messages?unread=maybe", 400),
        ("/api/v1/messages?cursor=not-a-cursor", 400),
        ("/api/v1/messages?cursor=bnVsbA", 200),  # "null": the first page
        ("/api/v1/messages?limit=0", 400),
    ):
        assert cloud.call("GET", path, token).status_code == status, path
    huge = cloud.call("POST", f"/api/v1/messages/{2**70}/read", token)
    assert huge.status_code == 404 and huge.get_json()["error"]["code"] == "not_found"


def test_another_tenant_or_user_cannot_read_or_mark_your_messages(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    rival = cloud.register("Rival", "owner@rival.cn")
    evaluate(cloud, tenant_of(cloud, owner), tonne_days(50), utcnow())
    (mine,) = cloud.call("GET", "/api/v1/messages", owner["token"]).get_json()["items"]
    response = cloud.call("POST", f"/api/v1/messages/{mine['id']}/read", rival["token"])
    assert response.status_code == 404
    assert cloud.call("GET", "/api/v1/messages", rival["token"]).get_json()["total"] == 0
    # A colleague in the same tenant has an inbox of their own.
    add_user(cloud, owner["token"], "clerk@acme.cn", "operator")
    clerk = cloud.login("clerk@acme.cn").get_json()["token"]
    assert cloud.call("POST", f"/api/v1/messages/{mine['id']}/read", clerk).status_code == 404
    assert cloud.call("GET", "/api/v1/messages", clerk).get_json()["total"] == 0
    with cloud.engine.connect() as conn:
        assert (
            conn.execute(sa.select(messages.c.read_at).where(messages.c.id == mine["id"])).scalar()
            is None
        )
    # An API key (made in the store: buying the edition that allows keys is not the point).
    who = accounts.caller_for_token(cloud.engine, owner["token"])
    key, _ = accounts.TenantAccounts(cloud.engine, who.tenant_id).create_api_key(
        name="bot", role="owner", scopes=["users:read"], expires_at=None, caller=who, ip=""
    )
    assert cloud.call("GET", "/api/v1/messages", key).status_code == 403
    assert cloud.call("GET", "/api/v1/messages").status_code == 401


def test_subscriptions_choose_channels_and_recipients(cloud, smtp, tencent):
    owner = cloud.register("Acme", "owner@acme.cn")
    tenant_id = tenant_of(cloud, owner)
    token = owner["token"]
    defaults = cloud.call("GET", "/api/v1/subscriptions", token).get_json()
    assert set(defaults) == {
        "renewal_reminder",
        "quota_exhausted",
        "period_ending",
        "custom_service",
    }
    assert defaults.pop("custom_service")["channels"] == ["email", "in_site"]
    for entry in defaults.values():
        assert entry["default"] is True
        assert entry["channels"] == ["sms", "email", "in_site"]
        assert entry["recipients"] == [owner["user_id"]]

    admin = add_user(cloud, token, "admin@acme.cn", "admin", phone="139 0000 0001")
    changed = cloud.call(
        "PUT",
        "/api/v1/subscriptions",
        token,
        json={"renewal_reminder": {"channels": ["email"], "recipients": [admin]}},
    )
    assert changed.status_code == 200, changed.get_json()
    entry = changed.get_json()["renewal_reminder"]
    assert (entry["channels"], entry["recipients"], entry["default"]) == (
        ["email", "in_site"],
        [admin],
        False,
    )
    assert changed.get_json()["quota_exhausted"]["default"] is True

    now = utcnow()
    evaluate(cloud, tenant_id, tonne_days(150), now)  # renewal_reminder: admin, email only
    evaluate(cloud, tenant_id, tonne_days(0, 0), now)  # quota_exhausted: the owner, by default
    deliver(cloud, now)
    assert len(smtp.inbox.wait_for("admin@acme.cn")) == 1
    assert len(smtp.inbox.wait_for("owner@acme.cn")) == 1
    assert tencent.phones() == [OWNER_PHONE]  # only the exhausted message went by SMS
    admin_token = cloud.login("admin@acme.cn").get_json()["token"]
    admin_inbox = cloud.call("GET", "/api/v1/messages", admin_token).get_json()["items"]
    owner_inbox = cloud.call("GET", "/api/v1/messages", token).get_json()["items"]
    assert [m["message_type"] for m in admin_inbox] == ["renewal_reminder"]
    assert [m["message_type"] for m in owner_inbox] == ["quota_exhausted"]

    # Phone numbers are sent in E.164 whatever their spelling.
    cloud.call(
        "PUT",
        "/api/v1/subscriptions",
        admin_token,
        json={"period_ending": {"channels": ["sms"], "recipients": [admin]}},
    )
    evaluate(cloud, tenant_id, [], now, PeriodCoverage(now + timedelta(days=3)))
    deliver(cloud, now)
    assert tencent.phones()[-1] == "+8613900000001"
    actions = [e["action"] for e in cloud.call("GET", "/api/v1/audit", token).get_json()["items"]]
    assert actions.count("subscriptions.updated") == 2
    assert "reminder.fired" in actions


def test_subscription_changes_are_checked(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    rival = cloud.register("Rival", "owner@rival.cn")
    token = owner["token"]
    me = owner["user_id"]
    cases = [
        ({"renewal_reminder": {"channels": ["sms"], "recipients": [rival["user_id"]]}}, 422),
        ({"renewal_reminder": {"channels": ["sms"], "recipients": []}}, 422),
        ({"renewal_reminder": {"channels": ["sms"], "recipients": ["1"]}}, 422),
        ({"renewal_reminder": {"channels": ["sms"], "recipients": [True]}}, 422),
        ({"renewal_reminder": {"channels": ["sms"], "recipients": [2**70]}}, 422),
        ({"renewal_reminder": {"channels": ["fax"], "recipients": [me]}}, 422),
        ({"renewal_reminder": {"channels": [], "recipients": [me]}}, 422),
        ({"renewal_reminder": {"channels": "sms", "recipients": [me]}}, 422),
        ({"renewal_reminder": {"recipients": [me]}}, 422),
        ({"renewal_reminder": {"channels": ["sms"], "recipients": [me], "x": 1}}, 422),
        ({"renewal_reminder": None}, 422),
        ({"newsletter": {"channels": ["sms"], "recipients": [me]}}, 422),
        ({}, 400),
        ([], 400),
    ]
    for body, status in cases:
        response = cloud.call("PUT", "/api/v1/subscriptions", token, json=body)
        assert response.status_code == status, (body, response.get_json())
        assert response.get_json()["error"]["code"]
    bad_json = cloud.call(
        "PUT",
        "/api/v1/subscriptions",
        token,
        data="{nope",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    # Nothing of the refused changes was stored.
    current = cloud.call("GET", "/api/v1/subscriptions", token).get_json()
    assert all(entry["default"] for entry in current.values())

    add_user(cloud, token, "viewer@acme.cn", "viewer")
    add_user(cloud, token, "ops@acme.cn", "operator")
    viewer = cloud.login("viewer@acme.cn").get_json()["token"]
    operator = cloud.login("ops@acme.cn").get_json()["token"]
    assert cloud.call("GET", "/api/v1/subscriptions", viewer).status_code == 403
    update = {"renewal_reminder": {"channels": ["sms"], "recipients": [me]}}
    assert cloud.call("PUT", "/api/v1/subscriptions", operator, json=update).status_code == 403
    # Another tenant's view shows its own owner only.
    theirs = cloud.call("GET", "/api/v1/subscriptions", rival["token"]).get_json()
    assert theirs["renewal_reminder"]["recipients"] == [rival["user_id"]]
