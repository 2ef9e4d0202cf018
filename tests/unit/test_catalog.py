"""The seed's price table and feature matrix, asserted entry by entry."""

from decimal import Decimal

import pytest

from cloud_api.billing import catalog
from cloud_api.billing.catalog import OrderError, PackageSizes, quote

SEED_PRICES = [
    # edition, billing mode, area, yuan per 套  (版本价格)
    ("traceability", "flow", None, 5000),
    ("traceability", "period", "le_100", 2000),
    ("traceability", "period", "gt_100", 3000),
    ("basic", "flow", None, 50000),
    ("basic", "item", None, 50000),
    ("standard", "flow", None, 100000),
    ("standard", "item", None, 100000),
    ("professional", "flow", None, 150000),
    ("professional", "item", None, 150000),
]

Y, N = True, False
SEED_FEATURES = {
    # feature: (基础版 basic, 标准版 standard, 专业版 professional, 溯源版 traceability)  (版本功能)
    "registration": (Y, Y, Y, Y),
    "warehouse": (Y, Y, Y, Y),
    "crm": (Y, Y, Y, Y),
    "inbound": (Y, Y, Y, Y),
    "outbound": (Y, Y, Y, Y),
    "security_policy": (Y, Y, Y, Y),
    "task_management": (Y, N, Y, N),
    "value_added_services": (Y, Y, Y, N),
    "industry_plugins": (N, N, Y, N),
    "alerts": (Y, Y, Y, Y),
    "charges": (Y, Y, Y, Y),
    "secondary_development": (N, Y, Y, Y),
}


def catalog_doc():
    return catalog.catalog_json(PackageSizes())


@pytest.mark.parametrize(("edition", "mode", "area", "yuan"), SEED_PRICES)
def test_every_price_of_the_seed(edition, mode, area, yuan):
    entry = next(e for e in catalog_doc()["editions"] if e["code"] == edition)
    prices = [p for p in entry["prices"] if p["billing_mode"] == mode and p["area"] == area]
    assert [p["price_yuan"] for p in prices] == [yuan]


def test_no_price_beyond_the_seed():
    listed = {
        (e["code"], p["billing_mode"], p["area"], p["price_yuan"])
        for e in catalog_doc()["editions"]
        for p in e["prices"]
    }
    assert listed == set(SEED_PRICES)


@pytest.mark.parametrize("feature", sorted(SEED_FEATURES))
def test_every_cell_of_the_feature_matrix(feature):
    editions = {e["code"]: set(e["features"]) for e in catalog_doc()["editions"]}
    for edition, included in zip(
        ("basic", "standard", "professional", "traceability"), SEED_FEATURES[feature], strict=True
    ):
        assert (feature in editions[edition]) is included, (feature, edition)


def test_catalog_shape_names_and_services():
    doc = catalog_doc()
    assert [e["name"] for e in doc["editions"]] == ["溯源版", "基础版", "标准版", "专业版"]
    assert [f["code"] for f in doc["features"]] == list(SEED_FEATURES)
    assert [s["code"] for s in doc["value_added_services"]] == [
        "ocr_scanning",
        "managed_operations",
        "custom_services",
    ]
    assert doc["payment"] == "prepaid" and doc["auto_renewal"] is False and doc["refunds"] is False
    units = {(p["billing_mode"], p["unit"]) for e in doc["editions"] for p in e["prices"]}
    assert units == {("flow", "tonne_day"), ("item", "piece"), ("period", "year")}


def test_package_size_is_configuration():
    bigger = catalog.catalog_json(PackageSizes(tonne_days_per_yuan=Decimal(4)))
    basic_flow = next(
        p
        for e in bigger["editions"]
        if e["code"] == "basic"
        for p in e["prices"]
        if p["billing_mode"] == "flow"
    )
    assert basic_flow["units_per_package"] == 200_000


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (
            {"edition": ["basic", "standard"], "billing_mode": "flow", "quantity": 1},
            "one_edition_per_order",
        ),
        (
            {"editions": ["basic"], "edition": "basic", "billing_mode": "flow", "quantity": 1},
            "one_edition_per_order",
        ),
        ({"edition": "basic", "add_on": "ocr_scanning", "quantity": 1}, "one_edition_per_order"),
        (
            {"edition": "traceability", "billing_mode": "item", "quantity": 1},
            "billing_mode_not_offered",
        ),
        (
            {"edition": "basic", "billing_mode": "period", "quantity": 1, "business_area_m2": 50},
            "billing_mode_not_offered",
        ),
        ({"edition": "traceability", "billing_mode": "period", "quantity": 1}, "missing_field"),
        ({"edition": "gold", "billing_mode": "flow", "quantity": 1}, "unknown_edition"),
        ({"edition": "basic", "billing_mode": "flow", "quantity": 0}, "invalid_quantity"),
        ({"edition": "basic", "billing_mode": "flow", "quantity": 1.5}, "invalid_quantity"),
        (
            {"edition": "basic", "billing_mode": "flow", "quantity": 1, "payment": "postpaid"},
            "prepaid_only",
        ),
        (
            {"edition": "basic", "billing_mode": "flow", "quantity": 1, "auto_renew": True},
            "auto_renewal_not_supported",
        ),
        ({"add_on": "custom_services", "quantity": 1}, "quote_required"),
    ],
)
def test_orders_the_seed_does_not_allow(order, code):
    with pytest.raises(OrderError) as caught:
        quote(order, PackageSizes())
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("area", "tier", "yuan"),
    [(99.5, "le_100", 2000), (100, "le_100", 2000), (100.01, "gt_100", 3000)],
)
def test_the_100_square_metre_split(area, tier, yuan):
    priced = quote(
        {
            "edition": "traceability",
            "billing_mode": "period",
            "quantity": 2,
            "business_area_m2": area,
        },
        PackageSizes(),
    )
    assert (priced.area, priced.unit_price_yuan, priced.total_yuan) == (tier, yuan, 2 * yuan)
    assert priced.units == 2 and priced.unit == "year"
