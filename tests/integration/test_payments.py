"""Paying an order (docs/billing.md "Paying"): a tenant never marks its own order paid.

Platform staff confirm a bank transfer (对公转账); WeChat Pay's signed, encrypted notification
(built by tests.support.wechatpay exactly as WeChat builds it, with keys made for the test)
settles an order once however often it comes. Everything refused is audited and leaves the
order unpaid. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from cangyun.settings import SettingsError
from cloud_api.accounts import store as accounts
from cloud_api.billing import payments
from cloud_api.platform.schema import audit_log, packages
from cloud_api.settings import PaymentSection
from tests.support.cloud import STRONG, Cloud, make_cloud
from tests.support.wechatpay import KEY_ID, MCHID, FakeWechatPay, new_key

NOTIFY = "/api/v1/payments/wechatpay/notify"
PROFESSIONAL = {"edition": "professional", "billing_mode": "flow", "quantity": 1}


@pytest.fixture
def gateway() -> FakeWechatPay:
    return FakeWechatPay()


@pytest.fixture
def paying(tmp_path, database_url, gateway):
    """A cloud with the online gateway on, trusting the fake gateway's keys."""
    made = make_cloud(
        tmp_path,
        database_url,
        payment=PaymentSection(
            wechatpay_mchid=MCHID,
            wechatpay_apiv3_key=gateway.apiv3_key.decode(),
            wechatpay_public_key_file=str(gateway.write_public_key(tmp_path / "wechatpay.pem")),
            wechatpay_public_key_id=KEY_ID,
        ),
    )
    yield made
    made.engine.dispose()


def order(cloud: Cloud, token: str, body: dict[str, Any] = PROFESSIONAL) -> dict[str, Any]:
    created = cloud.call("POST", "/api/v1/orders", token, json=body)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def state(cloud: Cloud, token: str, order_id: int) -> tuple[str, int]:
    """The order's status and how many packages the tenant holds."""
    found = cloud.call("GET", f"/api/v1/orders/{order_id}", token).get_json()
    licence = cloud.call("GET", "/api/v1/licence", token).get_json()
    return found["status"], len(licence["packages"])


def refusals(cloud: Cloud) -> list[dict[str, Any]]:
    """payment.refused entries of every log, platform and tenants, oldest first."""
    with cloud.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.tenant_id, audit_log.c.target, audit_log.c.details)
            .where(audit_log.c.action == "payment.refused")
            .order_by(audit_log.c.id)
        ).all()
    return [{"tenant_id": t, "target": target, **details} for t, target, details in rows]


def notify(cloud: Cloud, body: bytes, headers: dict[str, str]) -> Any:
    return cloud.client.post(NOTIFY, data=body, headers=headers, content_type="application/json")


def fen(placed: dict[str, Any]) -> int:
    return payments.to_fen(Decimal(placed["payment"]["amount_yuan"]))


# --- what the tenant sees, and cannot do --------------------------------------------------


def test_a_tenant_sees_what_to_pay_and_cannot_pay_itself(cloud):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    placed = order(cloud, token)
    how = placed["payment"]
    assert how["amount_yuan"] == "150000.00" and placed["total_yuan"] == 150000
    assert how["default"] == "bank_transfer"
    assert how["bank_transfer"]["payee"] == {
        "name": "仓运通科技有限公司",
        "bank": "招商银行上海分行营业部",
        "account": "1219 0000 0000 0000",
    }
    reference = how["bank_transfer"]["reference"]
    assert reference == payments.order_reference(placed["id"])
    assert payments.order_of_reference(reference.lower()) == placed["id"]
    assert how["wechatpay"] is None  # no merchant configured: the gateway is off
    assert cloud.call("GET", f"/api/v1/orders/{placed['id']}", token).get_json() == placed
    for body in ({"payment_reference": "abcd"}, {}):
        own = cloud.call("POST", f"/api/v1/orders/{placed['id']}/pay", token, json=body)
        assert own.status_code in (404, 405)
    assert state(cloud, token, placed["id"]) == ("pending_payment", 0)
    spec = cloud.client.get("/api/v1/openapi.json").get_json()
    assert not [path for path in spec["paths"] if path.endswith("/pay")]


def test_with_the_gateway_on_the_order_names_what_to_pay_online(paying):
    token = paying.register("Acme", "owner@acme.cn")["token"]
    placed = order(paying, token)
    assert placed["payment"]["wechatpay"] == {
        "gateway": "wechatpay",
        "mchid": MCHID,
        "out_trade_no": placed["payment"]["bank_transfer"]["reference"],
        "amount_fen": 15000000,
    }


# --- bank transfer: platform staff confirm -----------------------------------------------


def test_staff_confirmation_activates_and_a_wrong_amount_does_not(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    token = owner["token"]
    placed = order(cloud, token)
    staff = cloud.staff_token()

    waiting = cloud.call("GET", "/api/v1/platform/orders?status=pending_payment", staff)
    assert waiting.status_code == 200
    (listed,) = waiting.get_json()["items"]
    assert (listed["id"], listed["tenant"], listed["tenant_name"]) == (
        placed["id"],
        owner["tenant"],
        "Acme",
    )
    assert listed["payment"]["bank_transfer"]["reference"] == payments.order_reference(placed["id"])

    short = cloud.confirm(placed, amount_yuan="149999.99", bank_reference="CMB-0001")
    assert (short.status_code, short.get_json()["error"]["code"]) == (409, "amount_mismatch")
    more = cloud.confirm(placed, amount_yuan=150000.01, bank_reference="CMB-0001")
    assert more.get_json()["error"]["code"] == "amount_mismatch"
    assert state(cloud, token, placed["id"]) == ("pending_payment", 0)

    paid = cloud.confirm(placed, amount_yuan="150000", bank_reference="CMB-0001")
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["status"] == "paid"
    assert paid.get_json()["payment_reference"] == "bank_transfer:CMB-0001"
    assert paid.get_json()["payment"] is None
    licence = cloud.call("GET", "/api/v1/licence", token).get_json()
    assert licence["edition"] == "professional" and licence["inbound_allowed"]
    (package,) = licence["packages"]
    assert package["order_id"] == placed["id"] and package["status"] == "active"

    again = cloud.confirm(placed, amount_yuan="150000.00", bank_reference="CMB-0001")
    assert again.status_code == 200 and again.get_json() == paid.get_json()
    other = cloud.confirm(placed, bank_reference="CMB-0002")
    assert (other.status_code, other.get_json()["error"]["code"]) == (409, "already_paid")
    assert state(cloud, token, placed["id"]) == ("paid", 1)
    assert cloud.call("GET", "/api/v1/platform/orders", staff).get_json()["items"] == []
    paid_list = cloud.call("GET", "/api/v1/platform/orders?status=paid", staff).get_json()
    assert [o["id"] for o in paid_list["items"]] == [placed["id"]]

    # The same transfer cannot pay a second order.
    second = order(cloud, token)
    reused = cloud.confirm(second, bank_reference="CMB-0001")
    assert reused.get_json()["error"]["code"] == "reference_used"
    assert state(cloud, token, second["id"]) == ("pending_payment", 1)

    codes = [r["code"] for r in refusals(cloud)]
    assert codes.count("amount_mismatch") == 4  # platform's log and the tenant's, twice
    entries = cloud.call("GET", "/api/v1/audit", token).get_json()["items"]
    refused = [e for e in entries if e["action"] == "payment.refused"]
    assert {e["details"]["code"] for e in refused} == {
        "amount_mismatch",
        "already_paid",
        "reference_used",
    }
    assert any(e["action"] == "order.paid" for e in entries)


def test_cancelled_and_unknown_orders_are_refused(cloud):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    placed = order(cloud, token)
    assert cloud.call("POST", f"/api/v1/orders/{placed['id']}/cancel", token).status_code == 200
    cancelled = cloud.confirm(placed)
    assert (cancelled.status_code, cancelled.get_json()["error"]["code"]) == (
        409,
        "order_cancelled",
    )
    unknown = cloud.confirm({"id": placed["id"] + 100, "payment": placed["payment"]})
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "unknown_order")
    assert state(cloud, token, placed["id"]) == ("cancelled", 0)
    assert {r["code"] for r in refusals(cloud)} == {"order_cancelled", "unknown_order"}


def test_only_platform_staff_confirm_or_list(cloud):
    owner = cloud.register("Acme", "owner@acme.cn")
    token = owner["token"]
    cloud.buy(token, "basic", add_ons=("managed_operations",))
    placed = order(cloud, token)
    clerk = {"email": "clerk@acme.cn", "password": STRONG, "role": "admin"}
    assert cloud.call("POST", "/api/v1/users", token, json=clerk).status_code == 201
    admin = cloud.login("clerk@acme.cn").get_json()["token"]
    # Staff acting inside the tenant through its grant are the tenant's, not the platform's.
    accounts.ensure_platform_staff(cloud.engine, "ops@cangyun.cn", STRONG)
    staff = cloud.login("ops@cangyun.cn").get_json()["token"]
    grant = cloud.call(
        "POST",
        "/api/v1/staff-grants",
        token,
        json={"staff_email": "ops@cangyun.cn", "hours": 1, "reason": "代运营"},
    ).get_json()
    acting = cloud.call("POST", "/api/v1/staff/act", staff, json={"grant_id": grant["id"]})
    body = {"amount_yuan": placed["payment"]["amount_yuan"], "bank_reference": "SELF-PAID"}
    for who in (token, admin, acting.get_json()["token"]):
        confirm = cloud.call(
            "POST", f"/api/v1/platform/orders/{placed['id']}/confirm", who, json=body
        )
        assert confirm.status_code == 403, confirm.get_json()
        assert cloud.call("GET", "/api/v1/platform/orders", who).status_code == 403
    assert cloud.call("GET", "/api/v1/platform/orders").status_code == 401
    assert state(cloud, token, placed["id"]) == ("pending_payment", 2)
    # The platform's own staff, signed in as themselves, may.
    confirmed = cloud.call(
        "POST", f"/api/v1/platform/orders/{placed['id']}/confirm", staff, json=body
    )
    assert confirmed.status_code == 200
    assert state(cloud, token, placed["id"]) == ("paid", 3)


# --- the online gateway: WeChat Pay API v3 notifications ---------------------------------


def test_a_notification_activates_once_however_often_it_comes(paying, gateway):
    token = paying.register("Acme", "owner@acme.cn")["token"]
    placed = order(paying, token)
    out_trade_no = placed["payment"]["wechatpay"]["out_trade_no"]
    body, headers = gateway.notification(out_trade_no, fen(placed), "4200000001202612071234")
    first = notify(paying, body, headers)
    assert first.status_code == 204 and first.get_data() == b"", first.get_data()
    for _ in range(3):  # the same delivery again, as a replay would send it
        assert notify(paying, body, headers).status_code == 204
    for _ in range(2):  # WeChat's own retries: the same transaction, signed afresh
        retry = gateway.body(
            gateway.transaction(out_trade_no, fen(placed), "4200000001202612071234")
        )
        assert notify(paying, retry, gateway.headers(retry)).status_code == 204
    assert state(paying, token, placed["id"]) == ("paid", 1)
    with paying.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(packages)).scalar() == 1
    paid = paying.call("GET", f"/api/v1/orders/{placed['id']}", token).get_json()
    assert paid["payment_reference"] == "wechatpay:4200000001202612071234"
    # Another transaction for an order already paid is a second payment: refused, kept.
    body, headers = gateway.notification(out_trade_no, fen(placed), "4200000001202612079999")
    again = notify(paying, body, headers)
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "already_paid")
    assert state(paying, token, placed["id"]) == ("paid", 1)


def _tampered(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    body, headers = gateway.notification(no, total)
    event = json.loads(body)
    event["summary"] = "支付成功 "  # one byte more after signing
    return json.dumps(event, ensure_ascii=False).encode(), headers


def _wrong_amount(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    return gateway.notification(no, total - 1)


def _wrong_key(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    body = gateway.body(gateway.transaction(no, total))
    return body, gateway.headers(body, key=new_key())


def _stale(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    body = gateway.body(gateway.transaction(no, total))
    return body, gateway.headers(body, timestamp=int(time.time()) - 6 * 60)


def _wrong_apiv3_key(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    body = gateway.body(gateway.transaction(no, total), apiv3_key=b"k" * 32)
    return body, gateway.headers(body)


def _other_merchant(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    body = gateway.body(gateway.transaction(no, total, mchid="1230000109"))
    return body, gateway.headers(body)


def _unknown_order(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict[str, str]]:
    return gateway.notification(payments.order_reference(9999), total)


def _mistyped_reference(gateway: FakeWechatPay, no: str, total: int) -> tuple[bytes, dict]:
    return gateway.notification(no[:-1] + str((int(no[-1]) + 1) % 10), total)


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (_tampered, 401, "bad_signature"),
        (_wrong_amount, 409, "amount_mismatch"),
        (_wrong_key, 401, "bad_signature"),
        (_stale, 401, "stale_timestamp"),
        (_wrong_apiv3_key, 422, "bad_notification"),
        (_other_merchant, 403, "wrong_merchant"),
        (_unknown_order, 404, "unknown_order"),
        (_mistyped_reference, 404, "unknown_order"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_bad_notification_is_refused_audited_and_pays_nothing(
    paying, gateway, make, status, code
):
    token = paying.register("Acme", "owner@acme.cn")["token"]
    placed = order(paying, token)
    body, headers = make(gateway, placed["payment"]["wechatpay"]["out_trade_no"], fen(placed))
    refused = notify(paying, body, headers)
    assert refused.status_code == status, refused.get_data(as_text=True)
    assert refused.get_json()["error"]["code"] == code
    assert state(paying, token, placed["id"]) == ("pending_payment", 0)
    (logged, *tenant_copy) = refusals(paying)
    assert logged["code"] == code and logged["tenant_id"] is None  # no staff yet: no platform
    if code == "amount_mismatch":  # the order is known: its tenant sees the refusal too
        assert logged["amount_fen"] == fen(placed) - 1
        assert [e["code"] for e in tenant_copy] == [code]
    else:
        assert tenant_copy == []
    # The genuine notification still pays it afterwards.
    body, headers = gateway.notification(
        placed["payment"]["wechatpay"]["out_trade_no"], fen(placed)
    )
    assert notify(paying, body, headers).status_code == 204
    assert state(paying, token, placed["id"]) == ("paid", 1)


def test_refusals_go_to_the_platform_log_once_it_exists(paying, gateway):
    paying.staff_token()  # makes the platform tenant and its staff
    body, headers = gateway.notification(payments.order_reference(1), 100)
    forged = {**headers, "Wechatpay-Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert notify(paying, body, forged).status_code == 401
    (logged,) = refusals(paying)
    with paying.engine.connect() as conn:
        platform = conn.execute(sa.text("select id from tenants where code = 'platform'")).scalar()
    assert (logged["tenant_id"], logged["code"]) == (platform, "bad_signature")


def test_with_the_gateway_off_every_notification_is_refused(cloud, gateway):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    placed = order(cloud, token)
    body, headers = gateway.notification(payments.order_reference(placed["id"]), fen(placed))
    refused = notify(cloud, body, headers)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (403, "gateway_off")
    assert state(cloud, token, placed["id"]) == ("pending_payment", 0)
    assert [r["code"] for r in refusals(cloud)] == ["gateway_off"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"wechatpay_apiv3_key": "too-short"}, "32 bytes"),
        ({"wechatpay_public_key_file": "/nonexistent/wechatpay.pem"}, "wechatpay.pem"),
        ({"wechatpay_public_key_file": ""}, "public_key_file"),
    ],
)
def test_a_gateway_that_cannot_work_stops_the_cloud_at_start(
    tmp_path, database_url, gateway, change, named
):
    """Not a 500 on the first notification: the cloud refuses to start and names the setting."""
    good = {
        "wechatpay_mchid": MCHID,
        "wechatpay_apiv3_key": gateway.apiv3_key.decode(),
        "wechatpay_public_key_file": str(gateway.write_public_key(tmp_path / "ok.pem")),
    }
    with pytest.raises(SettingsError, match=named) as refused:
        make_cloud(tmp_path, database_url, payment=PaymentSection(**(good | change)))
    assert "[payment]" in str(refused.value)
