"""定制服务 in the console, through its forms with signed-in test clients on SQLite and
PostgreSQL: a tenant asks, platform staff quote, the tenant accepts and sees what to pay for the
order the quote became; a quote outside 5-15 working days or on a closed request is refused on
the page and changes nothing; without value-added services the page says which editions have
them; staff and tenant pages are kept apart. Then both pages in real Chromium, zh and en."""

from __future__ import annotations

import html
import re
import shutil
from decimal import Decimal
from typing import Any

from cloud_api.billing import payments
from tests.integration.test_console import CSS, SCREENSHOTS, chromium_screenshot, offline
from tests.integration.test_console_platform import Browser, errors, row_of, staff_console
from tests.support.cloud import STRONG, Cloud, make_cloud

OWNER = "owner@rack.test"
ASK = {
    "title": "对接金蝶云星空",
    "description": "入库单自动同步到金蝶云星空\n每晚对账",
    "warehouses": ["sh-01"],
    "private_deployment": "on",
    "contact_name": "王经理",
    "contact_phone": "13900000000",
    "contact_email": "wang@rack.test",
}
QUOTE = {
    "price_yuan": "38000.50",
    "scope": "金蝶接口与对账报表",
    "delivery_working_days": "10",
    "valid_days": "30",
}
TENANT_PAGE = "/console/custom-services"
STAFF_PAGE = "/console/platform/custom-services"


def tenant_with_warehouses(cloud: Cloud, edition: str | None = "professional") -> dict[str, Any]:
    owner = cloud.register("货架仓储", OWNER)
    if edition:
        cloud.buy(owner["token"], edition, add_ons=())
    for code, name in (("sh-01", "一号库"), ("sh-02", "二号库")):
        made = cloud.call(
            "POST", "/api/v1/warehouses", owner["token"], json={"code": code, "name": name}
        )
        assert made.status_code == 201, made.get_json()
    return owner


def requests_of(cloud: Cloud, token: str) -> list[dict[str, Any]]:
    listed = cloud.call("GET", "/api/v1/custom-services", token)
    assert listed.status_code == 200, listed.get_json()
    return listed.get_json()["items"]


def card(page: str, request_id: int) -> str:
    opening = rf'<section class="card request[^"]*" id="request-{request_id}">'
    found = re.search(rf"{opening}.*?</section>", page, re.S)
    assert found, page
    return found.group(0)


def test_ask_quote_accept_through_the_forms_and_the_order_waits_for_payment(cloud):
    owner = tenant_with_warehouses(cloud)
    tenant = Browser(cloud, OWNER, "/console/")
    home = tenant.get("/console/")
    assert f'href="{TENANT_PAGE}"' in home
    page = tenant.get(TENANT_PAGE)
    assert 'id="new-request"' in page and 'value="sh-02"' in page

    asked = tenant.submit(TENANT_PAGE, ASK)
    (made,) = requests_of(cloud, owner["token"])
    assert asked.headers["Location"] == f"{TENANT_PAGE}#request-{made['id']}"
    assert (made["status"], made["warehouses"], made["private_deployment"]) == (
        "submitted",
        ["sh-01"],
        True,
    )
    assert made["contact"] == {"name": "王经理", "phone": "13900000000", "email": "wang@rack.test"}
    mine = card(tenant.get(TENANT_PAGE), made["id"])
    assert "待报价" in mine and "入库单自动同步" in mine and "接受报价" not in mine
    assert f"/console/custom-services/{made['id']}/withdraw" in mine

    # A warehouse not the tenant's is the store's 404, on the page, and nothing is asked.
    stray = tenant.submit(TENANT_PAGE, ASK | {"warehouses": ["bj-09"]}, 404)
    assert "bj-09" in errors(stray)[0] and 'value="对接金蝶云星空"' in stray.get_data(as_text=True)
    assert errors(tenant.submit(TENANT_PAGE, ASK | {"contact_email": "nobody"}, 422))
    assert len(requests_of(cloud, owner["token"])) == 1

    staff = staff_console(cloud)
    assert f'href="{STAFF_PAGE}"' in staff.get("/console/platform/")
    listed = card(staff.get(STAFF_PAGE), made["id"])
    assert owner["tenant"] in listed and "王经理" in listed and "sh-01" in listed
    staff.submit(f"{STAFF_PAGE}/{made['id']}/messages", {"text": "请提供金蝶版本号"})
    tenant.submit(f"{TENANT_PAGE}/{made['id']}/messages", {"text": "金蝶云星空 V9"})
    done = staff.submit(f"{STAFF_PAGE}/{made['id']}/quote", QUOTE | {"status_filter": "submitted"})
    assert done.headers["Location"] == f"{STAFF_PAGE}?status=submitted#request-{made['id']}"
    assert "暂无" in staff.get(f"{STAFF_PAGE}?status=submitted")
    quoted = card(staff.get(f"{STAFF_PAGE}?status=quoted"), made["id"])
    assert "38000.50" in quoted and "重新报价" in quoted

    mine = card(tenant.get(TENANT_PAGE), made["id"])
    assert "已报价" in mine and "38000.50" in mine and "付款后 10 个工作日" in mine
    history = mine[mine.index("沟通记录") :]  # oldest first
    assert (
        history.index("请提供金蝶版本号")
        < history.index("金蝶云星空 V9")
        < history.index("金蝶接口")
    )
    tenant.submit(f"{TENANT_PAGE}/{made['id']}/accept", {})
    (accepted,) = requests_of(cloud, owner["token"])
    order = accepted["order"]
    assert accepted["status"] == "accepted" and order["status"] == "pending_payment"
    assert order["total_yuan"] == "38000.50"
    placed = cloud.call("GET", f"/api/v1/orders/{order['id']}", owner["token"]).get_json()
    assert placed["status"] == "pending_payment"
    assert Decimal(str(placed["total_yuan"])) == Decimal("38000.50")
    mine = html.unescape(card(tenant.get(TENANT_PAGE), made["id"]))
    reference = payments.order_reference(order["id"])
    assert f"请对公转账 38000.50 元，转账附言填写参考号 {reference}" in mine
    assert f"订单 #{order['id']}" in mine and "待付款" in mine
    assert "/withdraw" not in mine and "/accept" not in mine
    english = html.unescape(tenant.get(f"{TENANT_PAGE}?lang=en"))
    assert f"Pay 38000.50 yuan by bank transfer with the reference {reference}" in english

    # Closed now: staff's quote and decline are refused on the page and change nothing.
    again = staff.submit(f"{STAFF_PAGE}/{made['id']}/quote", QUOTE | {"price_yuan": "1.00"}, 409)
    assert "该需求已结束" in errors(again)[0]
    refused = staff.submit(f"{STAFF_PAGE}/{made['id']}/decline", {"reason": "排期已满"}, 409)
    assert "request is accepted" in errors(refused)[0]
    (still,) = requests_of(cloud, owner["token"])
    assert (still["status"], still["quote"]["price_yuan"]) == ("accepted", "38000.50")
    waiting = row_of(staff.get("/console/platform/orders"), f"#{order['id']}")
    assert reference in waiting and "38000.50" in waiting


def test_a_bad_quote_is_shown_and_changes_nothing_and_decline_and_withdraw(cloud):
    owner = tenant_with_warehouses(cloud)
    tenant = Browser(cloud, OWNER, "/console/")
    tenant.submit(TENANT_PAGE, ASK)
    tenant.submit(TENANT_PAGE, ASK | {"title": "定制月报", "warehouses": []})
    second, first = requests_of(cloud, owner["token"])
    staff = staff_console(cloud)

    short = staff.submit(
        f"{STAFF_PAGE}/{first['id']}/quote", QUOTE | {"delivery_working_days": "4"}, 422
    )
    body = short.get_data(as_text=True)
    assert "delivery_working_days" in errors(short)[0]
    assert f"需求 #{first['id']}" in errors(short)[0]
    flagged = card(body, first["id"])
    assert "flagged" in flagged and 'value="38000.50"' in flagged  # what was typed stays
    assert 'value="38000.50"' not in card(body, second["id"])
    assert requests_of(cloud, owner["token"])[1]["quote"] is None
    assert [r["status"] for r in requests_of(cloud, owner["token"])] == ["submitted", "submitted"]
    assert errors(staff.submit(f"{STAFF_PAGE}/{first['id']}/quote", QUOTE | {"price_yuan": "-5"},
                               422))  # fmt: skip
    assert errors(staff.submit(f"{STAFF_PAGE}/99999/quote", QUOTE, 404))
    assert errors(staff.submit(f"{STAFF_PAGE}/{first['id']}/decline", {"reason": ""}, 422))

    staff.submit(f"{STAFF_PAGE}/{first['id']}/decline", {"reason": "排期已满"})
    tenant.submit(f"{TENANT_PAGE}/{second['id']}/withdraw", {})
    assert tenant.submit(f"{TENANT_PAGE}/{second['id']}/withdraw", {}, 409)
    page = tenant.get(TENANT_PAGE)
    assert "未能承接" in card(page, first["id"]) and "排期已满" in card(page, first["id"])
    assert "已撤回" in card(page, second["id"])
    staff_page = staff.get(f"{STAFF_PAGE}?status=declined")
    assert "排期已满" in staff_page and f'id="request-{second["id"]}"' not in staff_page
    assert "/quote" not in card(staff.get(STAFF_PAGE), first["id"])  # closed: no quote form
    accepting = tenant.submit(f"{TENANT_PAGE}/{first['id']}/accept", {}, 409)
    assert "只有已报价的需求才能接受" in errors(accepting)[0]


def test_without_value_added_services_the_page_says_which_editions_have_them(cloud):
    owner = tenant_with_warehouses(cloud, edition=None)
    tenant = Browser(cloud, OWNER, "/console/")
    page = html.unescape(tenant.get(TENANT_PAGE))
    assert "尚未购买版本：定制服务需要基础版、标准版或专业版" in page
    assert 'id="new-request"' not in page
    refused = tenant.submit(TENANT_PAGE, ASK, 403)
    assert "定制服务需要基础版" in html.unescape(refused.get_data(as_text=True))
    assert requests_of(cloud, owner["token"]) == []

    cloud.buy(owner["token"], "traceability", add_ons=())
    page = html.unescape(tenant.get(TENANT_PAGE))
    assert "当前的溯源版不含增值服务：定制服务需要基础版、标准版或专业版" in page
    assert 'id="new-request"' not in page
    english = html.unescape(tenant.get(f"{TENANT_PAGE}?lang=en"))
    assert "has no value-added services" in english and "Basic, Standard or Professional" in english


def test_staff_and_tenant_custom_service_pages_are_kept_apart(cloud):
    owner = tenant_with_warehouses(cloud)
    viewer = {"email": "viewer@rack.test", "password": STRONG, "role": "viewer"}
    assert cloud.call("POST", "/api/v1/users", owner["token"], json=viewer).status_code == 201
    tenant = Browser(cloud, OWNER, "/console/")
    tenant.submit(TENANT_PAGE, ASK)
    (made,) = requests_of(cloud, owner["token"])

    assert "403" in tenant.get(STAFF_PAGE, 403)
    tenant.submit(f"{STAFF_PAGE}/{made['id']}/quote", QUOTE, 403)
    tenant.submit(f"{STAFF_PAGE}/{made['id']}/decline", {"reason": "自己拒绝"}, 403)
    assert requests_of(cloud, owner["token"])[0]["status"] == "submitted"

    reader = Browser(cloud, "viewer@rack.test", "/console/")
    assert f'href="{TENANT_PAGE}"' not in reader.get("/console/")
    reader.get(TENANT_PAGE, 403)
    reader.submit(TENANT_PAGE, ASK, 403)

    staff = staff_console(cloud)
    assert "只能通过租户批准的代运营授权" in staff.get(TENANT_PAGE, 403)
    staff.submit(TENANT_PAGE, ASK, 403)
    staff.submit(f"{TENANT_PAGE}/{made['id']}/withdraw", {}, 403)
    assert len(requests_of(cloud, owner["token"])) == 1
    assert f'href="{TENANT_PAGE}"' not in staff.get("/console/platform/")


# --- real Chromium --------------------------------------------------------------------------


def test_both_custom_service_pages_in_real_chromium(tmp_path):
    """Each page's HTML, fetched by a signed-in client, opened from a file beside a copy of
    the stylesheet, as the other console screenshot tests do."""
    cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    owner = tenant_with_warehouses(cloud)
    cloud.register("Bright 物流", "boss@bright.test")
    tenant = Browser(cloud, OWNER, "/console/")
    printing = {"title": "手持终端打印标签", "description": "PDA 上直接打印库位标签"}
    report = {"title": "定制月度库存报表", "description": "每月按货主汇总库存吨·天",
              "warehouses": ["sh-01", "sh-02"], "private_deployment": ""}  # fmt: skip
    for asked in (printing, report, {}):
        tenant.submit(TENANT_PAGE, ASK | asked)
    third, second, first = requests_of(cloud, owner["token"])
    staff = staff_console(cloud)
    staff.submit(f"{STAFF_PAGE}/{first['id']}/messages", {"text": "请说明打印机型号"})
    staff.submit(f"{STAFF_PAGE}/{second['id']}/quote", QUOTE | {"price_yuan": "6800"})
    staff.submit(f"{STAFF_PAGE}/{third['id']}/quote", QUOTE)
    tenant.submit(f"{TENANT_PAGE}/{third['id']}/accept", {})
    newcomer = Browser(cloud, "boss@bright.test", "/console/")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = tmp_path / "pages"
    pages.mkdir()
    shutil.copy(CSS, pages / "console.css")
    profile = tmp_path / "chromium-profile"
    shots = {
        "custom_services": (tenant, TENANT_PAGE),
        "custom_services-no-edition": (newcomer, TENANT_PAGE),
        "platform_custom_services": (staff, STAFF_PAGE),
    }
    for lang in ("zh", "en"):
        for name, (who, path) in shots.items():
            page = pages / f"{name}-{lang}.html"
            page.write_text(offline(who.get(f"{path}?lang={lang}")), encoding="utf-8")
            chromium_screenshot(page.as_uri(), SCREENSHOTS / f"{name}-{lang}.png", profile)
    short = QUOTE | {"delivery_working_days": "4"}
    refused = staff.submit(f"{STAFF_PAGE}/{second['id']}/quote", short, 422)
    page = pages / "quote-refused.html"
    page.write_text(offline(refused.get_data(as_text=True)), encoding="utf-8")
    chromium_screenshot(page.as_uri(), SCREENSHOTS / "platform_custom_services-refused.png",
                        profile)  # fmt: skip
