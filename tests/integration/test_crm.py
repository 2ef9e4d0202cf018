"""CRM (货主) over HTTP and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cangyun import wire
from cangyun.cli import main
from cangyun.settings import dump_settings
from cangyun.timeutil import format_ts, utcnow
from cloud_api import provisioning
from cloud_api.accounts import store as accounts
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.schema import audit_log, customer_notes, customers
from cloud_api.sites import registry

EPOCH = "c" * 32
BOM = b"\xef\xbb\xbf"
ZH_HEADER = (
    "货主编码,货主名称,联系人,电话,邮箱,职务,"
    "仓储费(元/吨·天),入库费(元/件),出库费(元/件),月最低收费(元)"
)


@pytest.fixture
def crm(cloud):
    """The shared cloud with tenants acme and bright, each with a warehouse and an edge box,
    and a viewer key of acme's: (api, engine, settings)."""
    engine, settings = cloud.engine, cloud.settings
    tokens = {}
    for tenant, warehouse, device in (("acme", "sh-01", "edge-a"), ("bright", "bj-01", "edge-b")):
        tokens[tenant] = provisioning.create_tenant(
            engine, tenant, tenant, admin_email=f"boss@{tenant}.test", admin_password="pw-1234567"
        ).token
        provisioning.create_warehouse(engine, tenant, warehouse, warehouse)
        provisioning.create_device(
            settings, engine, tenant=tenant, warehouse=warehouse, code=device
        )
    acme_id = registry.tenant_by_code(engine, "acme")["id"]
    tokens["viewer"] = accounts.create_api_key(
        engine, acme_id, "viewer", name="viewer", actor="test"
    )
    with cloud.app.test_client() as client:
        # Notes and audit entries name a person: act as each tenant's owner, signed in.
        for tenant in ("acme", "bright"):
            login = {"email": f"boss@{tenant}.test", "password": "pw-1234567"}
            tokens[tenant] = client.post("/api/v1/auth/login", json=login).get_json()["token"]
        yield Api(client, tokens), engine, settings


class Api:
    """The test client with a default tenant token."""

    def __init__(self, client, tokens):
        self.client = client
        self.tokens = tokens

    def call(self, method, path, *, who="acme", **kwargs):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def patch(self, path, **kw):
        return self.call("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


HUADONG = {
    "code": "HD-001",
    "name": "华东冷链物流有限公司",
    "contacts": [
        {
            "name": "张伟",
            "phone": "138-0013-8000",
            "email": "Zhang.Wei@HuaDong.cn",
            "role": "仓储经理",
        },
        {"name": "Li Na", "phone": "+86 21 5555 0101", "email": "", "role": ""},
    ],
    "contracts": [
        {"number": "HT-2026-01", "starts": "2026-01-01", "ends": "2026-12-31", "terms": "月结"}
    ],
    "storage_per_tonne_day": "1.2500",
    "handling_in_per_piece": "0.5",
    "handling_out_per_piece": 0.75,
    "minimum_monthly_charge": "3000",
}


def ingest(engine, tenant, warehouse, device, movements, batch=1):
    """File movements through the real ingest path: [(seq, customer, occurred_at)]."""
    items = [
        wire.encode_item(
            seq,
            f"{device}-{seq}",
            "receive",
            format_ts(at),
            {"sku": "SKU-1", "qty": seq, "weight_kg": 2.5, "customer": customer},
        )
        for seq, customer, at in movements
    ]
    outcome = IngestService(engine).handle(
        wire.DeviceAddress(tenant, warehouse, device).topic(wire.UP_TX),
        wire.encode_batch(device, EPOCH, batch, items, format_ts(utcnow())),
    )
    return outcome


# --- CRUD -------------------------------------------------------------------------------


def test_create_read_update_delete(crm):
    api, _, _ = crm
    created = api.post("/customers", json=HUADONG)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["name"] == "华东冷链物流有限公司"
    assert body["contacts"][0]["email"] == "Zhang.Wei@HuaDong.cn"
    # Rates come back as exact decimal strings, whatever form they were sent in.
    assert [body[k] for k in ("storage_per_tonne_day", "handling_in_per_piece")] == ["1.25", "0.50"]
    assert [body[k] for k in ("handling_out_per_piece", "minimum_monthly_charge")] == [
        "0.75",
        "3000.00",
    ]
    assert api.get("/customers/HD-001").get_json() == body

    changed = api.patch(
        "/customers/HD-001", json={"name": "华东冷链", "storage_per_tonne_day": "2"}
    )
    assert changed.status_code == 200
    after = changed.get_json()
    assert (after["name"], after["storage_per_tonne_day"]) == ("华东冷链", "2.00")
    assert after["contacts"] == body["contacts"]  # left out: unchanged
    assert after["contracts"] == body["contracts"]

    assert api.delete("/customers/HD-001").status_code == 204
    assert api.get("/customers/HD-001").status_code == 404
    assert api.delete("/customers/HD-001").status_code == 404


def test_largest_rates_survive_exactly(crm):
    api, _, _ = crm
    top = {
        "code": "top",
        "name": "上限",
        "storage_per_tonne_day": "9999.9999",
        "handling_in_per_piece": "10000",
        "handling_out_per_piece": "0.0001",
        "minimum_monthly_charge": "99999999.99",
    }
    assert api.post("/customers", json=top).status_code == 201
    got = api.get("/customers/top").get_json()
    assert [got[k] for k in list(top)[2:]] == ["9999.9999", "10000.00", "0.0001", "99999999.99"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "code"),
        ({"code": "a"}, "name"),
        ({"code": "a b", "name": "x"}, "code"),
        ({"code": ".", "name": "x"}, "code"),
        ({"code": "export.csv", "name": "x"}, "code"),
        ({"code": "x" * 65, "name": "x"}, "code"),
        ({"code": "a", "name": "   "}, "name"),
        ({"code": "a", "name": "x\x00y"}, "name"),
        ({"code": "a", "name": "x" * 201}, "name"),
        ({"code": "a", "name": "x", "storage_per_tonne_day": "-1"}, "storage_per_tonne_day"),
        ({"code": "a", "name": "x", "storage_per_tonne_day": "1.23456"}, "storage_per_tonne_day"),
        ({"code": "a", "name": "x", "handling_in_per_piece": "10000.01"}, "handling_in_per_piece"),
        ({"code": "a", "name": "x", "minimum_monthly_charge": "1.001"}, "minimum_monthly_charge"),
        ({"code": "a", "name": "x", "minimum_monthly_charge": True}, "minimum_monthly_charge"),
        ({"code": "a", "name": "x", "minimum_monthly_charge": "1e3"}, "minimum_monthly_charge"),
        ({"code": "a", "name": "x", "contacts": {}}, "contacts"),
        ({"code": "a", "name": "x", "contacts": [{"phone": "1"}]}, "contacts[0].name"),
        (
            {"code": "a", "name": "x", "contacts": [{"name": "n", "email": "no"}]},
            "contacts[0].email",
        ),
        ({"code": "a", "name": "x", "contacts": [{"name": "n", "fax": "1"}]}, "contacts[0].fax"),
        ({"code": "a", "name": "x", "contacts": [{"name": "n"}] * 21}, "contacts"),
        (
            {"code": "a", "name": "x", "contracts": [{"number": "1", "starts": "2026-02-30"}]},
            "contracts[0].starts",
        ),
        (
            {
                "code": "a",
                "name": "x",
                "contracts": [{"number": "1", "starts": "2026-02-01", "ends": "2026-01-01"}],
            },
            "contracts[0].ends",
        ),
        ({"code": "a", "name": "x", "deleted_at": None}, "deleted_at"),
    ],
)
def test_invalid_fields_are_422_with_the_field(crm, body, field):
    api, _, _ = crm
    response = api.post("/customers", json=body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["details"]["field"] == field


def test_malformed_taken_immutable_and_unknown(crm):
    api, _, _ = crm
    assert api.post("/customers", data="{", content_type="application/json").status_code == 400
    assert api.post("/customers", json=["HD-001"]).status_code == 400
    assert api.post("/customers", json=HUADONG).status_code == 201
    taken = api.post("/customers", json={"code": "HD-001", "name": "again"})
    assert (taken.status_code, taken.get_json()["error"]["code"]) == (409, "code_taken")
    moved = api.patch("/customers/HD-001", json={"code": "HD-002"})
    assert moved.status_code == 422
    assert moved.get_json()["error"]["details"]["field"] == "code"
    assert api.patch("/customers/HD-001", json={"code": "HD-001"}).status_code == 200
    assert api.patch("/customers/nobody", json={"name": "x"}).status_code == 404
    assert api.get("/customers/no%20such").status_code == 404
    assert api.post("/customers/nobody/notes", json={"text": "hi"}).status_code == 404
    assert api.get("/customers/nobody/timeline").status_code == 404


HOSTILE = [
    "\x00",
    "%",
    "_",
    "' OR 1=1 --",
    "\\",
    "🙂" * 50,
    "a" * 101,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_never_reaches_a_500(crm, text):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    for response in (
        api.get("/customers", query_string={"q": text}),
        api.get("/customers", query_string={"cursor": text}),
        api.get(f"/customers/HD-001/timeline?cursor={text}"),
        api.get("/customers/HD-001/notes", query_string={"cursor": text}),
        api.post("/customers", json={"code": text, "name": text}),
        api.patch("/customers/HD-001", json={"name": text, "contacts": [{"name": text}]}),
        api.post("/customers/HD-001/notes", json={"text": text}),
        api.post("/customers/import", data=text.encode(), content_type="text/csv"),
    ):
        assert response.status_code < 500, response.get_json()


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/customers", 2**70),
        ("/customers", "a\x00b"),
        ("/customers", ["a"]),
        ("/customers/HD-001/notes", 2**70),
        ("/customers/HD-001/notes", -1),
        ("/customers/HD-001/notes", True),
        ("/customers/HD-001/timeline", ["2026-11-26T01:00:00+00:00", 0, 2**70]),
        ("/customers/HD-001/timeline", ["2026-11-26T01:00:00+00:00", 7, 1]),
        ("/customers/HD-001/timeline", ["2026-11-26T01:00:00", 0, 1]),
        ("/customers/HD-001/timeline", ["tomorrow", 0, 1]),
        ("/customers/HD-001/timeline", [None, 0, 1]),
        ("/customers/HD-001/timeline", {"at": 1}),
    ],
)
def test_forged_cursors_are_400(crm, path, cursor):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    # Built by hand: a forged cursor need not be something our encoder would write.
    forged = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")
    response = api.get(path, query_string={"cursor": forged})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"


# --- search and pages -------------------------------------------------------------------


def test_search_code_name_contacts_chinese_and_phone(crm):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    api.post(
        "/customers",
        json={
            "code": "BJ-7",
            "name": "北方粮油",
            "contacts": [{"name": "王芳", "phone": "010 6666 7777", "email": "wf@beifang.cn"}],
        },
    )
    api.post("/customers", json={"code": "x_100", "name": "100% Percent & Co"})

    def codes(q):
        response = api.get("/customers", query_string={"q": q})
        assert response.status_code == 200
        return sorted(i["code"] for i in response.get_json()["items"])

    assert codes("") == ["BJ-7", "HD-001", "x_100"]
    assert codes("冷链") == ["HD-001"]  # Chinese in the name
    assert codes("张伟") == ["HD-001"]  # Chinese contact name (stored \u-escaped in JSON)
    assert codes("王") == ["BJ-7"]
    assert codes("0013-80") == ["HD-001"]  # phone substring as written
    assert codes("13800138") == ["HD-001"]  # and digits only, separators ignored
    assert codes("6666 77") == ["BJ-7"]
    assert codes("ZHANG.WEI@huadong") == ["HD-001"]  # case-insensitive email
    assert codes("hd-0") == ["HD-001"]  # case-insensitive code
    assert codes("percent") == ["x_100"]
    assert codes("%") == ["x_100"]  # LIKE wildcards are matched literally
    assert codes("_") == ["x_100"]
    assert codes("nobody") == []


def test_list_pages_by_code(crm):
    api, _, _ = crm
    for i in range(7):
        assert api.post("/customers", json={"code": f"c{i}", "name": f"货主{i}"}).status_code == 201
    seen, cursor = [], None
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get("/customers", query_string=query).get_json()
        assert page["total"] == 7
        seen += [i["code"] for i in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"c{i}" for i in range(7)]


def test_soft_delete_keeps_the_code_taken(crm):
    api, engine, _ = crm
    api.post("/customers", json=HUADONG)
    api.post("/customers/HD-001/notes", json={"text": "将停止合作"})
    assert api.delete("/customers/HD-001").status_code == 204
    assert api.get("/customers").get_json()["total"] == 0
    assert api.get("/customers", query_string={"q": "华东"}).get_json()["items"] == []
    for response in (
        api.get("/customers/HD-001"),
        api.patch("/customers/HD-001", json={"name": "x"}),
        api.get("/customers/HD-001/notes"),
        api.post("/customers/HD-001/notes", json={"text": "x"}),
        api.get("/customers/HD-001/timeline"),
    ):
        assert response.status_code == 404
    again = api.post("/customers", json={"code": "HD-001", "name": "新华东"})
    assert again.status_code == 409
    assert "deleted" in again.get_json()["error"]["message"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(customers).where(customers.c.code == "HD-001")).one()
    assert row.deleted_at is not None and row.name == "华东冷链物流有限公司"


# --- notes and timeline -----------------------------------------------------------------


def test_notes_are_appended_with_author_newest_first(crm):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    for text in ("首次拜访", "报价已发送", "合同签订"):
        response = api.post("/customers/HD-001/notes", json={"text": text})
        assert response.status_code == 201
        assert response.get_json()["author"] == "boss@acme.test"
    page = api.get("/customers/HD-001/notes", query_string={"limit": 2}).get_json()
    assert page["total"] == 3
    assert [n["text"] for n in page["items"]] == ["合同签订", "报价已发送"]
    rest = api.get("/customers/HD-001/notes", query_string={"cursor": page["next"]}).get_json()
    assert [n["text"] for n in rest["items"]] == ["首次拜访"]
    assert rest["next"] is None
    for bad in ({}, {"text": "  "}, {"text": 5}, {"text": "x", "pinned": True}):
        assert api.post("/customers/HD-001/notes", json=bad).status_code == 422


def test_timeline_merges_movements_and_notes_newest_first(crm):
    api, engine, _ = crm
    api.post("/customers", json=HUADONG)
    api.post("/customers", json={"code": "other", "name": "别家"})
    now = utcnow()
    ingest(
        engine,
        "acme",
        "sh-01",
        "edge-a",
        [
            (1, "HD-001", now - timedelta(hours=3)),
            (2, "other", now - timedelta(hours=2, minutes=30)),
            (3, "HD-001", now - timedelta(hours=2)),
            (4, "HD-001", now - timedelta(hours=1)),
        ],
    )
    # Another tenant's movement for the same code must never show.
    ingest(engine, "bright", "bj-01", "edge-b", [(1, "HD-001", now - timedelta(minutes=5))])
    old = api.post("/customers/HD-001/notes", json={"text": "旧备注"}).get_json()
    api.post("/customers/HD-001/notes", json={"text": "新备注"})
    with engine.begin() as conn:  # back-date one note between two movements
        conn.execute(
            customer_notes.update()
            .where(customer_notes.c.id == old["id"])
            .values(created_at=now - timedelta(hours=2, minutes=30))
        )

    def label(item):
        return item["note"]["text"] if item["kind"] == "note" else item["movement"]["qty"]

    full = api.get("/customers/HD-001/timeline").get_json()
    assert full["total"] == 5
    assert [label(i) for i in full["items"]] == ["新备注", 4, 3, "旧备注", 1]
    assert full["items"][1]["movement"]["warehouse"] == "sh-01"
    stamps = [i["at"] for i in full["items"]]
    assert stamps == sorted(stamps, reverse=True)

    paged, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get("/customers/HD-001/timeline", query_string=query).get_json()
        paged += [label(i) for i in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert paged == ["新备注", 4, 3, "旧备注", 1]
    assert api.get("/customers/HD-001/timeline?cursor=WzFd").status_code == 400


def test_timeline_ties_at_the_same_instant_page_without_loss(crm):
    api, engine, _ = crm
    api.post("/customers", json=HUADONG)
    moment = utcnow() - timedelta(hours=1)
    ingest(engine, "acme", "sh-01", "edge-a", [(s, "HD-001", moment) for s in range(1, 6)])
    for i in range(3):
        api.post("/customers/HD-001/notes", json={"text": f"n{i}"})
    with engine.begin() as conn:
        conn.execute(customer_notes.update().values(created_at=moment))
    seen, cursor = [], None
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get("/customers/HD-001/timeline", query_string=query).get_json()
        seen += [(i["kind"], (i.get("note") or i.get("movement"))["id"]) for i in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8


# --- CSV --------------------------------------------------------------------------------

TRICKY = [
    HUADONG,
    {
        "code": "q.1",
        "name": '逗号, "引号" 和\n换行',
        "contacts": [{"name": "=HYPERLINK(1)", "phone": "+86-10", "email": "a@b.cn", "role": "'@"}],
        "storage_per_tonne_day": "0.0001",
    },
    {"code": "z.dash-", "name": "-减号开头 no contact", "minimum_monthly_charge": "12.5"},
]


def export(api, who="acme", lang="zh"):
    response = api.get("/customers/export.csv", who=who, query_string={"lang": lang})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return response.data


def import_csv(api, data, who="acme", content_type="text/csv"):
    return api.post("/customers/import", who=who, data=data, content_type=content_type)


def comparable(api, who):
    """What the CSV carries of each customer: code, name, first contact, rate card."""
    items = api.get("/customers", who=who).get_json()["items"]
    keep = ("code", "name", "storage_per_tonne_day", "handling_in_per_piece")
    keep += ("handling_out_per_piece", "minimum_monthly_charge")
    return [{k: i[k] for k in keep} | {"contact": i["contacts"][:1]} for i in items]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_csv_round_trip_between_tenants(crm, lang):
    api, _, _ = crm
    for customer in TRICKY:
        assert api.post("/customers", json=customer).status_code == 201
    data = export(api, lang=lang)
    assert data.startswith(BOM)
    first_line = data[3:].split(b"\r\n", 1)[0].decode()
    assert first_line.startswith("货主编码,货主名称" if lang == "zh" else "code,name")
    assert b"'=HYPERLINK" in data  # formula-looking cells are defused for Excel

    imported = import_csv(api, data, who="bright")
    assert imported.status_code == 200, imported.get_json()
    assert imported.get_json() == {"created": 3, "updated": 0}
    assert comparable(api, "bright") == comparable(api, "acme")
    assert export(api, who="bright", lang=lang) == data

    # Importing its own export changes nothing and keeps contacts beyond the first.
    again = import_csv(api, data)
    assert again.get_json() == {"created": 0, "updated": 3}
    assert api.get("/customers/HD-001").get_json()["contacts"] == HUADONG["contacts"]
    assert api.get("/customers/HD-001").get_json()["contracts"] == HUADONG["contracts"]


def test_import_with_bad_rows_writes_nothing_and_names_the_rows(crm):
    api, engine, _ = crm
    api.post("/customers", json=HUADONG)
    rows = [
        ZH_HEADER,
        "ok-1,好货主,,,,,1,1,1,100",
        "bad code,坏编码,,,,,1,1,1,100",  # row 3
        "ok-2,,,,,,1,1,1,100",  # row 4: no name
        "ok-3,负数,,,,,-1,1,1,100",  # row 5
        "ok-1,重复,,,,,1,1,1,100",  # row 6: duplicate of row 2
        "HD-001,更新,联系人,138,not-an-email,,1,1,1,100",  # row 7
        "ok-4,多列,,,,,1,1,1,100,extra",  # row 8
    ]
    before = export(api)
    response = import_csv(api, "\n".join(rows).encode())
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_rows"
    listed = {(r["row"], r["field"]) for r in error["details"]["rows"]}
    assert listed == {
        (3, "code"),
        (4, "name"),
        (5, "storage_per_tonne_day"),
        (6, "code"),
        (7, "contact_email"),
        (8, "row"),
    }
    assert error["details"]["error_count"] == 6
    assert export(api) == before
    with engine.connect() as conn:
        imports = conn.execute(
            sa.select(sa.func.count()).where(audit_log.c.action == "customer.imported")
        ).scalar_one()
    assert imports == 0


def test_import_lists_at_most_fifty_errors(crm):
    api, _, _ = crm
    data = "code,name\n" + "\n".join(f"bad code {i},x" for i in range(80))
    error = import_csv(api, data.encode()).get_json()["error"]
    assert error["details"]["error_count"] == 80
    assert len(error["details"]["rows"]) == 50
    assert error["details"]["rows"][0]["row"] == 2


def test_import_accepts_english_chinese_gbk_and_loose_headers(crm):
    api, _, _ = crm
    english = "Code,Name,Contact Name,contact_phone,storage_per_tonne_day\nen-1,Eng,Ann,138,2.5\n"
    assert import_csv(api, english.encode()).get_json() == {"created": 1, "updated": 0}
    # Full-width parentheses and a unit-less header, as people type them; GB18030 as a
    # Chinese Excel saves "CSV (逗号分隔)"; blank trailing rows.
    chinese = "货主名称,货主编码,仓储费（元/吨·天）,月最低收费\r\n广州仓配,gz-1,0.8,500\r\n,,,\r\n"
    response = import_csv(api, chinese.encode("gb18030"), content_type="application/vnd.ms-excel")
    assert response.get_json() == {"created": 1, "updated": 0}
    got = api.get("/customers/gz-1").get_json()
    assert (got["name"], got["storage_per_tonne_day"], got["minimum_monthly_charge"]) == (
        "广州仓配",
        "0.80",
        "500.00",
    )
    # Columns absent from a file leave an existing customer's values alone.
    assert import_csv(api, "code,name\ngz-1,广州仓配二部\n".encode()).status_code == 200
    got = api.get("/customers/gz-1").get_json()
    assert (got["name"], got["storage_per_tonne_day"]) == ("广州仓配二部", "0.80")
    assert api.get("/customers/en-1").get_json()["contacts"] == [
        {"name": "Ann", "phone": "138", "email": "", "role": ""}
    ]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"", "text/csv", 400, "invalid_csv"),
        (BOM, "text/csv", 400, "invalid_csv"),
        (b"\xff\xfe\x00\x00" * 10, "text/csv", 400, "invalid_csv"),
        ("编码,名称\n1,2\n".encode(), "text/csv", 422, "invalid_header"),
        (b"code,code,name\n", "text/csv", 422, "invalid_header"),
        (b"name\nx\n", "text/csv", 422, "invalid_header"),
        (b"code,name\na,b\n", "application/json", 415, "unsupported_media_type"),
        (b"code,name\n" + b"a,b\n" * (5 * 1024 * 1024 // 4 + 1), "text/csv", 413, None),
    ],
)
def test_import_file_problems(crm, data, content_type, status, code):
    api, _, _ = crm
    response = import_csv(api, data, content_type=content_type)
    assert response.status_code == status, response.get_json()
    if code:
        assert response.get_json()["error"]["code"] == code


def test_import_refuses_codes_of_deleted_customers(crm):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    api.delete("/customers/HD-001")
    response = import_csv(api, "code,name\nnew-1,新\nHD-001,复活\n".encode())
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["rows"][0]["row"] == 3
    assert api.get("/customers/new-1").status_code == 404


# --- tenants, roles, audit --------------------------------------------------------------


def test_another_tenant_can_neither_see_nor_touch(crm):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    api.post("/customers/HD-001/notes", json={"text": "机密"})
    assert api.get("/customers", who="bright").get_json()["total"] == 0
    assert api.get("/customers", who="bright", query_string={"q": "华东"}).get_json()["total"] == 0
    assert b"HD-001" not in export(api, who="bright")
    for method, path, body in (
        ("GET", "/customers/HD-001", None),
        ("PATCH", "/customers/HD-001", {"name": "偷改"}),
        ("DELETE", "/customers/HD-001", None),
        ("GET", "/customers/HD-001/notes", None),
        ("POST", "/customers/HD-001/notes", {"text": "x"}),
        ("GET", "/customers/HD-001/timeline", None),
    ):
        response = api.call(method, path, who="bright", json=body)
        assert response.status_code == 404, (method, path)
    assert api.get("/customers/HD-001").get_json()["name"] == HUADONG["name"]
    assert api.get("/customers/HD-001/notes").get_json()["total"] == 1
    # The same code is free in the other tenant.
    assert api.post("/customers", who="bright", json=HUADONG).status_code == 201


def resolved(spec, schema):
    """A schema, or the component its ``$ref`` names (declared bodies are components)."""
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_every_documented_customer_endpoint_is_closed_to_other_tenants(crm):
    api, _, _ = crm
    api.post("/customers", json=HUADONG)
    spec = api.get("/openapi.json").get_json()
    walked = 0
    for path, operations in spec["paths"].items():
        if "{code}" not in path or not path.startswith("/api/v1/customers"):
            continue
        for method, operation in operations.items():
            body = None
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                schema = resolved(spec, schema)
                body = {name: "x" for name in schema.get("required", [])}
            url = path.replace("/api/v1", "").replace("{code}", "HD-001")
            response = api.call(method.upper(), url, who="bright", json=body)
            assert response.status_code in (403, 404), (method, path, response.status_code)
            walked += 1
    assert walked == 6


def test_viewer_and_read_only_key_cannot_write(crm):
    api, engine, _ = crm
    api.post("/customers", json=HUADONG)
    # Made in the store: issuing keys over HTTP depends on the tenant's licensed edition.
    admin = accounts.caller_for_token(engine, api.tokens["acme"])
    api.tokens["key"], _ = accounts.TenantAccounts(engine, admin.tenant_id).create_api_key(
        name="bi",
        role="admin",
        scopes=["customers:read"],
        expires_at=utcnow() + timedelta(days=1),
        caller=admin,
        ip="",
    )
    for who in ("viewer", "key"):
        assert api.get("/customers/HD-001", who=who).status_code == 200
        assert api.get("/customers/export.csv", who=who).status_code == 200
        for method, path, kwargs in (
            ("POST", "/customers", {"json": {"code": "v", "name": "v"}}),
            ("PATCH", "/customers/HD-001", {"json": {"name": "v"}}),
            ("DELETE", "/customers/HD-001", {}),
            ("POST", "/customers/HD-001/notes", {"json": {"text": "v"}}),
            (
                "POST",
                "/customers/import",
                {"data": b"code,name\nv,v\n", "content_type": "text/csv"},
            ),
        ):
            response = api.call(method, path, who=who, **kwargs)
            assert response.status_code == 403, (who, method, path)
            assert response.get_json()["error"]["details"]["permission"] == "customers:write"
    assert api.get("/customers").get_json()["total"] == 1


def test_every_change_is_audited(crm):
    api, engine, _ = crm
    api.post("/customers", json=HUADONG)
    api.patch("/customers/HD-001", json={"handling_in_per_piece": "0.6"})
    api.patch("/customers/HD-001", json={"handling_in_per_piece": "0.6"})  # no change: no entry
    api.post("/customers/HD-001/notes", json={"text": "记一笔"})
    import_csv(api, b"code,name\nnew-1,New\n")
    api.delete("/customers/HD-001")
    entries = api.get("/audit", query_string={"action": "customer."}).get_json()["items"]
    assert [e["action"] for e in reversed(entries)] == [
        "customer.created",
        "customer.updated",
        "customer.note_added",
        "customer.imported",
        "customer.deleted",
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["customer.updated"]["details"] == {
        "before": {"handling_in_per_piece": "0.50"},
        "after": {"handling_in_per_piece": "0.60"},
    }
    assert by_action["customer.imported"]["details"] == {"created": 1, "updated": 0}
    assert {e["actor"] for e in entries} == {"boss@acme.test"}
    assert {e["target"] for e in entries} == {"customer:HD-001", "customer:customers"}
    assert (
        api.get("/audit", who="bright", query_string={"action": "customer."}).get_json()["total"]
        == 0
    )


def test_openapi_documents_crm_request_schemas(crm):
    api, _, _ = crm
    spec = api.get("/openapi.json").get_json()
    paths = spec["paths"]
    create = paths["/api/v1/customers"]["post"]["requestBody"]["content"]["application/json"]
    assert resolved(spec, create["schema"])["required"] == ["code", "name"]
    assert resolved(spec, create["schema"])["additionalProperties"] is False
    patch = paths["/api/v1/customers/{code}"]["patch"]["requestBody"]["content"]
    assert "code" not in resolved(spec, patch["application/json"]["schema"])["properties"]
    assert "text/csv" in paths["/api/v1/customers/import"]["post"]["requestBody"]["content"]
    assert "text/csv" in paths["/api/v1/customers/export.csv"]["get"]["responses"]["200"]["content"]
    code = paths["/api/v1/customers/{code}"]["get"]["parameters"][0]
    assert (code["in"], code["schema"]["type"]) == ("path", "string")


# --- CLI --------------------------------------------------------------------------------


def write_config(settings, tmp_path) -> str:
    path = tmp_path / "cloud.toml"
    path.write_text(dump_settings(settings), encoding="utf-8")
    return str(path)


def big_csv(path: Path, rows: int, *, bad_row: int | None = None) -> None:
    lines = [ZH_HEADER]
    for i in range(rows):
        code = "bad code" if bad_row is not None and i + 2 == bad_row else f"OWN-{i:06d}"
        lines.append(
            f'{code},"货主 {i}, 有限公司",联系人{i},138000{i:05d},o{i}@x.cn,,1.5,0.2,0.3,100'
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def test_cli_import_of_twenty_thousand_rows_is_all_or_nothing(crm, tmp_path):
    api, engine, settings = crm
    config = write_config(settings, tmp_path)
    runner = CliRunner()
    broken = tmp_path / "broken.csv"
    big_csv(broken, 20_000, bad_row=15_000)
    failed = runner.invoke(
        main, ["cloud", "customers", "import", "--config", config, "--tenant", "acme", str(broken)]
    )
    assert failed.exit_code != 0
    assert "row 15000: code" in failed.output
    assert "nothing was imported" in failed.output
    assert api.get("/customers").get_json()["total"] == 0

    good = tmp_path / "good.csv"
    big_csv(good, 20_000)
    done = runner.invoke(
        main, ["cloud", "customers", "import", "--config", config, "--tenant", "acme", str(good)]
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["created"], summary["updated"]) == (20_000, 20_000, 0)
    assert api.get("/customers").get_json()["total"] == 20_000
    found = api.get("/customers", query_string={"q": "13800001234"}).get_json()["items"]
    assert [c["code"] for c in found] == ["OWN-001234"]

    again = runner.invoke(
        main, ["cloud", "customers", "import", "--config", config, "--tenant", "acme", str(good)]
    )
    assert json.loads(again.stdout)["updated"] == 20_000

    out = tmp_path / "out.csv"
    exported = runner.invoke(
        main, ["cloud", "customers", "export", "--config", config, "--tenant", "acme", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    assert out.read_bytes() == export(api)
    assert len(out.read_bytes().split(b"\r\n")) == 20_002  # header, rows, final newline


def test_cli_reports_unknown_tenant_and_bad_file(crm, tmp_path):
    _, _, settings = crm
    config = write_config(settings, tmp_path)
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("货号,名称\n", encoding="utf-8")
    runner = CliRunner()
    nobody = runner.invoke(
        main, ["cloud", "customers", "export", "--config", config, "--tenant", "nobody"]
    )
    assert nobody.exit_code != 0 and "nobody" in nobody.output
    header = runner.invoke(
        main,
        ["cloud", "customers", "import", "--config", config, "--tenant", "acme", str(csv_file)],
    )
    assert header.exit_code != 0 and "unknown column" in header.output
