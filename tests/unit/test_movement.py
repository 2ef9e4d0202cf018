from datetime import UTC, datetime

import pytest

from cangyun.movement import (
    MAX_QTY,
    MovementError,
    movement_body,
    parse_movement,
    warehouse_delta,
)

NOW = "2026-11-26T09:30:00+08:00"


def api(**fields):
    return parse_movement({"occurred_at": NOW, **fields}, source="api")


def test_receive_is_normalised():
    m = api(type="receive", gtin="6901234567892", qty=10, lot=" L1 ", weight_kg=12.3456)
    assert m.gtin == "06901234567892"
    assert m.lot == "L1"
    assert m.weight_g == 12346  # kept in whole grams
    assert m.occurred_at == datetime(2026, 11, 26, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"type": "teleport", "sku": "A", "qty": 1}, "unknown_type", "type"),
        ({"type": "receive", "qty": 1}, "missing_item", "gtin"),
        ({"type": "receive", "sku": "A"}, "missing_field", "qty"),
        ({"type": "receive", "sku": "A", "qty": 0}, "invalid_quantity", "qty"),
        ({"type": "receive", "sku": "A", "qty": -3}, "invalid_quantity", "qty"),
        ({"type": "receive", "sku": "A", "qty": 10**9}, "invalid_quantity", "qty"),
        ({"type": "receive", "sku": "A", "qty": 2.5}, "invalid_quantity", "qty"),
        ({"type": "receive", "sku": "A", "qty": True}, "invalid_quantity", "qty"),
        ({"type": "receive", "sku": "A", "qty": "5"}, "invalid_quantity", "qty"),
        ({"type": "adjust", "sku": "A", "qty": 0}, "invalid_quantity", "qty"),
        ({"type": "receive", "sku": "A", "qty": 1, "weight_kg": -1}, "invalid_weight", "weight_kg"),
        (
            {"type": "receive", "sku": "A", "qty": 1, "weight_kg": float("nan")},
            "invalid_weight",
            "weight_kg",
        ),
        (
            {"type": "receive", "sku": "A", "qty": 1, "weight_kg": 1e9},
            "invalid_weight",
            "weight_kg",
        ),
        ({"type": "receive", "gtin": "6901234567891", "qty": 1}, "invalid_gtin", "gtin"),
        ({"type": "receive", "gtin": "69012345", "qty": 1}, "invalid_gtin", "gtin"),
        ({"type": "receive", "sku": "A", "qty": 1, "sscc": "123"}, "invalid_sscc", "sscc"),
        (
            {"type": "receive", "sku": "A", "qty": 1, "expiry_date": "2026-13-01"},
            "invalid_date",
            "expiry_date",
        ),
        ({"type": "receive", "sku": "A", "qty": 1, "lot": "x" * 21}, "invalid_field", "lot"),
        ({"type": "receive", "sku": "A\x00", "qty": 1}, "invalid_field", "sku"),
        (
            {"type": "transfer", "sku": "A", "qty": 1, "location": "A1"},
            "missing_field",
            "to_location",
        ),
        (
            {"type": "putaway", "sku": "A", "qty": 1, "location": "A1", "to_location": "A1"},
            "invalid_field",
            "to_location",
        ),
        (
            {"type": "receive", "sku": "A", "qty": 1, "to_location": "A1"},
            "invalid_field",
            "to_location",
        ),
        ({"type": "receive", "sku": "A", "qty": 1, "colour": "red"}, "unknown_field", "colour"),
        ({"type": "receive", "sku": "A", "qty": 1, "operator": "me"}, "unknown_field", "operator"),
    ],
)
def test_invalid_movements_name_code_and_field(fields, code, field):
    with pytest.raises(MovementError) as caught:
        api(**fields)
    assert (caught.value.code, caught.value.field) == (code, field)


@pytest.mark.parametrize(
    "occurred_at", ["2026-11-26T09:30:00", "1970-01-01T00:00:00Z", "yesterday", 12345, None]
)
def test_occurred_at_needs_an_offset_and_a_plausible_year(occurred_at):
    with pytest.raises(MovementError) as caught:
        parse_movement(
            {"type": "receive", "sku": "A", "qty": 1, "occurred_at": occurred_at}, source="api"
        )
    assert caught.value.field == "occurred_at"


def test_wire_is_lenient_about_new_fields_and_needs_count_deltas():
    m = parse_movement(
        {
            "type": "count",
            "sku": "A",
            "qty": 7,
            "qty_delta": -3,
            "weight_delta_kg": -1.5,
            "occurred_at": NOW,
            "future_field": 1,
        },
        source="wire",
    )
    assert warehouse_delta(m) == (-3, -1500)
    with pytest.raises(MovementError):
        parse_movement({"type": "count", "sku": "A", "qty": 7, "occurred_at": NOW}, source="wire")


@pytest.mark.parametrize(
    ("kind", "qty", "weight", "delta"),
    [
        ("receive", 5, 2.0, (5, 2000)),
        ("ship", 5, 2.0, (-5, -2000)),
        ("pick", 5, 2.0, (0, 0)),
        ("putaway", 5, 2.0, (0, 0)),
        ("adjust", -2, -0.5, (-2, -500)),
    ],
)
def test_warehouse_delta(kind, qty, weight, delta):
    fields = {"type": kind, "sku": "A", "qty": qty, "weight_kg": weight, "occurred_at": NOW}
    if kind == "putaway":
        fields["to_location"] = "B-01"
    assert warehouse_delta(parse_movement(fields, source="wire")) == delta


def test_body_round_trips_through_the_wire_parser():
    m = api(
        type="pick",
        gtin="6901234567892",
        qty=3,
        lot="L9",
        expiry_date="2027-01-31",
        weight_kg=1.25,
        customer="acme",
        location="A-01",
        to_location="STAGE-2",
        sscc="006141411234567890",
        serial="S1",
    )
    body = movement_body(m) | {"type": m.type, "occurred_at": NOW}
    assert parse_movement(body, source="wire") == m


def test_quantity_limit_is_inclusive():
    assert api(type="receive", sku="A", qty=MAX_QTY).qty == MAX_QTY


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "type",
        "gtin",
        "sku",
        "qty",
        "lot",
        "expiry_date",
        "weight_kg",
        "customer",
        "location",
        "to_location",
        "sscc",
        "serial",
        "occurred_at",
        "qty_delta",
        "weight_delta_kg",
        "operator",
    ]
)


@given(st.dictionaries(FIELDS, JSON_VALUES, max_size=8), st.sampled_from(["api", "wire"]))
def test_any_json_body_is_a_movement_or_a_movement_error(body, source):
    try:
        parse_movement(body, source=source)
    except MovementError:
        pass
