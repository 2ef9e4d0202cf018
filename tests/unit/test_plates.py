"""Truck plates in OCR text (edge/gates/plates.py) and how the tracker treats them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.gates import plates
from edge.gates.plates import PROVINCES, PlateError, parse_plate, plates_in_text
from edge.gates.tracker import Code, Sighting, Tracker

CANONICAL = re.compile(
    rf"^[{PROVINCES}][A-HJ-NP-Z]"
    r"(?:[A-HJ-NP-Z0-9]{5}|[DABCEFGHJK][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF]|[A-HJ-NP-Z0-9]{4}[挂港澳])$"
)
LETTERS = st.sampled_from(plates.LETTERS)
DIGITS = st.sampled_from("0123456789")
SEPARATORS = st.sampled_from(["", "·", " ", "•", "・", "-", ".", " · ", "\u3000"])


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("沪A·12345", "沪A12345"),  # blue, the dot as OCR returns it
        ("沪A 12345", "沪A12345"),
        ("沪a12345", "沪A12345"),
        ("粤B·8C6Q2", "粤B8C6Q2"),  # letters in the serial
        ("沪AD12345", "沪AD12345"),  # green, small new energy
        ("沪A·12345D", "沪A12345D"),  # green, large new energy
        ("苏E·FK9321", "苏EFK9321"),  # small new energy, non-pure electric with a letter
        ("沪A·1234挂", "沪A1234挂"),  # a semi-trailer
        ("粤Z·1234港", "粤Z1234港"),  # a Hong Kong truck
        ("滬A·12345", "沪A12345"),  # the traditional province character
        ("沪Ａ·１２３４５", "沪A12345"),  # full width
        ("沪A·O1I45", "沪A01145"),  # I and O are never on plates: 1 and 0
        ("沪8·12345", "沪B12345"),  # a digit read for the office letter
        ("沪AD1234S", "沪AD12345"),  # a letter read where only digits go
    ],
)
def test_plates_are_read_and_normalised(text, plate):
    assert parse_plate(text) == plate


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "bad_length"),
        ("沪A1234", "bad_length"),
        ("沪A1234567", "bad_length"),
        ("MAERSK1", "bad_province"),
        ("东A12345", "bad_province"),  # not a province abbreviation
        ("沪I12345", "bad_office"),  # no such office letter
        ("沪汉12345", "bad_office"),
        ("沪AABC12", "bad_serial"),  # three letters in an ordinary serial
        ("沪A1234学", "bad_serial"),  # learner plates are not truck plates
        ("沪A12345挂", "bad_serial"),  # a trailer serial has four characters
        ("沪A1234港", "bad_serial"),  # Hong Kong plates are 粤Z only
        ("沪AX12345", "bad_serial"),  # X is no new-energy type
        ("沪AD1234D", "bad_serial"),  # fits small and large new energy: refused
        ("CSQU3054383", "bad_length"),  # a container number is not a plate
    ],
)
def test_what_is_not_a_plate_is_refused(text, code):
    with pytest.raises(PlateError) as caught:
        parse_plate(text)
    assert caught.value.code == code


def test_a_two_row_rear_plate_is_joined_and_other_lines_ignored():
    lines = ["冷链运输", "沪A", "12345", "MAERSK", "CSQU 305438", "3"]
    assert plates_in_text(lines) == ("沪A12345",)
    assert plates_in_text(["沪A·12345", "沪A12345"]) == ("沪A12345",)  # once
    assert plates_in_text([]) == ()


@st.composite
def real_plates(draw) -> str:
    province = draw(st.sampled_from(PROVINCES))
    office = draw(LETTERS)
    kind = draw(st.sampled_from(["ordinary", "small_ne", "large_ne", "trailer"]))
    if kind == "ordinary":
        serial = draw(st.lists(DIGITS, min_size=5, max_size=5))
        for position in draw(st.sets(st.integers(0, 4), max_size=2)):
            serial[position] = draw(LETTERS)
        return province + office + "".join(serial)
    if kind == "small_ne":
        digits = "".join(draw(st.lists(DIGITS, min_size=4, max_size=4)))
        second = draw(st.one_of(LETTERS, DIGITS))
        return province + office + draw(st.sampled_from("DABCEFGHJK")) + second + digits
    if kind == "large_ne":
        digits = "".join(draw(st.lists(DIGITS, min_size=5, max_size=5)))
        return province + office + digits + draw(st.sampled_from("DF"))
    body = "".join(draw(st.lists(st.one_of(LETTERS, DIGITS), min_size=4, max_size=4)))
    return province + office + body + "挂"


@given(real_plates(), SEPARATORS, st.booleans(), st.booleans())
def test_any_way_ocr_writes_a_plate_reads_back_the_same(plate, separator, lower, wide):
    text = plate[:2] + separator + plate[2:]
    if lower:
        text = text.lower()
    if wide:  # full-width ASCII, as Chinese OCR output often has
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    assert parse_plate(text) == plate


@given(st.text(alphabet=PROVINCES[:4] + "ABDIOQSZ0123458·- 挂港", max_size=12))
def test_whatever_is_accepted_is_a_canonical_plate_and_reads_as_itself(text):
    try:
        plate = parse_plate(text)
    except PlateError:
        return
    assert CANONICAL.match(plate), plate
    assert parse_plate(plate) == plate


@given(st.text(max_size=20))
def test_any_text_is_a_plate_or_a_plate_error(text):
    try:
        parse_plate(text)
    except PlateError:
        pass


# --- the tracker ---------------------------------------------------------------------------


def plate_code(plate: str) -> Code:
    return Code("plate", plate=plate, checked=False)


def test_a_plate_needs_two_frames_even_on_a_pushed_snapshot():
    tracker = Tracker()
    assert tracker.observe(Sighting("push", 10.0, (plate_code("沪A12345"),), snapshot=True)) == []
    (update,) = tracker.observe(Sighting("push", 11.0, (plate_code("沪A12345"),), snapshot=True))
    assert update.action == "opened"
    assert (update.passage.kind, update.passage.plate, update.passage.frames) == (
        "plate",
        "沪A12345",
        2,
    )
    assert update.passage.key == "plate:沪A12345"


def test_a_truck_waiting_at_the_door_is_one_event_and_a_later_visit_another():
    tracker = Tracker(window_s=60.0)
    for second in range(0, 40, 2):  # parked in view for 40 s, read now and then
        tracker.observe(Sighting("cam-1", float(second), (plate_code("沪A12345"),)))
    assert len(tracker.passes) == 1
    assert [u.action for u in tracker.tick(45.0)] == ["settled"]
    tracker.tick(200.0)  # the window has passed
    tracker.observe(Sighting("cam-1", 300.0, (plate_code("沪A12345"),)))
    tracker.observe(Sighting("cam-1", 301.0, (plate_code("沪A12345"),)))
    assert [p.first_seen for p in tracker.passes] == [300.0]


def test_a_plate_and_a_pallet_on_one_frame_are_two_things():
    pallet = Code("sscc", sscc="069123456789012340", gtin="06901234567892")
    gtin = Code("gtin", gtin="06901234567892")
    tracker = Tracker()
    for second in (1.0, 2.0):
        tracker.observe(Sighting("cam-1", second, (plate_code("沪AD12345"), pallet, gtin)))
    kinds = sorted((p.kind, p.plate or p.sscc) for p in tracker.passes)
    assert kinds == [("plate", "沪AD12345"), ("sscc", "069123456789012340")]
