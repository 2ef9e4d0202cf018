"""平台运营 and 代运营 in the console, through its forms with a signed-in test client on SQLite
and PostgreSQL: platform staff confirm a bank transfer (a wrong amount is refused and changes
nothing), ask a tenant for a grant that its owner approves and revokes on the tenant's 代运营
page, read the platform's audit log (page and API); staff and tenant pages are kept apart.
Then every new page in real Chromium, in Chinese and English."""

from __future__ import annotations

import html
import re
import shutil
from typing import Any

from cloud_api import console
from cloud_api.accounts import store as accounts
from cloud_api.billing import payments
from tests.integration.test_console import CSS, SCREENSHOTS, chromium_screenshot, offline
from tests.support.cloud import STAFF_EMAIL, STRONG, Cloud, make_cloud

OWNER = "owner@cold.test"
PROFESSIONAL = {"edition": "professional", "billing_mode": "flow", "quantity": 1}
ERROR = re.compile(r'class="error" role="alert">([^<]*)<')
STAFF_PAGES = [
    "/console/platform/",
    "/console/platform/tenants",
    "/console/platform/orders",
    "/console/platform/grants",
    "/console/platform/audit",
]
TENANT_PAGES = [
    "/console/customers",
    "/console/warehouses",
    "/console/devices",
    "/console/users",
    "/console/security-policy",
    "/console/audit",
    "/console/grants",
]


class Browser:
    """A test client signed in to the console through its login form."""

    def __init__(self, cloud: Cloud, email: str, home: str) -> None:
        self.client = cloud.app.test_client()
        self.home = home
        signed_in = self.client.post("/console/login", data={"email": email, "password": STRONG})
        assert signed_in.status_code == 302, signed_in.get_data(as_text=True)

    def get(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code)
        return response.get_data(as_text=True)

    def submit(self, path: str, data: dict[str, Any], status: int = 302) -> Any:
        page = self.get(self.home)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf, page
        response = self.client.post(path, data={"csrf": csrf.group(1), **data})
        body = response.get_data(as_text=True)
        assert response.status_code == status, (path, ERROR.findall(body) or body[-800:])
        return response


def errors(response: Any) -> list[str]:
    return [html.unescape(e) for e in ERROR.findall(response.get_data(as_text=True))]


def staff_console(cloud: Cloud) -> Browser:
    accounts.ensure_platform_staff(cloud.engine, STAFF_EMAIL, STRONG)
    return Browser(cloud, STAFF_EMAIL, "/console/platform/")


def place_order(cloud: Cloud, token: str, body: dict[str, Any] = PROFESSIONAL) -> dict[str, Any]:
    placed = cloud.call("POST", "/api/v1/orders", token, json=body)
    assert placed.status_code == 201, placed.get_json()
    return placed.get_json()


def order_state(cloud: Cloud, token: str, order_id: int) -> tuple[str, list[str]]:
    order = cloud.call("GET", f"/api/v1/orders/{order_id}", token).get_json()
    licence = cloud.call("GET", "/api/v1/licence", token).get_json()
    return order["status"], [p["status"] for p in licence["packages"]]


def row_of(page: str, marker: str) -> str:
    found = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(marker)}.*?</tr>", page, re.S)
    assert found, (marker, page)
    return found.group(0)


# --- 待确认订单: confirming a bank transfer ---------------------------------------------------


def test_staff_confirm_a_transfer_on_the_orders_page_and_a_wrong_amount_changes_nothing(cloud):
    owner = cloud.register("冷链仓储", OWNER)
    placed = place_order(cloud, owner["token"])
    staff = staff_console(cloud)
    assert staff.client.get("/console/").headers["Location"] == "/console/platform/"

    reference = payments.order_reference(placed["id"])
    row = row_of(staff.get("/console/platform/orders"), f"#{placed['id']}")
    assert owner["tenant"] in row and reference in row and "150000.00" in row

    wrong = {"bank_reference": "CMB-20261201-01", "amount_yuan": "149999.99"}
    refused = staff.submit(f"/console/platform/orders/{placed['id']}/confirm", wrong, 409)
    (message,) = errors(refused)
    assert "到账金额与订单应付金额不符" in message and "149999.99" in message
    assert 'value="CMB-20261201-01"' in refused.get_data(as_text=True)  # what was typed stays
    assert order_state(cloud, owner["token"], placed["id"]) == ("pending_payment", [])
    nonsense = {"bank_reference": "CMB-20261201-01", "amount_yuan": "lots"}
    assert errors(staff.submit(f"/console/platform/orders/{placed['id']}/confirm", nonsense, 422))

    right = {"bank_reference": "CMB-20261201-01", "amount_yuan": "150000.00"}
    done = staff.submit(f"/console/platform/orders/{placed['id']}/confirm", right)
    assert done.headers["Location"] == f"/console/platform/orders?confirmed={placed['id']}"
    page = staff.get(done.headers["Location"])
    assert f"订单 #{placed['id']} 已确认收款" in page and reference not in page
    assert order_state(cloud, owner["token"], placed["id"]) == ("paid", ["active"])

    tenants = row_of(staff.get("/console/platform/tenants"), owner["tenant"])
    assert "专业版" in tenants and "冷链仓储" in tenants
    assert re.search(r'<td class="num">0</td>', tenants)  # no order waits any more

    # The platform's audit log, on its page and through the API, newest first.
    audit = staff.get("/console/platform/audit?action=payment")
    settled = row_of(audit, "payment.settled")
    assert f"order:{placed['id']}" in settled and "CMB-20261201-01" in settled
    assert audit.index("payment.settled") < audit.index("payment.refused")
    token = cloud.staff_token()
    listed = cloud.call("GET", "/api/v1/platform/audit?action=payment", token)
    assert listed.status_code == 200, listed.get_json()
    actions = [(e["action"], e["target"]) for e in listed.get_json()["items"]]
    assert actions == [
        ("payment.settled", f"order:{placed['id']}"),
        ("payment.refused", f"order:{placed['id']}"),
    ]
    assert listed.get_json()["items"][1]["details"]["code"] == "amount_mismatch"
    tenant_try = cloud.call("GET", "/api/v1/platform/audit", owner["token"])
    assert tenant_try.status_code == 403


def test_platform_lists_page_and_filter(cloud, monkeypatch):
    monkeypatch.setattr(console, "TENANTS_PAGE", 2)
    monkeypatch.setattr(console, "PLATFORM_ORDERS_PAGE", 2)
    monkeypatch.setattr(console, "PLATFORM_AUDIT_PAGE", 2)
    made = [cloud.register(name, f"owner{n}@t{n}.test") for n, name in
            enumerate(["冷链仓储", "Bright 物流", "华东冷链"])]  # fmt: skip
    orders = [place_order(cloud, m["token"]) for m in made]
    staff = staff_console(cloud)

    codes = sorted(m["tenant"] for m in made)
    first = staff.get("/console/platform/tenants")
    assert "共 3 条" in first and codes[0] in first and codes[1] in first
    assert codes[2] not in first
    second = staff.get(f"/console/platform/tenants?after={codes[1]}")
    assert codes[2] in second and codes[0] not in second
    found = staff.get("/console/platform/tenants?q=冷链")
    assert "共 2 条" in found and made[1]["tenant"] not in found
    assert "共 1 条" in staff.get("/console/platform/tenants?q=BRIGHT")
    assert "暂无" in staff.get("/console/platform/tenants?q=nobody%25")
    assert "platform" not in re.findall(r'<td class="mono nowrap">([^<]*)</td>', first)

    page = staff.get("/console/platform/orders")
    assert f"#{orders[2]['id']}" in page and f"#{orders[0]['id']}" not in page
    older = staff.get(f"/console/platform/orders?cursor={orders[1]['id']}")
    assert f"#{orders[0]['id']}" in older and f"#{orders[2]['id']}" not in older
    assert staff.get("/console/platform/orders?cursor=99999999999999999999")  # no 500

    for order in orders:
        bad = {"bank_reference": f"REF-{order['id']}", "amount_yuan": "1.00"}
        staff.submit(f"/console/platform/orders/{order['id']}/confirm", bad, 409)
    audit = staff.get("/console/platform/audit?action=payment")
    assert audit.count("payment.refused") == 2 and "共 3 条" in audit
    more = re.search(r'href="(/console/platform/audit\?action=payment&amp;cursor=\d+)"', audit)
    assert more, audit
    assert staff.get(html.unescape(more.group(1))).count("payment.refused") == 1
    assert "暂无" in staff.get("/console/platform/audit?action=staff_grant")


# --- 代运营: a grant asked for, approved, revoked ---------------------------------------------


def test_staff_ask_for_a_grant_the_owner_approves_then_revokes_it(cloud):
    owner = cloud.register("冷链仓储", OWNER)
    cloud.buy(owner["token"])  # professional with the managed-operations add-on
    staff = staff_console(cloud)

    unknown = {"tenant": "no-such-tenant", "scopes": ["read"], "hours": "4", "reason": "盘点"}
    assert errors(staff.submit("/console/platform/grants", unknown, 404))
    no_scope = {"tenant": owner["tenant"], "hours": "4"}
    assert "scopes" in errors(staff.submit("/console/platform/grants", no_scope, 422))[0]
    ask = {"tenant": owner["tenant"], "scopes": ["read", "inbound"], "hours": "4",
           "reason": "月末盘点"}  # fmt: skip
    asked = staff.submit("/console/platform/grants", ask)
    assert asked.headers["Location"] == "/console/platform/grants?asked=1"
    mine = cloud.call("GET", "/api/v1/platform/grants", cloud.staff_token()).get_json()["items"]
    (grant,) = mine
    assert (grant["tenant"], grant["status"], grant["scopes"]) == (
        owner["tenant"],
        "requested",
        ["inbound", "read"],
    )
    assert "待批准" in row_of(staff.get("/console/platform/grants"), "月末盘点")

    tenant = Browser(cloud, OWNER, "/console/")
    assert 'href="/console/grants"' in tenant.get("/console/")
    waiting = row_of(tenant.get("/console/grants"), "月末盘点")
    assert STAFF_EMAIL in waiting and f"/console/grants/{grant['id']}/approve" in waiting
    tenant.submit(f"/console/grants/{grant['id']}/approve", {})
    assert tenant.submit(f"/console/grants/{grant['id']}/approve", {}, 409)  # answered already
    active = row_of(tenant.get("/console/grants"), "月末盘点")
    assert f"/console/grants/{grant['id']}/revoke" in active

    acting = cloud.call(
        "POST", "/api/v1/staff/act", cloud.staff_token(), json={"grant_id": grant["id"]}
    )
    assert acting.status_code == 200, acting.get_json()
    session = acting.get_json()["token"]
    assert cloud.call("GET", "/api/v1/customers", session).status_code == 200
    assert "生效中" in row_of(staff.get("/console/platform/grants"), "月末盘点")

    tenant.submit(f"/console/grants/{grant['id']}/revoke", {})
    assert cloud.call("GET", "/api/v1/customers", session).status_code == 401
    again = cloud.call(
        "POST", "/api/v1/staff/act", cloud.staff_token(), json={"grant_id": grant["id"]}
    )
    assert again.status_code == 403
    assert "已撤销" in row_of(tenant.get("/console/grants"), "月末盘点")
    assert "已撤销" in row_of(staff.get("/console/platform/grants"), "月末盘点")
    actions = [e["action"] for e in cloud.call(
        "GET", "/api/v1/platform/audit?action=staff_grant", cloud.staff_token()
    ).get_json()["items"]]  # fmt: skip
    assert actions == ["staff_grant.revoked", "staff_grant.approved", "staff_grant.requested"]

    # The tenant offers one instead; a declined request stays declined.
    offered = {"staff_email": STAFF_EMAIL, "scopes": ["reports"], "hours": "2", "reason": "报表"}
    tenant.submit("/console/grants", offered)
    assert "租户授予" in row_of(staff.get("/console/platform/grants"), "报表")
    nobody = {"staff_email": "nobody@cangyun.test", "scopes": ["read"], "hours": "2"}
    assert errors(tenant.submit("/console/grants", nobody, 404))
    staff.submit("/console/platform/grants", ask | {"reason": "再次盘点"})
    second = max(g["id"] for g in cloud.call(
        "GET", "/api/v1/platform/grants", cloud.staff_token()).get_json()["items"])  # fmt: skip
    tenant.submit(f"/console/grants/{second}/decline", {})
    assert "已拒绝" in row_of(tenant.get("/console/grants"), "再次盘点")


def test_without_the_add_on_the_grants_page_says_what_to_buy(cloud):
    owner = cloud.register("冷链仓储", OWNER)
    tenant = Browser(cloud, OWNER, "/console/")
    page = tenant.get("/console/grants")
    assert "尚未购买版本" in html.unescape(page) and "专业版" in page
    assert 'id="offer-grant"' not in page

    cloud.buy(owner["token"], add_ons=())  # professional, no managed operations
    staff = staff_console(cloud)
    ask = {"tenant": owner["tenant"], "scopes": ["read"], "hours": "4", "reason": "月末盘点"}
    staff.submit("/console/platform/grants", ask)  # asking needs nothing of the tenant
    (grant,) = cloud.call("GET", "/api/v1/platform/grants", cloud.staff_token()).get_json()["items"]
    page = html.unescape(tenant.get("/console/grants"))
    assert "尚未购买「代运营服务」增值服务" in page
    assert f"/console/grants/{grant['id']}/approve" not in page
    refused = tenant.submit(f"/console/grants/{grant['id']}/approve", {}, 403)
    assert "代运营服务" in html.unescape(refused.get_data(as_text=True))
    offered = {"staff_email": STAFF_EMAIL, "scopes": ["read"], "hours": "2"}
    tenant.submit("/console/grants", offered, 403)
    listed = cloud.call("GET", "/api/v1/platform/grants", cloud.staff_token()).get_json()
    assert [g["status"] for g in listed["items"]] == ["requested"]

    english = tenant.get("/console/grants?lang=en")
    assert "add-on is not bought" in html.unescape(english)


# --- kept apart ---------------------------------------------------------------------------------


def test_staff_pages_are_staffs_and_tenant_pages_are_tenants(cloud):
    owner = cloud.register("冷链仓储", OWNER)
    placed = place_order(cloud, owner["token"])
    viewer = {"email": "viewer@cold.test", "password": STRONG, "role": "viewer"}
    assert cloud.call("POST", "/api/v1/users", owner["token"], json=viewer).status_code == 201

    tenant = Browser(cloud, OWNER, "/console/")
    home = tenant.get("/console/")
    assert "/console/platform" not in home
    for path in STAFF_PAGES:
        assert "403" in tenant.get(path, 403)
    confirm = {"bank_reference": "OWNER-PAYS-1", "amount_yuan": "150000.00"}
    tenant.submit(f"/console/platform/orders/{placed['id']}/confirm", confirm, 403)
    ask = {"tenant": owner["tenant"], "scopes": ["read"], "hours": "4"}
    tenant.submit("/console/platform/grants", ask, 403)
    assert order_state(cloud, owner["token"], placed["id"]) == ("pending_payment", [])

    reader = Browser(cloud, "viewer@cold.test", "/console/")
    assert 'href="/console/grants"' not in reader.get("/console/")
    reader.get("/console/grants", 403)
    reader.get("/console/platform/", 403)

    staff = staff_console(cloud)
    home = staff.get("/console/platform/")
    assert 'href="/console/customers"' not in home and 'href="/console/devices"' not in home
    assert 'href="/console/platform/orders"' in home
    for path in TENANT_PAGES:
        assert "只能通过租户批准的代运营授权" in staff.get(path, 403), path
    staff.submit("/console/customers", {"code": "STAFF-1", "name": "sneak"}, 403)
    staff.submit("/console/grants", {"staff_email": STAFF_EMAIL, "scopes": ["read"]}, 403)
    assert staff.client.get("/").headers["Location"] == "/console/"
    assert staff.client.get("/console/").headers["Location"] == "/console/platform/"


# --- real Chromium --------------------------------------------------------------------------


def test_every_platform_and_grants_page_in_real_chromium(tmp_path):
    """Each page's HTML, fetched by a signed-in client, opened from a file beside a copy of
    the stylesheet, as test_console.test_every_page_in_real_chromium does."""
    cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    owner = cloud.register("冷链仓储", OWNER)
    cloud.buy(owner["token"])
    bare = cloud.register("Bright 物流", "boss@bright.test")
    waiting = place_order(cloud, owner["token"], {"add_on": "ocr_scanning", "quantity": 1})
    place_order(cloud, bare["token"])
    staff = staff_console(cloud)
    short = {"bank_reference": "CMB-20261201-07", "amount_yuan": "1.00"}
    staff.submit(f"/console/platform/orders/{waiting['id']}/confirm", short, 409)
    for reason in ("月末盘点", "代客下单"):
        ask = {"tenant": owner["tenant"], "scopes": ["read", "inbound"], "hours": "8",
               "reason": reason}  # fmt: skip
        staff.submit("/console/platform/grants", ask)
    tenant = Browser(cloud, OWNER, "/console/")
    first = min(g["id"] for g in cloud.call(
        "GET", "/api/v1/platform/grants", cloud.staff_token()).get_json()["items"])  # fmt: skip
    tenant.submit(f"/console/grants/{first}/approve", {})
    newcomer = Browser(cloud, "boss@bright.test", "/console/")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = tmp_path / "pages"
    pages.mkdir()
    shutil.copy(CSS, pages / "console.css")
    profile = tmp_path / "chromium-profile"
    shots = {
        "platform_home": (staff, "/console/platform/"),
        "platform_tenants": (staff, "/console/platform/tenants"),
        "platform_orders": (staff, "/console/platform/orders"),
        "platform_grants": (staff, "/console/platform/grants"),
        "platform_audit": (staff, "/console/platform/audit"),
        "grants": (tenant, "/console/grants"),
        "grants-no-add-on": (newcomer, "/console/grants"),
        "platform_tenants-none": (staff, "/console/platform/tenants?q=nobody"),
    }
    for lang in ("zh", "en"):
        for name, (who, path) in shots.items():
            joined = "&" if "?" in path else "?"
            page = pages / f"{name}-{lang}.html"
            page.write_text(offline(who.get(f"{path}{joined}lang={lang}")), encoding="utf-8")
            chromium_screenshot(page.as_uri(), SCREENSHOTS / f"{name}-{lang}.png", profile)
    refused = staff.submit(f"/console/platform/orders/{waiting['id']}/confirm", short, 409)
    page = pages / "orders-refused.html"
    page.write_text(offline(refused.get_data(as_text=True)), encoding="utf-8")
    chromium_screenshot(page.as_uri(), SCREENSHOTS / "platform_orders-refused-en.png", profile)
    forbidden = pages / "staff-refused.html"
    forbidden.write_text(offline(staff.get("/console/customers", 403)), encoding="utf-8")
    chromium_screenshot(forbidden.as_uri(), SCREENSHOTS / "staff-refused-en.png", profile)
