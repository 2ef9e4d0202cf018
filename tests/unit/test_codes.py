import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocr_service.codes import (
    CodeError,
    container_check_digit,
    parse_container_number,
    parse_drug_code,
)

# --- ISO 6346 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first10", "check"),
    [
        ("CSQU305438", 3),  # the example in ISO 6346 literature
        ("CSQU000007", 0),  # remainder 10 is written as 0
        ("MSKU907032", 3),
    ],
)
def test_check_digit_examples(first10, check):
    assert container_check_digit(first10) == check


@pytest.mark.parametrize(
    ("letter", "value"),
    [("A", 10), ("B", 12), ("J", 20), ("K", 21), ("L", 23), ("U", 32), ("V", 34), ("Z", 38)],
)
def test_letter_values_skip_multiples_of_eleven(letter, value):
    # In first position the weight is 1, so the check digit shows the letter's value.
    assert container_check_digit(letter + "000000000") == value % 11 % 10


def test_a_and_k_are_indistinguishable_by_design():
    # A=10 and K=21 differ by 11: a known blind spot of ISO 6346, not a bug here.
    assert container_check_digit("AAAU123456") == container_check_digit("KAAU123456")


@pytest.mark.parametrize(
    "text",
    [
        "CSQU3054383",
        "csqu3054383",
        "CSQU 305438 3",
        "CSQU-305438-3",
        "CSQU/3054383",
        " CSQU 3054383\n",
        "C5QU3O543B3",  # OCR: 5 for S in the owner code, O and B for 0 and 8 in the serial
        "CSQU3O54383",
        "ＣＳＱＵ３０５４３８３",  # full-width characters from Chinese OCR output
    ],
)
def test_container_number_normalisation(text):
    assert parse_container_number(text) == "CSQU3054383"


def test_ocr_confusions_in_every_position():
    # Owner code 0/1/5 → O/I/S; serial I/L/S/B/Z/O → 1/1/5/8/2/0.
    expected = "OISU115820" + str(container_check_digit("OISU115820"))
    assert parse_container_number("015U" + "ILSBZO" + expected[-1]) == expected
    bsqu = "BSQU305438" + str(container_check_digit("BSQU305438"))
    assert parse_container_number("8" + bsqu[1:]) == bsqu
    assert parse_container_number("CSQU000OO7O") == "CSQU0000070"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("CSQU3054384", "bad_check_digit"),
        ("CSQU3054380", "bad_check_digit"),
        ("CSQA3054383", "bad_category"),
        ("CSQ13054383", "bad_category"),  # 1 reads as I, which is no category
        ("CSQU305438", "bad_length"),
        ("CSQU30543833", "bad_length"),
        ("CSQU30X4383", "bad_charset"),
        ("C2QU3054383", "bad_charset"),
        ("CSQU3054.83", "bad_charset"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_container_number_rejects(text, code):
    with pytest.raises(CodeError) as caught:
        parse_container_number(text)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


owners = st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3)
categories = st.sampled_from("UJZ")
serials = st.text(alphabet=string.digits, min_size=6, max_size=6)


@given(owners, categories, serials, st.integers(0, 10), st.data())
def test_computed_check_digit_validates_and_single_changes_break_it(
    owner, category, serial, position, data
):
    number = owner + category + serial
    number += str(container_check_digit(number))
    assert parse_container_number(number) == number

    alphabet = string.ascii_uppercase if position < 4 else string.digits
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    changed = number[:position] + replacement + number[position + 1 :]
    still_valid = changed[3] in "UJZ" and container_check_digit(changed[:10]) == int(changed[10])
    if still_valid:
        # Only where ISO 6346 itself cannot tell (A/K, B/L ... differ by 11; remainder 10 → 0).
        assert position < 10
        assert parse_container_number(changed) == changed
    else:
        with pytest.raises(CodeError):
            parse_container_number(changed)


@given(owners, categories, serials, st.integers(4, 9), st.integers(1, 9))
def test_serial_digit_changes_are_caught_unless_remainder_ten(owner, category, serial, pos, step):
    first10 = owner + category + serial
    changed = first10[:pos] + str((int(first10[pos]) + step) % 10) + first10[pos + 1 :]
    # Digits differ by less than 11 and weights are powers of 2, so the remainder changes;
    # the check digit changes too unless one of the two remainders is 10 (written 0).
    if container_check_digit(first10) == container_check_digit(changed):
        assert container_check_digit(first10) == 0


# --- drug traceability codes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("81234567890123456789", "81234567890123456789"),
        ("8123 4567 8901 2345 6789", "81234567890123456789"),
        (" 81234567890123456789\r\n", "81234567890123456789"),
        ("00000000000000000000", "00000000000000000000"),
    ],
)
def test_drug_code_accepts_twenty_digits(text, expected):
    assert parse_drug_code(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("8123456789012345678", "bad_length"),
        ("812345678901234567890", "bad_length"),
        ("8123-4567-8901-2345-6789", "bad_length"),
        ("8123456789012345678X", "bad_charset"),
        ("８１２３４５６７８９０１２３４５６７８９", "bad_charset"),  # full-width digits
        ("", "empty"),
        (" \t", "empty"),
    ],
)
def test_drug_code_rejects(text, code):
    with pytest.raises(CodeError) as caught:
        parse_drug_code(text)
    assert caught.value.code == code


@given(st.text(alphabet=string.digits, min_size=20, max_size=20))
def test_any_twenty_digits_are_a_drug_code(digits):
    assert parse_drug_code(digits) == digits
