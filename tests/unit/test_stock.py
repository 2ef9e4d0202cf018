import pytest

from cangyun.movement import parse_movement
from edge.stock import BinStock, StockError, plan, resolve_customer

NOW = "2026-11-26T09:30:00+08:00"


def mv(**fields):
    return parse_movement({"occurred_at": NOW, "sku": "A", **fields}, source="api")


def test_receive_goes_to_the_dock_unless_a_location_is_given():
    _, changes = plan(mv(type="receive", qty=5, weight_kg=10), [])
    assert [(c.location, c.qty, c.weight_g) for c in changes] == [("", 5, 10000)]


def test_putaway_moves_pieces_and_their_share_of_weight():
    bins = [BinStock("", 10, 20000)]
    resolved, changes = plan(mv(type="putaway", qty=4, to_location="A-01"), bins)
    assert [(c.location, c.qty, c.weight_g) for c in changes] == [
        ("", -4, -8000),
        ("A-01", 4, 8000),
    ]
    assert resolved.weight_g == 8000


def test_ship_draws_staging_first_then_bins_by_name():
    bins = [BinStock("B-02", 5, 500), BinStock("STAGING", 2, 200), BinStock("A-01", 5, 500)]
    resolved, changes = plan(mv(type="ship", qty=6), bins)
    assert [(c.location, c.qty) for c in changes] == [("STAGING", -2), ("A-01", -4)]
    assert resolved.weight_g == 200 + 400


def test_emptying_a_bin_takes_all_its_weight():
    _, changes = plan(mv(type="ship", qty=3, location="A"), [BinStock("A", 3, 1001)])
    assert changes[0].weight_g == -1001


def test_explicit_weight_is_split_by_pieces():
    bins = [BinStock("STAGING", 1, 100), BinStock("A", 3, 300)]
    resolved, changes = plan(mv(type="ship", qty=4, weight_kg=1.0), bins)
    assert [c.weight_g for c in changes] == [-250, -750]
    assert resolved.weight_g == 1000


def test_cannot_take_more_than_is_on_hand():
    with pytest.raises(StockError) as caught:
        plan(mv(type="ship", qty=11), [BinStock("A", 10, 0)])
    assert caught.value.code == "insufficient_stock"
    # The facts a PDA words its own sentence from, in the operator's language.
    assert caught.value.details == {"available": 10, "requested": 11, "location": "A"}


def test_count_records_the_difference():
    resolved, changes = plan(mv(type="count", qty=7, location="A"), [BinStock("A", 10, 1000)])
    assert (resolved.qty_delta, resolved.weight_delta_g) == (-3, -300)
    assert [(c.qty, c.weight_g) for c in changes] == [(-3, -300)]


def test_pick_defaults_to_staging_and_prefers_storage_bins():
    bins = [BinStock("", 5, 0), BinStock("A-01", 5, 0)]
    _, changes = plan(mv(type="pick", qty=6), bins)
    assert [(c.location, c.qty) for c in changes] == [("A-01", -5), ("", -1), ("STAGING", 6)]


def test_negative_adjustment_removes_weight_and_records_it_negative():
    resolved, _ = plan(mv(type="adjust", qty=-2, location="A"), [BinStock("A", 4, 400)])
    assert resolved.weight_g == -200


def test_owner_is_filled_only_when_unambiguous():
    assert resolve_customer(mv(type="ship", qty=1), ["acme"]).customer == "acme"
    assert resolve_customer(mv(type="ship", qty=1), []).customer is None
    with pytest.raises(StockError) as caught:
        resolve_customer(mv(type="ship", qty=1), ["acme", "bright"])
    assert caught.value.code == "ambiguous_customer"
    assert caught.value.details == {"owners": ["acme", "bright"]}
    assert resolve_customer(mv(type="receive", qty=1), ["acme"]).customer is None
