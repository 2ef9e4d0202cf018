"""The admin console through Flask's test client on SQLite and PostgreSQL: login through the
form, every page in Chinese and English, the customer and warehouse forms, the label PDFs,
roles, CSRF, tenant isolation; then every page rendered once in headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from cangyun import wire
from cangyun.movement import MOVEMENT_TYPES
from cangyun.timeutil import format_ts, utcnow
from cloud_api import console, provisioning
from cloud_api.ledger import store as ledger
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform import i18n
from cloud_api.sites import registry
from cloud_api.sites.store import ZONE_KINDS
from tests.support import requires
from tests.support.cloud import STRONG, Cloud, make_cloud
from tests.support.serving import serving

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "cloud_api" / "templates" / "console"
CSS = ROOT / "cloud_api" / "static" / "console.css"
SCREENSHOTS = ROOT / "test-artifacts" / "console"
CHROMIUM_TIMEOUT = 90  # seconds for one screenshot on a busy 2-core machine
EPOCH = "e" * 32
OWNER = "owner@acme.test"
STRANGER = "boss@bright.test"
ERROR = re.compile(r'class="error" role="alert">([^<]*)<')


class Console:
    """One browser: a test client whose cookies hold a console session."""

    def __init__(self, cloud: Cloud, email: str, password: str = STRONG) -> None:
        self.client = cloud.app.test_client()
        response = self.client.post("/console/login", data={"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Location"] == "/console/"

    def get(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code)
        return response.get_data(as_text=True)

    def csrf(self) -> str:
        page = self.get("/console/")
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert found, page
        return found.group(1)

    def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> Any:
        form = {"csrf": self.csrf(), **data} if csrf else data
        return self.client.post(path, data=form)

    def submit(self, path: str, data: dict[str, str], status: int = 302) -> Any:
        response = self.post(path, data)
        body = response.get_data(as_text=True)
        assert response.status_code == status, (path, ERROR.findall(body) or body[-500:])
        return response


@pytest.fixture
def cloud(database_url, tmp_path):
    cloud = make_cloud(tmp_path, database_url)
    cloud.tokens["acme"] = cloud.register("Acme 仓储", OWNER)["token"]
    cloud.tokens["bright"] = cloud.register("Bright 物流", STRANGER)["token"]
    yield cloud
    cloud.engine.dispose()


def tenant_of(cloud: Cloud, name: str) -> str:
    me = cloud.call("GET", "/api/v1/auth/me", cloud.tokens[name])
    assert me.status_code == 200, me.get_json()
    return me.get_json()["tenant"]


def errors(response: Any) -> list[str]:
    return [html.unescape(e) for e in ERROR.findall(response.get_data(as_text=True))]


def numbers(html_row: str) -> list[str]:
    return re.findall(r'<td class="num">([^<]*)</td>', html_row)


def offline(page: str) -> str:
    """A page that opens from a file, beside a copy of the stylesheet."""
    return page.replace('href="/static/console.css"', 'href="console.css"')


def add_customer(owner: Console, code: str = "HD-001", **extra: str) -> Any:
    return owner.submit(
        "/console/customers",
        {
            "code": code,
            "name": "华东冷链物流",
            "contact_name": "张伟",
            "contact_phone": "138-0013-8000",
            "contact_email": "zhang.wei@huadong.test",
            "storage_per_tonne_day": "1.25",
            "handling_in_per_piece": "0.5",
        }
        | extra,
    )


def add_site(owner: Console) -> None:
    """sh-01 with zone A and the 2 × 2 × 2 grid A-01-1 … B-02-2 in it, through the forms."""
    owner.submit(
        "/console/warehouses",
        {"code": "sh-01", "name": "嘉定一号库", "address": "上海市嘉定区", "area_m2": "120.5"},
    )
    owner.submit(
        "/console/warehouses/sh-01/zones", {"code": "A", "name": "常温区", "kind": "storage"}
    )
    owner.submit("/console/warehouses/sh-01/locations", grid("A", "B", "01", "02", "1", "2"))


def grid(*ends: str, **extra: str) -> dict[str, str]:
    names = [f"{axis}_{end}" for axis in ("aisles", "racks", "levels") for end in ("from", "to")]
    return dict(zip(names, ends, strict=True)) | {"zone": "A", "separator": "-"} | extra


def add_device(cloud: Cloud, tenant: str, movements: int = 3) -> None:
    """An edge box of sh-01 that reports online and files movements for HD-001 today."""
    provisioning.create_device(
        cloud.settings, cloud.engine, tenant=tenant, warehouse="sh-01", code="edge-sh01"
    )
    address = wire.DeviceAddress(tenant, "sh-01", "edge-sh01")
    service = IngestService(cloud.engine)
    now = utcnow()
    # "Today" is the tenant's business day: never file them before its midnight, or the
    # dashboard's count depends on the hour the test runs at (16:00 UTC is Shanghai's 00:00).
    zone = ZoneInfo(registry.tenant_by_code(cloud.engine, tenant)["timezone"])
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    service.handle(
        address.topic(wire.STATUS),
        wire.encode_status(wire.Status("online", EPOCH, format_ts(now))),
    )
    items = [
        wire.encode_item(
            seq,
            f"edge-sh01-{seq}",
            "receive",
            format_ts(max(now - timedelta(minutes=10 - seq), midnight + timedelta(seconds=seq))),
            {"sku": f"SKU-{seq}", "qty": seq, "customer": "HD-001", "location": "A-01-1"},
        )
        for seq in range(1, movements + 1)
    ]
    service.handle(
        address.topic(wire.UP_TX), wire.encode_batch("edge-sh01", EPOCH, 1, items, format_ts(now))
    )


def seeded(cloud: Cloud) -> Console:
    owner = Console(cloud, OWNER)
    add_customer(owner)
    owner.submit("/console/customers/HD-001/notes", {"text": "首次来访，谈妥冷库租期"})
    add_site(owner)
    add_device(cloud, tenant_of(cloud, "acme"))
    return owner


# Every GET page with a string only its Chinese and only its English version shows.
PAGES = {
    "dashboard": ("/console/", "各仓今日作业", "Movements today by warehouse"),
    "customers": ("/console/customers", "新增货主", "Add customer"),
    "customer": ("/console/customers/HD-001", "月最低收费", "Monthly minimum"),
    "warehouses": ("/console/warehouses", "新增仓库", "Add warehouse"),
    "warehouse": ("/console/warehouses/sh-01", "批量生成库位", "Generate locations"),
    "devices": ("/console/devices", "最后在线", "Last seen"),
    "users": ("/console/users", "添加用户", "Add user"),
    "security_policy": ("/console/security-policy", "连续失败锁定次数", "Lock after failed"),
    "audit": ("/console/audit", "审计日志", "Audit log"),
    "password": ("/console/password", "确认新密码", "Confirm new password"),
}


# --- pages and languages -------------------------------------------------------------------


def test_every_page_answers_in_chinese_then_in_english(cloud):
    owner = seeded(cloud)
    for path, chinese, english in PAGES.values():
        page = owner.get(path)
        assert chinese in page and english not in page, path
    owner.get("/console/?lang=en")  # the switch is remembered in a cookie
    for path, chinese, english in PAGES.values():
        page = owner.get(path)
        assert english in page and chinese not in page, path
        assert 'lang="en"' in page
    assert "登录" in Console(cloud, OWNER).get("/console/login?lang=zh")


def test_the_language_switch_keeps_the_query_and_leaves_refused_forms(cloud):
    owner = seeded(cloud)
    page = owner.get("/console/warehouses/sh-01?prefix=A-01")
    assert 'href="/console/warehouses/sh-01?prefix=A-01&amp;lang=en"' in page
    refused = owner.submit("/console/warehouses/sh-01/zones", {"code": "", "name": ""}, 422)
    # The refused form's own URL answers only POST, so the switch leads to its page.
    assert 'href="/console/warehouses/sh-01?lang=en"' in refused.get_data(as_text=True)


def test_dashboard_counts_movements_today_per_warehouse(cloud):
    owner = seeded(cloud)
    page = owner.get("/console/")
    row = re.search(r'<a href="/console/warehouses/sh-01">sh-01</a>.*?</tr>', page, re.S)
    assert row, page
    assert numbers(row.group(0)) == ["3", "1 / 1"]


def test_every_text_has_chinese_and_english():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_]+)'[,)]", template.read_text()))
    for module in Path(console.__file__).parent.glob("*.py"):
        used |= set(re.findall(r'i18n\.text\("([a-z0-9_]+)"', module.read_text()))
    used |= set(console.ERROR_TEXTS.values())
    used |= {f"mv_{kind}" for kind in MOVEMENT_TYPES} | {f"zk_{kind}" for kind in ZONE_KINDS}
    missing = sorted(used - set(i18n.TEXTS))
    assert not missing
    for key in used:
        chinese, english = i18n.TEXTS[key]
        assert chinese and english, key


# --- 货主 customers ------------------------------------------------------------------------


def test_customer_and_note_through_the_forms(cloud):
    owner = Console(cloud, OWNER)
    created = add_customer(owner)
    assert created.headers["Location"] == "/console/customers/HD-001"
    listing = owner.get("/console/customers")
    for shown in ("HD-001", "华东冷链物流", "张伟", "138-0013-8000", "1.25", "0.50"):
        assert shown in listing
    owner.submit("/console/customers/HD-001/notes", {"text": "首次来访\n谈妥冷库租期"})
    add_site(owner)
    add_device(cloud, tenant_of(cloud, "acme"))
    page = owner.get("/console/customers/HD-001")
    assert "首次来访\n谈妥冷库租期" in page
    assert "zhang.wei@huadong.test" in page
    # The timeline: movements newest first (SKU-3 was filed last), the note above them all.
    timeline = page[page.index('id="timeline"') :]
    order = [timeline.index(s) for s in ("谈妥冷库租期", "SKU-3", "SKU-2", "SKU-1")]
    assert order == sorted(order)
    assert ">HD-001</a>" in owner.get("/console/customers?q=张伟")
    assert ">HD-001</a>" not in owner.get("/console/customers?q=nobody")


def test_customer_form_errors_are_shown_on_the_page(cloud):
    owner = Console(cloud, OWNER)
    add_customer(owner)
    nameless = owner.post("/console/customers", {"code": "HD-001"})
    assert nameless.status_code == 422 and errors(nameless) == ["name: name is required"]
    taken = owner.post("/console/customers", {"code": "HD-001", "name": "又一个"})
    assert taken.status_code == 409
    assert "already exists" in errors(taken)[0]
    assert 'value="又一个"' in taken.get_data(as_text=True)  # what was typed stays
    bad_rate = owner.post(
        "/console/customers", {"code": "HD-002", "name": "x", "storage_per_tonne_day": "1,5"}
    )
    assert bad_rate.status_code == 422
    assert errors(bad_rate)[0].startswith("storage_per_tonne_day:")
    phone_only = owner.post(
        "/console/customers", {"code": "HD-003", "name": "x", "contact_phone": "138"}
    )
    assert phone_only.status_code == 422 and "contacts[0].name" in errors(phone_only)[0]
    empty_note = owner.post("/console/customers/HD-001/notes", {"text": "  "})
    assert empty_note.status_code == 422 and errors(empty_note) == ["text is required"]
    assert "HD-002" not in owner.get("/console/customers")


def test_customers_page_by_code_and_hostile_input_is_no_500(cloud, monkeypatch):
    monkeypatch.setattr(console, "CUSTOMERS_PAGE", 2)
    owner = Console(cloud, OWNER)
    for code in ("C-1", "C-2", "C-3"):
        add_customer(owner, code)
    first = owner.get("/console/customers")
    assert "C-2" in first and "C-3" not in first
    nxt = re.search(r'href="(/console/customers\?after=[^"]+)"', first)
    assert nxt
    second = owner.get(nxt.group(1).replace("&amp;", "&"))
    assert "C-3" in second and "C-1" not in second
    owner.get("/console/customers?q=%25_'", 200)  # LIKE wildcards and a quote are just text
    # A NUL cannot be typed, only crafted: every URL carrying one is refused before any query.
    owner.get("/console/customers?q=%00", 400)
    owner.get("/console/customers?after=%00", 400)
    owner.get("/console/customers/HD%00", 400)
    owner.get("/console/customers/HD%25", 404)
    add_customer(owner)
    owner.get("/console/customers/HD-001?before=garbage", 400)
    owner.get("/console/customers/HD-001?before=WzEsMiwzXQ", 400)  # [1,2,3]


# --- 仓库 warehouses -----------------------------------------------------------------------


def test_warehouse_zone_and_grid_through_the_forms(cloud):
    owner = Console(cloud, OWNER)
    add_site(owner)
    listing = owner.get("/console/warehouses")
    row = re.search(r">sh-01</a>.*?</tr>", listing, re.S)
    assert row
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(0)) == [
        "120.50",
        "1",
        "8",
        "0 / 0",
    ]
    page = owner.get("/console/warehouses/sh-01?created=8")
    assert "已生成 8 个库位" in page and "常温区" in page
    codes = re.findall(r'<td class="mono">([^<]*)</td>', page)
    assert codes == [f"{a}-{r}-{lv}" for a in "AB" for r in ("01", "02") for lv in "12"]
    filtered = owner.get("/console/warehouses/sh-01?prefix=B-02")
    assert re.findall(r'<td class="mono">([^<]*)</td>', filtered) == ["B-02-1", "B-02-2"]
    clash = owner.submit(
        "/console/warehouses/sh-01/locations", grid("B", "C", "02", "02", "2", "2"), 409
    )
    assert errors(clash) == ["location 'B-02-2' already exists"]
    assert "C-02-2" not in owner.get("/console/warehouses/sh-01")
    add_device(cloud, tenant_of(cloud, "acme"))
    devices = owner.get("/console/warehouses/sh-01")
    assert "edge-sh01" in devices and 'class="pill ok">在线' in devices


def test_locations_page_and_form_errors(cloud, monkeypatch):
    monkeypatch.setattr(console, "LOCATIONS_PAGE", 3)
    owner = Console(cloud, OWNER)
    add_site(owner)
    first = owner.get("/console/warehouses/sh-01")
    assert re.findall(r'<td class="mono">([^<]*)</td>', first) == ["A-01-1", "A-01-2", "A-02-1"]
    nxt = re.search(r'href="(/console/warehouses/sh-01\?after=[^"#]+)', first)
    assert nxt
    second = owner.get(nxt.group(1).replace("&amp;", "&"))
    assert re.findall(r'<td class="mono">([^<]*)</td>', second)[0] == "A-02-2"
    owner.get("/console/warehouses/sh-01?after=%00", 400)
    bad_prefix = owner.get("/console/warehouses/sh-01?prefix=%E4%B8%AD")
    assert "prefix: contains characters not allowed here" in bad_prefix  # LocationFilter's rule
    cases = [
        ("/console/warehouses", {"code": "sh 02", "name": "x"}, 422, "code: must start"),
        ("/console/warehouses", {"code": "sh-02", "name": "x", "area_m2": "1e400"}, 422, "area"),
        ("/console/warehouses", {"code": "sh-02", "name": "x", "area_m2": "abc"}, 422, "number"),
        ("/console/warehouses", {"code": "sh-01", "name": "x"}, 409, "already exists"),
        ("/console/warehouses/sh-01/zones", {"code": "A", "name": "x"}, 409, "already exists"),
        ("/console/warehouses/sh-01/zones", {"code": "B", "name": "x", "kind": "x"}, 422, "kind"),
        ("/console/warehouses/sh-01/locations", grid("A", "1", "1", "1", "1", "1"), 422, "aisles"),
        ("/console/warehouses/sh-01/locations", grid("C", "C", "1", "1", "1", "1", zone="Z"), 422,
         "no zone 'Z'"),
    ]  # fmt: skip
    for path, data, status, says in cases:
        response = owner.submit(path, data, status)
        assert says in errors(response)[0], (data, errors(response))
    assert "sh-02" not in owner.get("/console/warehouses")


def test_console_labels_pdf(cloud):
    owner = Console(cloud, OWNER)
    add_site(owner)
    for symbology in ("code128", "datamatrix"):
        response = owner.client.get(f"/console/warehouses/sh-01/labels.pdf?symbology={symbology}")
        assert response.status_code == 200
        assert response.mimetype == "application/pdf"
        assert response.data.startswith(b"%PDF")
    page = owner.get("/console/warehouses/sh-01?prefix=A-01")
    assert "/console/warehouses/sh-01/labels.pdf?symbology=datamatrix&amp;prefix=A-01" in page
    filtered = owner.client.get("/console/warehouses/sh-01/labels.pdf?prefix=A-01")
    assert filtered.status_code == 200 and filtered.data.startswith(b"%PDF")
    for query, says in (("symbology=qr", "symbology must be"), ("prefix=Z", "没有符合条件的库位")):
        refused = owner.client.get(f"/console/warehouses/sh-01/labels.pdf?{query}")
        assert refused.status_code == 422 and says in errors(refused)[0]


# --- who may do what ----------------------------------------------------------------------


def test_a_viewer_reads_everything_and_changes_nothing(cloud):
    owner = seeded(cloud)
    created = cloud.call(
        "POST",
        "/api/v1/users",
        cloud.tokens["acme"],
        json={"email": "viewer@acme.test", "password": STRONG, "role": "viewer"},
    )
    assert created.status_code == 201, created.get_json()
    viewer = Console(cloud, "viewer@acme.test")
    for name, (path, _, _) in PAGES.items():
        if name not in ("users", "security_policy", "audit", "password"):
            page = viewer.get(path)
            assert page.count('method="post"') == 1, name  # logging out, nothing else
    # Their own password is the one thing a viewer may change.
    assert viewer.get("/console/password").count('method="post"') == 2
    viewer.get("/console/users", 403)
    labels = viewer.client.get("/console/warehouses/sh-01/labels.pdf")
    assert labels.status_code == 200 and labels.data.startswith(b"%PDF")
    writes = [
        ("/console/customers", {"code": "V-1", "name": "x"}),
        ("/console/customers/HD-001/notes", {"text": "viewer was here"}),
        ("/console/warehouses", {"code": "v-1", "name": "x"}),
        ("/console/warehouses/sh-01/zones", {"code": "V", "name": "x"}),
        ("/console/warehouses/sh-01/locations", grid("V", "V", "1", "1", "1", "1", zone="")),
    ]
    for path, data in writes:
        response = viewer.post(path, data)
        assert response.status_code == 403, path
        assert "没有权限" in response.get_data(as_text=True)
    assert "V-1" not in owner.get("/console/customers")
    assert "viewer was here" not in owner.get("/console/customers/HD-001")
    assert "V-1-1" not in owner.get("/console/warehouses/sh-01")


def test_a_post_without_the_csrf_token_is_refused(cloud):
    owner = seeded(cloud)
    writes = [
        ("/console/customers", {"code": "X-1", "name": "x"}),
        ("/console/customers/HD-001/notes", {"text": "forged"}),
        ("/console/warehouses", {"code": "x-1", "name": "x"}),
        ("/console/warehouses/sh-01/zones", {"code": "X", "name": "x"}),
        ("/console/warehouses/sh-01/locations", grid("X", "X", "1", "1", "1", "1", zone="")),
    ]
    for path, data in writes:
        assert owner.post(path, data, csrf=False).status_code == 400, path
        assert owner.post(path, data | {"csrf": "0" * 32}, csrf=False).status_code == 400, path
    assert "X-1" not in owner.get("/console/customers")
    assert "forged" not in owner.get("/console/customers/HD-001")
    assert "x-1" not in owner.get("/console/warehouses")
    assert "X-1-1" not in owner.get("/console/warehouses/sh-01")


def test_another_tenants_customer_and_warehouse_are_not_found(cloud):
    seeded(cloud)
    stranger = Console(cloud, STRANGER)
    for path in (
        "/console/customers/HD-001",
        "/console/warehouses/sh-01",
        "/console/warehouses/sh-01/labels.pdf",
    ):
        stranger.get(path, 404)
    for path, data in (
        ("/console/customers/HD-001/notes", {"text": "hello"}),
        ("/console/warehouses/sh-01/zones", {"code": "S", "name": "x"}),
        ("/console/warehouses/sh-01/locations", grid("S", "S", "1", "1", "1", "1", zone="")),
    ):
        assert stranger.post(path, data).status_code == 404, path
    assert ">HD-001</a>" not in stranger.get("/console/customers")
    assert ">sh-01</a>" not in stranger.get("/console/warehouses")
    # Their own codes may be the same: each tenant sees its own.
    add_customer(stranger)
    assert "华东冷链物流" in stranger.get("/console/customers/HD-001")


def test_without_a_session_every_page_redirects_to_the_login(cloud):
    seeded(cloud)
    anonymous = cloud.app.test_client()
    paths = [path for path, _, _ in PAGES.values()] + [
        "/console/warehouses/sh-01/labels.pdf",
        "/console/customers/nobody",
    ]
    for path in paths:
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/login"), path
    assert anonymous.post("/console/customers", data={"code": "A"}).status_code == 400


# --- real Chromium --------------------------------------------------------------------------


def chromium_screenshot(url: str, target: Path, profile: Path) -> None:
    subprocess.run(
        [
            requires.chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1280,800",
            f"--screenshot={target}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=CHROMIUM_TIMEOUT,
    )
    with Image.open(target) as shot:
        assert shot.size == (1280, 800)
        # A blank or unstyled page is nearly one colour; ours has cards, tables and text.
        assert len(shot.convert("L").getcolors(256 * 256) or []) > 16, target


def test_every_page_in_real_chromium(tmp_path):
    """A screenshot can't log in, so each page's HTML is fetched with a logged-in client and
    opened from a file beside a copy of the stylesheet; the login page comes from a live
    server, stylesheet and all."""
    cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    cloud.tokens["acme"] = cloud.register("Acme 仓储", OWNER)["token"]
    owner = seeded(cloud)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = tmp_path / "pages"
    pages.mkdir()
    shutil.copy(CSS, pages / "console.css")
    profile = tmp_path / "chromium-profile"
    for lang in ("zh", "en"):
        owner.get(f"/console/?lang={lang}")
        for name, (path, _, _) in PAGES.items():
            page = pages / f"{name}-{lang}.html"
            page.write_text(offline(owner.get(path)), encoding="utf-8")
            chromium_screenshot(page.as_uri(), SCREENSHOTS / f"{name}-{lang}.png", profile)
    # A refused form: the store's message on the page, what was typed still in the form.
    refused = owner.submit(
        "/console/warehouses/sh-01/locations", grid("B", "C", "02", "02", "1", "2"), 409
    )
    page = pages / "refused.html"
    page.write_text(offline(refused.get_data(as_text=True)), encoding="utf-8")
    chromium_screenshot(page.as_uri(), SCREENSHOTS / "warehouse-refused-en.png", profile)
    with serving(cloud.app) as base:
        chromium_screenshot(f"{base}/console/login", SCREENSHOTS / "login-zh.png", profile)


def test_times_are_the_tenants_wall_clock_not_utc(cloud):
    owner = seeded(cloud)
    tenant = tenant_of(cloud, "acme")
    zone = ZoneInfo(registry.tenant_by_code(cloud.engine, tenant)["timezone"])
    page = owner.get("/console/")
    assert zone.key in page  # the header names the zone the times are in
    # add_device filed SKU-3 seven minutes ago: the dashboard shows it in Shanghai time.
    _, recent, _ = ledger.list_movements(
        cloud.engine,
        registry.tenant_by_code(cloud.engine, tenant)["id"],
        {"sku": "SKU-3"},
        after_id=None,
        limit=1,
        newest_first=True,
    )
    stored = datetime.fromisoformat(recent[0]["occurred_at"])
    shown = stored.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    utc_text = stored.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert shown != utc_text  # Asia/Shanghai by default, eight hours ahead
    assert shown in page and utc_text not in page
    row = re.search(rf"<tr><td>{shown}</td>.*?</tr>", page, re.S)
    assert row and "收货" in row.group(0)  # the movement type in the page's language
