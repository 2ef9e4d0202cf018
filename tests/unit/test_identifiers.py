import pytest
from hypothesis import given
from hypothesis import strategies as st

from cangyun.identifiers import (
    IdentifierError,
    gs1_check_digit,
    has_valid_check_digit,
    normalize_gtin,
    validate_sscc,
)


@pytest.mark.parametrize(
    "code",
    ["96385074", "036000291452", "4006381333931", "10614141000415", "6901234567892"],
)
def test_published_gtins_validate(code):
    assert normalize_gtin(code) == code.zfill(14)


def test_published_sscc_validates():
    assert validate_sscc("106141411234567897") == "106141411234567897"


@given(st.text(alphabet="0123456789", min_size=7, max_size=17))
def test_appended_check_digit_always_validates(payload):
    assert has_valid_check_digit(payload + str(gs1_check_digit(payload)))


@given(
    st.text(alphabet="0123456789", min_size=7, max_size=17),
    st.integers(min_value=0, max_value=16),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_error_is_caught(payload, position, change):
    code = payload + str(gs1_check_digit(payload))
    position %= len(code)
    wrong = code[:position] + str((int(code[position]) + change) % 10) + code[position + 1 :]
    assert not has_valid_check_digit(wrong)


@pytest.mark.parametrize(
    "bad", ["", "abc", "123456789", "６９０１２３４５６７８９２", "4006381333932"]
)
def test_bad_gtins_raise_a_typed_error(bad):
    with pytest.raises(IdentifierError):
        normalize_gtin(bad)
