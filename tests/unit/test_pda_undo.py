"""Undo by compensating movements, and the operator lockout rule: pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cangyun.movement import warehouse_delta
from edge.operators import LockoutPolicy, after_failure, is_locked
from edge.pda.undo import CannotUndo, compensation

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def stored(**fields):
    base = {
        "id": "m-1",
        "gtin": "06901234567892",
        "lot": "L1",
        "expiry_date": "2027-01-31",
        "customer": "ACME",
        "location": None,
        "to_location": None,
        "weight_kg": 12.5,
        "qty": 10,
    }
    return base | fields


def test_a_receipt_is_undone_by_removing_what_came_in_where_it_came_in():
    [(undo, key)] = compensation(stored(type="receive", location="A-1"), now=NOW, operator="op1")
    assert (undo.type, undo.qty, undo.weight_g, undo.location) == ("adjust", -10, -12500, "A-1")
    assert (undo.reverses, undo.operator, undo.customer, key) == ("m-1", "op1", "ACME", "undo:m-1")
    assert undo.expiry_date == date(2027, 1, 31) and undo.occurred_at == NOW
    assert warehouse_delta(undo) == (-10, -12500)


def test_a_shipment_comes_back_onto_the_dock_when_it_named_no_bin():
    [(undo, _)] = compensation(stored(type="ship"), now=NOW, operator=None)
    assert (undo.type, undo.qty, undo.weight_g, undo.location) == ("adjust", 10, 12500, None)


def test_internal_moves_go_back_with_a_transfer():
    [(undo, _)] = compensation(
        stored(type="putaway", location="A-1", to_location="B-2"), now=NOW, operator="op1"
    )
    assert (undo.type, undo.location, undo.to_location) == ("transfer", "B-2", "A-1")
    [(pick, _)] = compensation(stored(type="pick", location="B-2"), now=NOW, operator="op1")
    assert (pick.type, pick.location, pick.to_location) == ("transfer", "STAGING", "B-2")


def test_a_putaway_from_the_dock_is_undone_by_two_adjusts_that_net_to_zero():
    undo = compensation(stored(type="putaway", to_location="B-2"), now=NOW, operator="op1")
    (out, first_key), (back, second_key) = undo
    assert (out.qty, out.location, back.qty, back.location) == (-10, "B-2", 10, None)
    assert first_key != second_key and all(m.reverses == "m-1" for m, _ in undo)
    assert sum(warehouse_delta(m)[0] for m, _ in undo) == 0


def test_a_negative_adjust_is_undone_by_a_positive_one():
    [(undo, _)] = compensation(
        stored(type="adjust", qty=-3, weight_kg=-1.5), now=NOW, operator=None
    )
    assert (undo.qty, undo.weight_g) == (3, 1500)


@pytest.mark.parametrize(
    "movement",
    [
        stored(type="count"),
        stored(type="pick", location=None),  # drew from several bins
        stored(type="receive", reverses="m-0"),  # an undo itself
    ],
)
def test_what_cannot_be_undone_says_so(movement):
    with pytest.raises(CannotUndo):
        compensation(movement, now=NOW, operator="op1")


def test_lockout_after_the_fifth_failure_and_then_a_fresh_count():
    policy = LockoutPolicy(max_failures=5, lockout_s=900)
    failures, locked = 0, None
    for _ in range(4):
        failures, locked = after_failure(failures, 100.0, policy)
        assert locked is None
    failures, locked = after_failure(failures, 100.0, policy)
    assert (failures, locked) == (0, 1000.0)
    assert is_locked(locked, 999.9) and not is_locked(locked, 1000.0) and not is_locked(None, 0)
