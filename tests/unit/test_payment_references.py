"""Order references a bank clerk types (CY<id>-<check>) and yuan to fen: pure rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cangyun.errors import Invalid
from cloud_api.billing import payments


@given(st.integers(min_value=1, max_value=2**31 - 1))
def test_a_reference_names_its_order_and_a_mistyped_one_names_none(order_id):
    reference = payments.order_reference(order_id)
    assert payments.order_of_reference(reference) == order_id
    assert payments.order_of_reference(" " + reference.lower().replace("-", " -")) == order_id
    digits = reference[2:].replace("-", "")
    for i in range(len(digits)):  # any one digit mistyped
        for d in "0123456789":
            if d != digits[i]:
                typo = digits[:i] + d + digits[i + 1 :]
                assert payments.order_of_reference(f"CY{typo[:-2]}-{typo[-2:]}") is None
    for i in range(len(digits) - 1):  # two neighbours swapped
        if digits[i] != digits[i + 1]:
            swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
            assert payments.order_of_reference(f"CY{swapped[:-2]}-{swapped[-2:]}") is None


@pytest.mark.parametrize("text", ["", "CY", "CY12", "CY0-98", "XX12-34", "CY12-345", "CY-12"])
def test_what_is_no_reference(text):
    assert payments.order_of_reference(text) is None


def test_fen():
    assert payments.to_fen(Decimal("150000.00")) == 15_000_000
    assert payments.to_fen(Decimal("0.01")) == 1
    assert payments.from_fen(15_000_001) == Decimal("150000.01")
    with pytest.raises(Invalid):
        payments.to_fen(Decimal("0.001"))
