"""定制服务 custom services on real databases (SQLite and PostgreSQL), mail through a real SMTP
server: a tenant asks, platform staff quote, the tenant accepts and pays the order the quote
became, and both sides hear of every step. What the state does not allow is refused and
changes nothing."""

from __future__ import annotations

from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
import sqlalchemy as sa

from cangyun.timeutil import utcnow
from cloud_api.messaging import notify
from cloud_api.platform.schema import audit_log, custom_services, notifications
from tests.support.cloud import STAFF_EMAIL, Cloud, make_cloud

OWNER = "owner@rack.test"
REQUEST = {
    "title": "对接金蝶云星空",
    "description": "入库单自动同步到金蝶云星空\n每晚对账",
    "warehouses": ["sh-01"],
    "private_deployment": True,
    "contact_name": "王经理",
    "contact_phone": "13900000000",
    "contact_email": "wang@rack.test",
}
QUOTE = {"price_yuan": "38000.50", "scope": "金蝶接口与对账报表", "delivery_working_days": 10}


@pytest.fixture
def mailing(tmp_path, database_url, smtp):
    made = make_cloud(tmp_path, database_url, smtp_port=smtp.port)
    yield made
    made.engine.dispose()


class Parties:
    def __init__(self, cloud: Cloud, edition: str = "professional") -> None:
        self.cloud = cloud
        owner = cloud.register("货架仓储", OWNER)
        self.token, self.code = owner["token"], owner["tenant"]
        cloud.buy(self.token, edition, add_ons=())
        made = cloud.call(
            "POST", "/api/v1/warehouses", self.token, json={"code": "sh-01", "name": "一号库"}
        )
        assert made.status_code == 201, made.get_json()
        self.staff = cloud.staff_token()

    def tenant(self, method: str, path: str, body: Any = None) -> Any:
        return self.cloud.call(method, "/api/v1/custom-services" + path, self.token, json=body)

    def platform(self, method: str, path: str, body: Any = None) -> Any:
        return self.cloud.call(
            method, "/api/v1/platform/custom-services" + path, self.staff, json=body
        )

    def submitted(self, body: dict[str, Any] = REQUEST) -> dict[str, Any]:
        made = self.tenant("POST", "", body)
        assert made.status_code == 201, made.get_json()
        return made.get_json()

    def quoted(self, body: dict[str, Any] = QUOTE) -> dict[str, Any]:
        request = self.submitted()
        answered = self.platform("POST", f"/{request['id']}/quote", body)
        assert answered.status_code == 200, answered.get_json()
        return answered.get_json()

    def inbox(self, token: str) -> list[str]:
        found = self.cloud.call("GET", "/api/v1/messages", token).get_json()["items"]
        return [m["title"] for m in found]


@pytest.fixture
def parties(cloud) -> Parties:
    return Parties(cloud)


def subject(message: Any) -> str:
    return str(make_header(decode_header(message["Subject"])))


def refused(response: Any, status: int, code: str) -> None:
    body = response.get_json()
    assert (response.status_code, body["error"]["code"]) == (status, code), body


def test_a_request_goes_from_submitted_to_paid_and_both_sides_hear_each_step(mailing, smtp):
    parties = Parties(mailing)
    packages_before = len(
        mailing.call("GET", "/api/v1/licence", parties.token).get_json()["packages"]
    )
    request = parties.submitted()
    assert request["status"] == "submitted" and request["warehouses"] == ["sh-01"]
    assert request["private_deployment"] is True and request["quote"] is None

    waiting = parties.platform("GET", "?status=submitted").get_json()
    assert [r["id"] for r in waiting["items"]] == [request["id"]]
    assert waiting["items"][0]["tenant"] == parties.code
    assert any("新的定制服务需求" in t for t in parties.inbox(parties.staff))

    quoted = parties.platform("POST", f"/{request['id']}/quote", QUOTE).get_json()
    assert quoted["status"] == "quoted"
    assert quoted["quote"]["price_yuan"] == "38000.50"
    assert quoted["quote"]["delivery_working_days"] == 10
    assert quoted["quote"]["quoted_by"] == STAFF_EMAIL
    assert any("定制服务已报价" in t for t in parties.inbox(parties.token))

    accepted = parties.tenant("POST", f"/{request['id']}/accept")
    assert accepted.status_code == 200, accepted.get_json()
    order_ref = accepted.get_json()["order"]
    assert accepted.get_json()["status"] == "accepted"
    assert (order_ref["status"], order_ref["total_yuan"]) == ("pending_payment", "38000.50")
    order = mailing.call("GET", f"/api/v1/orders/{order_ref['id']}", parties.token).get_json()
    assert (order["add_on"], order["billing_mode"], order["unit"]) == (
        "custom_services",
        "quoted",
        "service",
    )
    assert order["payment"]["amount_yuan"] == "38000.50"

    # The one payment path: staff confirm the transfer; a short one is refused first.
    refused(mailing.confirm(order, amount_yuan="38000.00"), 409, "amount_mismatch")
    assert parties.tenant("GET", f"/{request['id']}").get_json()["status"] == "accepted"
    assert mailing.confirm(order).status_code == 200
    paid = parties.tenant("GET", f"/{request['id']}").get_json()
    assert paid["status"] == "paid" and paid["order"]["paid_at"]
    assert [s["action"] for s in paid["history"]] == ["submitted", "quoted", "accepted", "paid"]
    licence = mailing.call("GET", "/api/v1/licence", parties.token).get_json()
    assert len(licence["packages"]) == packages_before  # custom work buys no package
    assert parties.tenant("GET", "?status=paid").get_json()["total"] == 1
    assert parties.platform("GET", "?status=accepted").get_json()["total"] == 0

    # Audited on both sides, and mailed to both sides through the real SMTP server.
    with mailing.engine.connect() as conn:
        actions = conn.execute(
            sa.select(audit_log.c.tenant_id, audit_log.c.action)
            .where(audit_log.c.action.like("custom_service.%"))
            .order_by(audit_log.c.id)
        ).all()
        sms = conn.execute(
            sa.select(sa.func.count()).where(
                notifications.c.message_type == "custom_service", notifications.c.channel == "sms"
            )
        ).scalar_one()
    steps = [a for _, a in actions]
    assert steps.count("custom_service.submitted") == 2  # the tenant's log and the platform's
    assert steps.count("custom_service.quoted") == 2 and steps.count("custom_service.accepted") == 2
    assert len({t for t, _ in actions}) == 2
    assert sms == 0  # the one approved SMS template is the renewal reminder's
    while notify.deliver_due(mailing.engine, mailing.settings):
        pass
    to_owner = [subject(m) for m in smtp.inbox.wait_for(OWNER, count=3)]
    to_staff = [subject(m) for m in smtp.inbox.wait_for(STAFF_EMAIL, count=3)]
    assert any("已报价" in s for s in to_owner) and any("已付款" in s for s in to_owner), to_owner
    assert any("新的定制服务需求" in s for s in to_staff), to_staff
    assert any("报价已接受" in s for s in to_staff), to_staff


def test_what_the_state_does_not_allow_is_refused_and_changes_nothing(parties, cloud):
    request = parties.submitted()
    refused(parties.tenant("POST", f"/{request['id']}/accept"), 409, "not_quoted")
    bad_quotes = [
        QUOTE | {"delivery_working_days": 4},
        QUOTE | {"delivery_working_days": 16},
        QUOTE | {"price_yuan": "0"},
        QUOTE | {"price_yuan": "1.001"},
        QUOTE | {"scope": ""},
        QUOTE | {"surprise": 1},
    ]
    for bad in bad_quotes:
        answered = parties.platform("POST", f"/{request['id']}/quote", bad)
        assert answered.status_code in (400, 422), (bad, answered.get_json())
    assert parties.tenant("GET", f"/{request['id']}").get_json()["status"] == "submitted"

    quoted = parties.platform("POST", f"/{request['id']}/quote", QUOTE).get_json()
    with cloud.engine.begin() as conn:  # the quote ran out yesterday
        conn.execute(
            custom_services.update()
            .where(custom_services.c.id == quoted["id"])
            .values(quote_valid_until=utcnow() - timedelta(days=1))
        )
    refused(parties.tenant("POST", f"/{request['id']}/accept"), 409, "quote_expired")
    renewed = parties.platform("POST", f"/{request['id']}/quote", QUOTE | {"price_yuan": "100"})
    assert renewed.get_json()["quote"]["price_yuan"] == "100.00"
    assert parties.tenant("POST", f"/{request['id']}/accept").status_code == 200
    refused(parties.tenant("POST", f"/{request['id']}/accept"), 409, "not_quoted")
    refused(parties.platform("POST", f"/{request['id']}/quote", QUOTE), 409, "request_closed")
    refused(parties.tenant("POST", f"/{request['id']}/withdraw"), 409, "request_closed")
    orders = cloud.call("GET", "/api/v1/orders", parties.token).get_json()["items"]
    assert [o["total_yuan"] for o in orders if o["add_on"] == "custom_services"] == [100]

    # Cancelling the unpaid order closes the request.
    order_id = parties.tenant("GET", f"/{request['id']}").get_json()["order"]["id"]
    cloud.call("POST", f"/api/v1/orders/{order_id}/cancel", parties.token)
    assert parties.tenant("GET", f"/{request['id']}").get_json()["status"] == "cancelled"

    # A request for another tenant's warehouse names nothing that exists here.
    refused(parties.tenant("POST", "", REQUEST | {"warehouses": ["elsewhere"]}), 404, "not_found")
    assert parties.tenant("GET", "").get_json()["total"] == 1


def test_withdrawn_declined_and_messages_reach_the_other_side(parties):
    first = parties.submitted()
    gone = parties.tenant("POST", f"/{first['id']}/withdraw").get_json()
    assert gone["status"] == "withdrawn"
    refused(parties.platform("POST", f"/{first['id']}/quote", QUOTE), 409, "request_closed")

    second = parties.submitted(REQUEST | {"title": "私有化部署", "warehouses": []})
    asked = parties.platform("POST", f"/{second['id']}/messages", {"text": "服务器几台？"})
    assert asked.status_code == 200
    assert any("定制服务留言" in t for t in parties.inbox(parties.token))
    answer = parties.tenant("POST", f"/{second['id']}/messages", {"text": "两台"})
    assert [s["body"] for s in answer.get_json()["history"]][-2:] == ["服务器几台？", "两台"]
    declined = parties.platform("POST", f"/{second['id']}/decline", {"reason": "暂不支持"})
    assert declined.get_json()["status"] == "declined"
    assert any("未能承接" in t for t in parties.inbox(parties.token))
    assert [r["status"] for r in parties.tenant("GET", "").get_json()["items"]] == [
        "declined",
        "withdrawn",
    ]


def test_who_may_ask_and_who_may_quote(cloud):
    parties = Parties(cloud)
    request = parties.submitted()
    # A tenant cannot quote its own request, nor read the platform's queue.
    for method, path, body in [
        ("POST", f"/{request['id']}/quote", QUOTE),
        ("GET", "", None),
        ("GET", f"/{request['id']}", None),
    ]:
        answer = cloud.call(
            method, "/api/v1/platform/custom-services" + path, parties.token, json=body
        )
        refused(answer, 403, "forbidden")
    # Staff reach a tenant's requests only through the platform routes (or a grant).
    refused(cloud.call("GET", "/api/v1/custom-services", parties.staff), 403, "no_grant")
    # 溯源版 has no value-added services: it is told which feature it lacks.
    trace = cloud.register("溯源仓", "trace@rack.test")
    cloud.buy(trace["token"], "traceability", add_ons=())
    answer = cloud.call(
        "POST", "/api/v1/custom-services", trace["token"], json=REQUEST | {"warehouses": []}
    )
    refused(answer, 403, "feature_not_in_edition")
    assert answer.get_json()["error"]["details"]["feature"] == "value_added_services"
    # Another tenant's request does not exist for it.
    refused(
        cloud.call("GET", f"/api/v1/custom-services/{request['id']}", trace["token"]),
        404,
        "not_found",
    )
