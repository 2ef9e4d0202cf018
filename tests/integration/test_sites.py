"""仓库管理 on real databases through the Flask test client: warehouses, zones, locations and
their labels, devices; roles, tenant isolation and the audit log. The label PDFs are checked
by decoding every printed symbol with zxing-cpp."""

from __future__ import annotations

import math
import re
import tomllib

import pytest
import sqlalchemy as sa
import zxingcpp

from cloud_api import provisioning
from cloud_api.accounts import store as accounts
from cloud_api.platform.schema import audit_log, locations
from cloud_api.sites import api as api_sites
from cloud_api.sites import labels as location_labels
from cloud_api.sites import registry
from cloud_api.sites.labels import Axis, GridError, Label, LabelError

API = "/api/v1"


@pytest.fixture
def sites(cloud):
    """The shared cloud with tenants acme and bright, each with its provisioning key and a
    viewer's key, called as one of them."""
    tokens = {}
    for tenant in ("acme", "bright"):
        tokens[tenant] = provisioning.create_tenant(cloud.engine, tenant, tenant.title()).token
        tenant_id = registry.tenant_by_code(cloud.engine, tenant)["id"]
        tokens[f"{tenant}-viewer"] = accounts.create_api_key(
            cloud.engine, tenant_id, "viewer", name="viewer", actor="test"
        )
    with cloud.app.test_client() as client:
        yield Sites(client, tokens, cloud.engine, cloud.settings)


class Sites:
    def __init__(self, client, tokens, engine, settings) -> None:
        self.client = client
        self.tokens = tokens
        self.engine = engine
        self.settings = settings

    def call(self, method, path, json=None, *, as_="acme", **kwargs):
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"}
        return self.client.open(API + path, method=method, json=json, headers=headers, **kwargs)

    def ok(self, method, path, json=None, *, status=200, as_="acme"):
        response = self.call(method, path, json, as_=as_)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def audit(self, tenant="acme", action=""):
        tenant_id = registry.tenant_by_code(self.engine, tenant)["id"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_log.c.action, audit_log.c.target, audit_log.c.details)
                .where(audit_log.c.tenant_id == tenant_id, audit_log.c.action.like(f"{action}%"))
                .order_by(audit_log.c.id)
            )
            return [tuple(r) for r in rows]


def error(response):
    return response.status_code, response.get_json()["error"]["code"]


@pytest.fixture
def site(sites):
    """acme's warehouse sh-01 with a storage zone and a cold zone."""
    sites.ok(
        "POST",
        "/warehouses",
        {"code": "sh-01", "name": "嘉定一号库", "address": "上海市嘉定区", "area_m2": 120.5},
        status=201,
    )
    sites.ok("POST", "/warehouses/sh-01/zones", {"code": "AMB", "name": "常温区"}, status=201)
    sites.ok(
        "POST",
        "/warehouses/sh-01/zones",
        {"code": "COLD", "name": "冷藏区", "kind": "cold"},
        status=201,
    )
    return sites


# --- warehouses -------------------------------------------------------------------------


def test_warehouse_create_read_update_and_audit(site):
    got = site.ok("GET", "/warehouses/sh-01")
    assert got | {"created_at": None} == {
        "code": "sh-01",
        "name": "嘉定一号库",
        "address": "上海市嘉定区",
        "area_m2": 120.5,
        "zones": 2,
        "locations": 0,
        "devices": 0,
        "created_at": None,
    }
    listed = site.ok("GET", "/warehouses")
    assert (listed["total"], listed["next"], listed["items"][0]["code"]) == (1, None, "sh-01")

    changed = site.ok("PATCH", "/warehouses/sh-01", {"area_m2": 99.99, "name": "嘉定库"})
    assert (changed["area_m2"], changed["name"], changed["address"]) == (
        99.99,
        "嘉定库",
        "上海市嘉定区",
    )
    assert site.ok("PATCH", "/warehouses/sh-01", {"area_m2": None})["area_m2"] is None
    site.ok("PATCH", "/warehouses/sh-01", {"name": "嘉定库"})  # no change: no audit entry

    assert site.audit(action="warehouse") == [
        (
            "warehouse.created",
            "warehouse:sh-01",
            {"name": "嘉定一号库", "address": "上海市嘉定区", "area_m2": 120.5},
        ),
        (
            "warehouse.updated",
            "warehouse:sh-01",
            {
                "before": {"area_m2": 120.5, "name": "嘉定一号库"},
                "after": {"area_m2": 99.99, "name": "嘉定库"},
            },
        ),
        (
            "warehouse.updated",
            "warehouse:sh-01",
            {"before": {"area_m2": 99.99}, "after": {"area_m2": None}},
        ),
    ]


@pytest.mark.parametrize("good", [0.01, 100, 1_000_000, 0.1 + 0.2])
def test_business_area_accepts_positive_cents_up_to_a_million(sites, good):
    created = sites.ok(
        "POST", "/warehouses", {"code": "w", "name": "W", "area_m2": good}, status=201
    )
    assert created["area_m2"] == round(good, 2)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (0, "invalid_area"),
        (-5, "invalid_area"),
        (1_000_000.01, "invalid_area"),
        (100.001, "invalid_area"),
        ("120", "invalid_field"),  # not a number at all
        (True, "invalid_field"),
        ([1], "invalid_field"),
        (10**30, "invalid_area"),
    ],
)
def test_business_area_refuses_anything_else(sites, bad, code):
    response = sites.call("POST", "/warehouses", {"code": "w", "name": "W", "area_m2": bad})
    assert error(response) == (422, code)
    assert response.get_json()["error"]["details"] == {"field": "area_m2"}
    assert sites.ok("GET", "/warehouses")["total"] == 0


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"code": "sh-01", "name": "again"}, 409, "code"),
        ({"code": "sh 02", "name": "W"}, 422, "code"),
        ({"code": "sh-02\n", "name": "W"}, 422, "code"),
        ({"code": "sh-02", "name": "   "}, 422, "name"),
        ({"code": "sh-02", "name": "W\x00"}, 422, "name"),
        ({"code": "sh-02", "name": "W" * 201}, 422, "name"),
        ({"code": "sh-02"}, 422, "name"),
        ({"code": "sh-02", "name": "W", "colour": "red"}, 422, "colour"),
    ],
)
def test_warehouse_errors_name_the_field(site, payload, status, field):
    response = site.call("POST", "/warehouses", payload)
    assert response.status_code == status
    assert response.get_json()["error"]["details"]["field"] == field


def test_malformed_bodies_are_400(site):
    for path in ("/warehouses", "/warehouses/sh-01/zones", "/devices"):
        response = site.call("POST", path, data="{", content_type="application/json")
        assert error(response) == (400, "invalid_json")
        assert error(site.call("POST", path, [1, 2])) == (400, "invalid_body")


# --- zones and locations ----------------------------------------------------------------


def test_zones(site):
    zones = site.ok("GET", "/warehouses/sh-01/zones")["items"]
    assert [(z["code"], z["name"], z["kind"], z["locations"]) for z in zones] == [
        ("AMB", "常温区", "storage", 0),
        ("COLD", "冷藏区", "cold", 0),
    ]
    again = site.call("POST", "/warehouses/sh-01/zones", {"code": "AMB", "name": "x"})
    assert error(again) == (409, "already_exists")
    bad = site.call("POST", "/warehouses/sh-01/zones", {"code": "Z", "name": "Z", "kind": "attic"})
    assert (error(bad), bad.get_json()["error"]["details"]) == (
        (422, "invalid_field"),
        {"field": "kind"},
    )
    assert [a[:2] for a in site.audit(action="zone")] == [
        ("zone.created", "zone:sh-01/AMB"),
        ("zone.created", "zone:sh-01/COLD"),
    ]


def test_one_location_with_and_without_zone(site):
    made = site.ok(
        "POST", "/warehouses/sh-01/locations", {"code": "R-01", "zone": "COLD"}, status=201
    )
    assert (made["code"], made["zone"], made["name"]) == ("R-01", "COLD", "")
    site.ok("POST", "/warehouses/sh-01/locations", {"code": "DOCK-1", "name": "月台"}, status=201)
    clash = site.call("POST", "/warehouses/sh-01/locations", {"code": "R-01"})
    assert error(clash) == (409, "locations_exist")
    assert clash.get_json()["error"]["details"]["existing"] == ["R-01"]
    nowhere = site.call("POST", "/warehouses/sh-01/locations", {"code": "R-02", "zone": "ATTIC"})
    assert (error(nowhere), nowhere.get_json()["error"]["details"]) == (
        (422, "unknown_zone"),
        {"field": "zone"},
    )
    assert site.ok("GET", "/warehouses/sh-01")["locations"] == 2


def grid(aisles=("A", "C"), racks=("01", "20"), levels=("1", "4"), **extra):
    body = {
        "aisles": {"from": aisles[0], "to": aisles[1]},
        "racks": {"from": racks[0], "to": racks[1]},
        "levels": {"from": levels[0], "to": levels[1]},
    }
    return body | extra


def test_bulk_grid_makes_every_code_once(site):
    made = site.ok("POST", "/warehouses/sh-01/locations/bulk", grid(zone="AMB"), status=201)
    assert made == {"created": 3 * 20 * 4, "first": "A-01-1", "last": "C-20-4"}
    zones = {z["code"]: z["locations"] for z in site.ok("GET", "/warehouses/sh-01/zones")["items"]}
    assert zones == {"AMB": 240, "COLD": 0}
    codes, cursor = [], None
    while True:
        query = "?limit=70" + (f"&cursor={cursor}" if cursor else "")
        page = site.ok("GET", f"/warehouses/sh-01/locations{query}")
        assert page["total"] == 240
        codes += [item["code"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert codes[:5] == ["A-01-1", "A-01-2", "A-01-3", "A-01-4", "A-02-1"]
    assert codes == sorted(codes) and len(set(codes)) == 240
    assert site.audit(action="locations") == [
        (
            "locations.generated",
            "warehouse:sh-01",
            {"zone": "AMB", "count": 240, "first": "A-01-1", "last": "C-20-4"},
        )
    ]


def test_bulk_is_all_or_nothing(site):
    site.ok("POST", "/warehouses/sh-01/locations", {"code": "D-02-2"}, status=201)
    response = site.call("POST", "/warehouses/sh-01/locations/bulk", grid(("C", "E"), ("01", "03")))
    assert error(response) == (409, "locations_exist")
    assert response.get_json()["error"]["details"] == {"existing": ["D-02-2"], "count": 1}
    assert site.ok("GET", "/warehouses/sh-01/locations")["total"] == 1
    assert site.audit(action="locations") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (grid(("A", "Z"), ("01", "99"), ("1", "9")), "aisles"),  # 23,166 > 10,000
        (grid(("C", "A")), "aisles"),
        (grid(racks=("01", "B")), "racks"),
        (grid(levels=("1", "12345")), "levels"),
        (grid() | {"levels": {"from": "1"}}, "levels"),
        (grid(prefix="库"), "prefix"),
        (grid(separator="/"), "separator"),
        (grid(zone="ATTIC"), "zone"),
        ({"aisles": {"from": "A", "to": "B"}}, "racks"),
    ],
)
def test_bulk_refusals_name_the_field(site, body, field):
    response = site.call("POST", "/warehouses/sh-01/locations/bulk", body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["details"]["field"] == field
    assert site.ok("GET", "/warehouses/sh-01/locations")["total"] == 0


def test_bulk_at_the_cap_with_prefix_positions_and_separator(site):
    body = grid(("A", "E"), ("001", "500"), ("1", "2"), prefix="C", separator="")
    body["positions"] = {"from": "1", "to": "2"}
    made = site.ok("POST", "/warehouses/sh-01/locations/bulk", body, status=201)
    assert made == {"created": 10_000, "first": "CA00111", "last": "CE50022"}
    assert site.ok("GET", "/warehouses/sh-01")["locations"] == 10_000


def test_location_filters_by_zone_and_escaped_prefix(site):
    for code, zone in (("A_1", "AMB"), ("AB1", "AMB"), ("B-1", "COLD")):
        site.ok("POST", "/warehouses/sh-01/locations", {"code": code, "zone": zone}, status=201)

    def codes(query):
        return [i["code"] for i in site.ok("GET", f"/warehouses/sh-01/locations?{query}")["items"]]

    assert codes("prefix=A_") == ["A_1"]  # "_" is a literal, not a LIKE wildcard
    assert codes("prefix=A") == ["AB1", "A_1"]
    assert codes("zone=COLD") == ["B-1"]
    assert codes("zone=AMB&prefix=AB") == ["AB1"]
    assert codes("zone=NOPE") == []
    for bad in ("prefix=%25", "zone=a%20b", "cursor=@@", "limit=0", "cursor=NQ"):
        assert site.call("GET", f"/warehouses/sh-01/locations?{bad}").status_code == 400


def test_delete_location_is_audited(site):
    site.ok("POST", "/warehouses/sh-01/locations", {"code": "A-01-1"}, status=201)
    assert site.call("DELETE", "/warehouses/sh-01/locations/A-01-1").status_code == 204
    assert error(site.call("DELETE", "/warehouses/sh-01/locations/A-01-1")) == (404, "not_found")
    assert site.ok("GET", "/warehouses/sh-01/locations")["total"] == 0
    assert site.audit(action="location.deleted") == [
        ("location.deleted", "location:sh-01/A-01-1", {})
    ]


# --- labels -----------------------------------------------------------------------------


def decoded(sheet):
    """(placement code, texts zxing-cpp reads in that label's box) for every label."""
    found = []
    for number, page in enumerate(sheet.pages()):
        for placement in (p for p in sheet.placements if p.page == number):
            texts = [r.text for r in zxingcpp.read_barcodes(page.crop(placement.box))]
            found.append((placement.code, texts))
    return found


def page_objects(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


@pytest.mark.parametrize("symbology", ["code128", "datamatrix"])
def test_labels_pdf_decodes_to_each_location_code(site, monkeypatch, symbology):
    block = grid(("A", "B"), ("01", "05"), ("1", "3"), zone="AMB")
    site.ok("POST", "/warehouses/sh-01/locations/bulk", block, status=201)
    site.ok("POST", "/warehouses/sh-01/locations", {"code": "X-9", "zone": "COLD"}, status=201)
    sheets = []

    def keep(*args, **kwargs):
        sheets.append(location_labels.render_labels(*args, **kwargs))
        return sheets[-1]

    monkeypatch.setattr(api_sites, "render_labels", keep)
    response = site.call(
        "GET", f"/warehouses/sh-01/locations/labels.pdf?symbology={symbology}&zone=AMB"
    )
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    (sheet,) = sheets
    assert response.data == sheet.pdf
    expected = [f"{a}-{r:02d}-{lvl}" for a in "AB" for r in range(1, 6) for lvl in range(1, 4)]
    per_page = location_labels.COLUMNS * location_labels.ROWS
    assert sheet.page_count == page_objects(response.data) == math.ceil(30 / per_page) == 2
    assert len(list(sheet.pages())) == 2
    assert decoded(sheet) == [(code, [code]) for code in expected]

    prefixed = site.call(
        "GET", f"/warehouses/sh-01/locations/labels.pdf?symbology={symbology}&prefix=X"
    )
    assert prefixed.status_code == 200 and page_objects(prefixed.data) == 1
    assert decoded(sheets[-1]) == [("X-9", ["X-9"])]


def test_labels_refuse_more_than_the_cap_and_bad_parameters(site):
    block = grid(("A", "C"), ("001", "667"), ("1", "1"))
    site.ok("POST", "/warehouses/sh-01/locations/bulk", block, status=201)
    too_many = site.call("GET", "/warehouses/sh-01/locations/labels.pdf")
    assert error(too_many) == (422, "too_many_labels")
    assert too_many.get_json()["error"]["details"] == {
        "field": "prefix",
        "count": 2001,
        "limit": 2000,
    }
    assert "zone or prefix" in too_many.get_json()["error"]["message"]
    one = site.call("GET", "/warehouses/sh-01/locations/labels.pdf?prefix=C-667")
    assert one.status_code == 200 and page_objects(one.data) == 1
    assert error(site.call("GET", "/warehouses/sh-01/locations/labels.pdf?prefix=Q")) == (
        404,
        "no_locations",
    )
    bad = site.call("GET", "/warehouses/sh-01/locations/labels.pdf?symbology=qr")
    assert error(bad) == (400, "invalid_parameter")


def test_label_rendering_limits():
    long_code = "A" * 64
    with pytest.raises(LabelError, match="datamatrix"):
        location_labels.render_labels([Label(long_code, "W")], "code128")
    sheet = location_labels.render_labels(
        [Label(long_code, "一个名字非常非常非常非常非常长的仓库", "冷藏区")], "datamatrix"
    )
    assert decoded(sheet) == [(long_code, [long_code])]
    with pytest.raises(LabelError):
        location_labels.render_labels([], "code128")


def test_grid_codes():
    axes = [Axis("aisles", "a", "b"), Axis("racks", "8", "10"), Axis("levels", "01", "02")]
    assert location_labels.grid_codes(axes, separator=".") == [
        f"{a}.{r}.{lvl}" for a in "ab" for r in ("8", "9", "10") for lvl in ("01", "02")
    ]
    with pytest.raises(GridError) as caught:
        location_labels.grid_codes([Axis("aisles", "a", "B")])
    assert caught.value.field == "aisles"
    with pytest.raises(GridError):
        location_labels.grid_codes([Axis("racks", "1", "9")], prefix="x" * 64)


# --- devices ----------------------------------------------------------------------------


def test_pda_and_camera_get_no_broker_account(site):
    pda = site.ok(
        "POST",
        "/devices",
        {"warehouse": "sh-01", "code": "pda-7", "kind": "pda", "name": "拣货枪 7"},
        status=201,
    )
    assert (pda["kind"], pda["name"], pda["warehouse"], pda["mqtt"]) == (
        "pda",
        "拣货枪 7",
        "sh-01",
        False,
    )
    assert "credentials" not in pda
    cam = site.ok(
        "POST", "/devices", {"warehouse": "sh-01", "code": "gate-cam", "kind": "camera"}, status=201
    )
    assert cam["name"] == "gate-cam"
    assert "pda-7" not in site.settings.passwd_file.read_text()
    assert site.ok("GET", "/warehouses/sh-01")["devices"] == 2


def test_edge_registration_returns_credentials_once_and_revocation_drops_the_account(site):
    made = site.ok(
        "POST",
        "/devices",
        {"warehouse": "sh-01", "code": "sh-01-edge9", "kind": "edge", "name": "一号库边缘盒"},
        status=201,
    )
    secrets = made["credentials"]
    assert secrets["mqtt_username"] == "sh-01-edge9"
    toml = tomllib.loads(made["edge_settings"])
    assert toml["device"] == {"tenant": "acme", "warehouse": "sh-01", "device": "sh-01-edge9"}
    assert (toml["mqtt"]["username"], toml["mqtt"]["password"]) == (
        "sh-01-edge9",
        secrets["mqtt_password"],
    )
    assert toml["edge"]["api_token"] == secrets["edge_api_token"]
    assert toml["mqtt"]["url"] == secrets["mqtt_url"]
    assert made["mqtt"] is True
    assert "user sh-01-edge9" in site.settings.acl_file.read_text()
    assert site.settings.passwd_file.read_text().count("sh-01-edge9:") == 1

    shown = site.call("GET", "/devices/sh-01-edge9")
    assert shown.status_code == 200
    for secret in ("mqtt_password", "edge_api_token"):
        assert secrets[secret] not in shown.get_data(as_text=True)
    assert set(shown.get_json()) == set(made) - {"credentials", "edge_settings"}
    assert site.ok("PATCH", "/devices/sh-01-edge9", {"name": "新名字"})["name"] == "新名字"
    assert error(site.call("PATCH", "/devices/sh-01-edge9", {"name": ""})) == (422, "invalid_field")
    assert error(site.call("PATCH", "/devices/sh-01-edge9", {"kind": "pda"})) == (
        422,
        "unknown_field",
    )

    assert site.call("DELETE", "/devices/sh-01-edge9").status_code == 204
    assert "sh-01-edge9" not in site.settings.passwd_file.read_text()
    assert "sh-01-edge9" not in site.settings.acl_file.read_text()
    revoked = site.ok("GET", "/devices/sh-01-edge9")
    assert revoked["revoked_at"] is not None and revoked["mqtt"] is False
    assert site.call("DELETE", "/devices/sh-01-edge9").status_code == 204  # idempotent
    assert [a[:2] for a in site.audit(action="device")] == [
        ("device.registered", "device:sh-01-edge9"),
        ("device.updated", "device:sh-01-edge9"),
        ("device.revoked", "device:sh-01-edge9"),
    ]
    # A revoked code stays taken: it names ledger rows and old broker sessions.
    again = site.call(
        "POST", "/devices", {"warehouse": "sh-01", "code": "sh-01-edge9", "kind": "edge"}
    )
    assert error(again) == (409, "code_taken")


def test_device_codes_are_global_but_owners_stay_unsaid(site):
    site.ok(
        "POST", "/devices", {"warehouse": "sh-01", "code": "edge-x", "kind": "edge"}, status=201
    )
    site.ok("POST", "/warehouses", {"code": "bj-01", "name": "北京库"}, status=201, as_="bright")
    for kind in ("edge", "pda"):
        taken = site.call(
            "POST", "/devices", {"warehouse": "bj-01", "code": "edge-x", "kind": kind}, as_="bright"
        )
        assert error(taken) == (409, "code_taken")
        assert "acme" not in taken.get_data(as_text=True).lower()
    ingest = site.call(
        "POST",
        "/devices",
        {"warehouse": "bj-01", "code": "cangyun-ingest", "kind": "edge"},
        as_="bright",
    )
    assert error(ingest) == (409, "code_taken")
    assert "cangyun-ingest:" in site.settings.passwd_file.read_text()
    nowhere = site.call(
        "POST", "/devices", {"warehouse": "sh-01", "code": "e2", "kind": "pda"}, as_="bright"
    )
    assert error(nowhere) == (404, "not_found")


# --- roles and tenants ------------------------------------------------------------------

WRITES = [
    ("POST", "/warehouses", {"code": "w2", "name": "W"}),
    ("PATCH", "/warehouses/sh-01", {"name": "W"}),
    ("POST", "/warehouses/sh-01/zones", {"code": "Z", "name": "Z"}),
    ("POST", "/warehouses/sh-01/locations", {"code": "L-1"}),
    ("POST", "/warehouses/sh-01/locations/bulk", grid()),
    ("DELETE", "/warehouses/sh-01/locations/A-01-1", None),
    ("POST", "/devices", {"warehouse": "sh-01", "code": "e-new", "kind": "edge"}),
    ("PATCH", "/devices/sh-01-edge1", {"name": "x"}),
    ("DELETE", "/devices/sh-01-edge1", None),
]
READS = [
    "/warehouses/sh-01",
    "/warehouses/sh-01/zones",
    "/warehouses/sh-01/locations",
    "/warehouses/sh-01/locations/labels.pdf",
    "/devices/sh-01-edge1",
]


@pytest.fixture
def stocked(site):
    site.ok("POST", "/warehouses/sh-01/locations", {"code": "A-01-1", "zone": "AMB"}, status=201)
    site.ok(
        "POST",
        "/devices",
        {"warehouse": "sh-01", "code": "sh-01-edge1", "kind": "edge"},
        status=201,
    )
    return site


def test_viewers_read_but_never_write(stocked):
    for path in READS:
        assert stocked.call("GET", path, as_="acme-viewer").status_code == 200, path
    before = stocked.audit()
    for method, path, payload in WRITES:
        response = stocked.call(method, path, payload, as_="acme-viewer")
        assert error(response) == (403, "forbidden"), (method, path)
    assert stocked.audit() == before


@pytest.mark.parametrize("who", ["bright", "bright-viewer"])
def test_another_tenant_gets_404_on_everything_and_changes_nothing(stocked, who):
    before = stocked.audit()
    for path in READS:
        response = stocked.call("GET", path, as_=who)
        assert response.status_code == 404, path
        assert "嘉定" not in response.get_data(as_text=True)
    for method, path, payload in WRITES[1:]:
        response = stocked.call(method, path, payload, as_=who)
        assert response.status_code in (403, 404), (method, path)
    assert stocked.ok("GET", "/warehouses", as_=who)["total"] == 0
    assert stocked.audit() == before
    assert stocked.ok("GET", "/devices/sh-01-edge1")["revoked_at"] is None
    with stocked.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(locations)).scalar() == 1


def test_every_sites_route_is_documented_with_closed_bodies(cloud):
    spec = cloud.client.get(f"{API}/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    sites_ops = []
    for rule in cloud.app.url_map.iter_rules():
        if rule.endpoint.startswith("api.sites."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, f"{method} {path}"
                sites_ops.append(spec["paths"][path][method.lower()])
    for op in sites_ops:
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
            assert schema["additionalProperties"] is False
