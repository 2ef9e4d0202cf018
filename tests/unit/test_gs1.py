from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cangyun.identifiers import gs1_check_digit
from ocr_service.gs1 import (
    GS,
    GS1_SYMBOLOGY_IDS,
    Element,
    GS1Error,
    GS1Message,
    build_element_string,
    build_hri,
    is_gs1,
    parse,
    parse_element_string,
    parse_hri,
    resolve_century,
)
from ocr_service.gs1_table import AIS, CHARSETS, PREDEFINED_LENGTHS, AIDef, Component

TODAY = date(2026, 1, 15)

# One pallet label: SSCC, GTIN, expiry, lot (variable, so GS), net weight 0.750 kg, count 12.
PALLET = (
    "00376130321109103420" + "0109521234543213" + "17260630" + "10ABC123" + GS + "3103000750"
) + "3712"
PALLET_HRI = "(00)376130321109103420(01)09521234543213(17)260630(10)ABC123(3103)000750(37)12"

ERROR_CODES = {
    "unknown_ai",
    "bad_length",
    "bad_charset",
    "bad_check_digit",
    "bad_date",
    "missing_separator",
    "empty",
    "not_gs1",
    "bad_hri",
    "duplicate_ai",
}


def assert_pallet(message: GS1Message) -> None:
    assert message.sscc == "376130321109103420"
    assert message.gtin == "09521234543213"
    assert message.expiry_date == date(2026, 6, 30)
    assert message.lot == "ABC123"
    assert message.net_weight_kg == Decimal("0.750")
    assert message.count == 12
    assert list(message.as_dict()) == ["00", "01", "17", "10", "3103", "37"]


# --- known messages -------------------------------------------------------------------------


def test_gs1_128_pallet_label():
    message = parse("]C1" + PALLET, today=TODAY)
    assert_pallet(message)
    assert message.hri() == PALLET_HRI
    assert message.get("3103") == Element("3103", "000750", Decimal("0.750"), "NET WEIGHT (kg)")
    assert message.get("17").title == "USE BY or EXPIRY"
    assert message.get("99") is None


def test_hri_form_gives_the_same_message():
    assert parse(PALLET_HRI, today=TODAY) == parse("]C1" + PALLET, today=TODAY)
    assert_pallet(parse_hri(PALLET_HRI, today=TODAY))


def test_hri_tolerates_spaces_between_elements():
    message = parse(" (01)09521234543213 (17)260630  (10)ABC123\r\n", today=TODAY)
    assert message.as_dict() == {"01": "09521234543213", "17": "260630", "10": "ABC123"}


@pytest.mark.parametrize("prefix", sorted(GS1_SYMBOLOGY_IDS))
def test_every_gs1_symbology_identifier(prefix):
    assert_pallet(parse(prefix + PALLET, today=TODAY))


@pytest.mark.parametrize("prefix", ["]d2", "]Q3"])
def test_leading_gs_after_identifier_and_trailing_newline(prefix):
    assert_pallet(parse(prefix + GS + PALLET + "\r\n", today=TODAY))


def test_bare_element_string():
    assert_pallet(parse(PALLET, today=TODAY))
    assert_pallet(parse_element_string(PALLET, today=TODAY))


def test_redundant_gs_after_fixed_length_field_is_tolerated():
    message = parse("]C1" + "0109521234543213" + GS + "10LOT7", today=TODAY)
    assert message.as_dict() == {"01": "09521234543213", "10": "LOT7"}


def test_variable_field_without_gs_at_the_end():
    message = parse("]C1" + "10ABC123" + GS + "21SN-0001/X", today=TODAY)
    assert message.lot == "ABC123"
    assert message.serial == "SN-0001/X"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17240200", date(2024, 2, 29)),  # leap year
        ("17250200", date(2025, 2, 28)),
        ("17261200", date(2026, 12, 31)),
        ("17260400", date(2026, 4, 30)),
    ],
)
def test_day_00_means_last_day_of_month(raw, expected):
    assert parse(raw, today=TODAY).expiry_date == expected


def test_other_dates_and_times():
    message = parse("(11)250101(15)260331(7003)2607011830(8008)26070118(7250)19991231", today=TODAY)
    assert message.production_date == date(2025, 1, 1)
    assert message.best_before == date(2026, 3, 31)
    assert message.get("7003").value == datetime(2026, 7, 1, 18, 30)
    assert message.get("8008").value == datetime(2026, 7, 1, 18, 0)
    assert message.get("7250").value == date(1999, 12, 31)
    assert parse("(7007)260101260131", today=TODAY).get("7007").value == "260101260131"


@pytest.mark.parametrize(
    ("today", "yy", "year"),
    [
        (date(2026, 5, 1), 26, 2026),
        (date(2026, 5, 1), 0, 2000),
        (date(2026, 5, 1), 76, 2076),  # 50 ahead: still this century
        (date(2026, 5, 1), 77, 1977),  # 51 ahead: last century
        (date(2026, 5, 1), 99, 1999),
        (date(2000, 1, 1), 50, 2050),
        (date(2000, 1, 1), 51, 1951),
        (date(2099, 12, 31), 50, 2050),  # 49 behind: this century
        (date(2099, 12, 31), 49, 2149),  # 50 behind: next century
        (date(2099, 12, 31), 0, 2100),
        (date(2050, 6, 1), 0, 2100),  # 50 behind: next century
        (date(2049, 6, 1), 0, 2000),
    ],
)
def test_resolve_century(today, yy, year):
    assert resolve_century(yy, today) == year


def test_parse_uses_the_century_rule():
    assert parse("(17)991231", today=date(2026, 1, 1)).expiry_date == date(1999, 12, 31)
    assert parse("(17)991231", today=date(2060, 1, 1)).expiry_date == date(2099, 12, 31)
    # 29 February exists in 2000 but not in 2100.
    assert parse("(11)000229", today=date(2026, 1, 1)).production_date == date(2000, 2, 29)
    with pytest.raises(GS1Error) as caught:
        parse("(11)000229", today=date(2070, 1, 1))
    assert caught.value.code == "bad_date"


def test_measures_amounts_and_temperatures():
    message = parse(
        "(3202)001250(3300)000042(3922)1999(3911)156012345(4331)000550-(4330)003500",
        today=TODAY,
    )
    assert message.get("3202").value == Decimal("12.50")
    assert message.net_weight_kg is None  # pounds are not converted
    assert message.get("3300").value == Decimal("42")
    assert message.get("3922").value == Decimal("19.99")
    assert message.get("3911").value == Decimal("1234.5")  # 156 is the currency (CNY)
    assert message.get("4331").value == Decimal("-5.50")
    assert message.get("4330").value == Decimal("35.00")
    assert parse("(3105)123456").net_weight_kg == Decimal("1.23456")


def test_check_digit_keys_beyond_gtin():
    message = parse("(8003)0952123454321310ABC(253)9521234543213X7(414)9521234543213")
    assert message.get("8003").raw == "0952123454321310ABC"
    assert message.get("253").raw == "9521234543213X7"


def test_count_is_an_int():
    message = parse("(02)09521234543213(37)0024(30)7")
    assert message.count == 24
    assert message.get("30").value == 7


def test_build_element_string_inserts_gs_only_where_needed():
    pairs = [("01", "09521234543213"), ("10", "ABC"), ("17", "260630"), ("21", "S1"), ("37", "5")]
    built = build_element_string(pairs, today=TODAY)
    assert built == "0109521234543213" + "10ABC" + GS + "17260630" + "21S1" + GS + "375"


def test_build_hri_escapes_brackets():
    pairs = [("10", "A(B)C"), ("21", "x)")]
    text = build_hri(pairs)
    assert text == "(10)A\\(B\\)C(21)x\\)"
    assert [(e.ai, e.raw) for e in parse_hri(text).elements] == pairs


def test_identical_duplicates_are_allowed():
    assert parse("(10)A(10)A").lot == "A"


def test_error_carries_code_and_message():
    with pytest.raises(GS1Error) as caught:
        parse("]C1" + "0109521234543214")
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.code == "bad_check_digit"
    assert error.ai == "01"
    assert "check digit" in error.message


def test_is_gs1():
    assert is_gs1("]C1" + PALLET)
    assert is_gs1("]Q3anything")
    assert is_gs1(PALLET_HRI)
    assert not is_gs1("]Q1https://example.com")
    assert not is_gs1("6901234567892")
    assert not is_gs1("(01)123")
    assert not is_gs1("")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("]C1" + "0109521234543214", "bad_check_digit"),
        ("]C1" + "00376130321109103421", "bad_check_digit"),
        ("(410)9521234543214", "bad_check_digit"),
        ("]C1" + "2312345", "unknown_ai"),
        ("]C1" + "0109521234543213" + "2312", "unknown_ai"),
        ("AB12", "unknown_ai"),
        ("(23)1", "unknown_ai"),
        ("]C1" + "010952123454", "bad_length"),  # fixed field cut short
        ("]C1" + "172606" + GS + "10A", "bad_length"),  # GS inside a fixed field
        ("]C1" + "10" + GS + "17260630", "bad_length"),  # empty variable field
        ("(10)" + "A" * 21, "bad_length"),
        ("(422)15", "bad_length"),
        ("(7007)2601012601", "bad_length"),  # half an end date
        ("]C1" + "10" + "A" * 21, "missing_separator"),
        ("]C1" + "21" + "S" * 20 + "3712", "missing_separator"),
        ("]C1" + "42215610ABC", "missing_separator"),  # non-predefined fixed length needs GS
        ("]C1" + "01095212345432A3", "bad_charset"),
        ("]C1" + "3712A", "bad_charset"),
        ("(3103)0007.5", "bad_charset"),
        ("(10)ABC 123", "bad_charset"),
        ("(10)批号", "bad_charset"),
        ("(4330)001234+", "bad_charset"),
        ("]C1" + "17261330", "bad_date"),  # month 13
        ("]C1" + "17260631", "bad_date"),
        ("(17)250229", "bad_date"),  # not a leap year
        ("(17)260000", "bad_date"),  # month 00
        ("(7006)260600", "bad_date"),  # day 00 only where the AI allows it
        ("(7003)2607012400", "bad_date"),
        ("(7003)2607011260", "bad_date"),
        ("(7250)20260230", "bad_date"),
        ("]C0" + PALLET, "not_gs1"),
        ("]Q1" + PALLET, "not_gs1"),
        ("]E0" + "6901234567892", "not_gs1"),
        ("]", "not_gs1"),
        ("", "empty"),
        ("  \r\n", "empty"),
        ("]C1", "empty"),
        ("]d2" + GS, "empty"),
        ("(01)09521234543213(17260630", "bad_hri"),
        ("(01)0952123454)3213", "bad_hri"),
        ("(01", "bad_hri"),
        ("((01)09521234543213", "bad_hri"),
        ("(01)09521234543213 10)ABC", "bad_hri"),
        ("(1O)ABC", "bad_hri"),
        ("(10)A(10)B", "duplicate_ai"),
    ],
)
def test_malformed_input_raises_exact_code(text, code):
    with pytest.raises(GS1Error) as caught:
        parse(text, today=TODAY)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ([], "empty"),
        ([("23", "1")], "unknown_ai"),
        ([("01", "09521234543214")], "bad_check_digit"),
        ([("10", "A" * 21)], "bad_length"),
    ],
)
def test_builders_validate(pairs, code):
    for build in (build_element_string, build_hri):
        with pytest.raises(GS1Error) as caught:
            build(pairs)
        assert caught.value.code == code


# --- properties -----------------------------------------------------------------------------

REPRESENTATIVE_AIS = [
    "00", "01", "02", "10", "11", "13", "15", "17", "21", "30", "37",
    "3100", "3101", "3102", "3103", "3104", "3105", "3202", "3922", "3932",
    "253", "400", "410", "421", "4330", "7003", "8003", "8005", "8008", "91",
]  # fmt: skip


@st.composite
def component_text(draw: st.DrawFn, component: Component) -> str:
    size = draw(st.integers(component.min_length, component.max_length))
    text = draw(st.text(alphabet=sorted(CHARSETS[component.charset]), min_size=size, max_size=size))
    if component.check_digit:
        text = text[:-1] + str(gs1_check_digit(text[:-1]))
    return text


@st.composite
def date_text(draw: st.DrawFn, layout: str) -> str:
    # With TODAY in 2026, YY 00-49 all resolve to 2000-2049.
    text = draw(st.dates(date(2000, 1, 1), date(2049, 12, 31))).strftime("%y%m%d")
    if layout == "YYMMD0" and draw(st.booleans()):
        text = text[:4] + "00"
    clock = draw(st.times()).strftime("%H%M%S")
    if layout == "YYMMDDHHMM":
        text += clock[:4]
    elif layout == "YYMMDDHH[MM[SS]]":
        text += clock[: draw(st.sampled_from([2, 4, 6]))]
    return text


@st.composite
def valid_value(draw: st.DrawFn, definition: AIDef) -> str:
    if definition.kind == "date":
        return draw(date_text(definition.date_format))
    if definition.kind == "temperature":
        return draw(component_text(definition.components[0])) + draw(st.sampled_from(["", "-"]))
    parts = []
    for component in definition.components:
        if component.optional and not draw(st.booleans()):
            break
        parts.append(draw(component_text(component)))
    return "".join(parts)


@st.composite
def element_pairs(draw: st.DrawFn) -> list[tuple[str, str]]:
    ais = draw(st.lists(st.sampled_from(REPRESENTATIVE_AIS), min_size=1, max_size=8, unique=True))
    return [(ai, draw(valid_value(AIS[ai]))) for ai in ais]


@settings(max_examples=300)
@given(element_pairs(), st.sampled_from(["", *sorted(GS1_SYMBOLOGY_IDS)]))
def test_element_string_round_trip(pairs, prefix):
    text = prefix + build_element_string(pairs, today=TODAY)
    message = parse(text, today=TODAY)
    assert [(element.ai, element.raw) for element in message.elements] == pairs
    assert message.as_dict() == dict(pairs)


@settings(max_examples=300)
@given(element_pairs())
def test_hri_round_trip(pairs):
    message = parse_hri(build_hri(pairs, today=TODAY), today=TODAY)
    assert [(element.ai, element.raw) for element in message.elements] == pairs
    assert parse(message.hri(), today=TODAY) == message


NOISE = "()\\ ]\x1d\x00\r\n\t0123456789ACQdeJ-+./%"

noisy_text = st.one_of(
    st.text(),
    st.text(alphabet=NOISE),
    st.builds(
        str.__add__,
        st.sampled_from([*GS1_SYMBOLOGY_IDS, "]C0", "]", "(", "(01)", "(10)", "(17)"]),
        st.text(alphabet=NOISE),
    ),
    element_pairs().map(lambda pairs: build_element_string(pairs, today=TODAY)[:-1]),
)


@settings(max_examples=500)
@given(noisy_text)
def test_any_text_gives_a_message_or_gs1error(text):
    try:
        message = parse(text, today=TODAY)
    except GS1Error as error:
        assert error.code in ERROR_CODES
    else:
        assert isinstance(message, GS1Message)
        assert message.elements
    assert is_gs1(text) in (True, False)


@given(st.sampled_from(sorted(AIS.values(), key=lambda d: d.ai)))
def test_table_is_self_consistent(definition):
    assert definition.ai.isdigit() and 2 <= len(definition.ai) <= 4
    assert definition.title
    assert definition.components
    if definition.predefined:
        assert definition.fixed_length is not None
        assert len(definition.ai) + definition.fixed_length == PREDEFINED_LENGTHS[definition.ai[:2]]
    # Only the last component may vary in length, and nothing mandatory follows an optional one.
    assert all(c.fixed for c in definition.components[:-1])
    flags = [c.optional for c in definition.components]
    assert flags == sorted(flags)
    assert (definition.date_format is not None) == (definition.kind == "date")
    assert definition.min_length >= 1


def test_table_families_and_keys():
    assert [AIS[f"310{n}"].decimals for n in range(6)] == [0, 1, 2, 3, 4, 5]
    assert "3106" not in AIS
    unallocated = {317, 318, 319, 338, 339, 358, 359}
    measures = [p for p in range(310, 370) if p not in unallocated]
    assert all(f"{p}{n}" in AIS and f"{p}6" not in AIS for p in measures for n in range(6))
    assert not any(f"{p}0" in AIS for p in unallocated)
    assert [AIS[f"390{n}"].decimals for n in range(10)] == list(range(10))
    assert "3944" not in AIS and "3955" in AIS and "3956" not in AIS
    with_check_digit = {ai for ai, d in AIS.items() if d.check_digit}
    assert with_check_digit == {
        "00", "01", "02", "03", "253", "255", "402",
        "410", "411", "412", "413", "414", "415", "416", "417",
        "8003", "8006", "8017", "8018", "8026",
    }  # fmt: skip
    assert AIS["8004"].check_digit is False and AIS["422"].check_digit is False
    assert AIS["17"].date_format == "YYMMD0" and AIS["7006"].date_format == "YYMMDD"
    assert {ai for ai in AIS if AIS[ai].predefined} >= {"00", "01", "17", "20", "3103", "410"}
    assert not AIS["37"].predefined and not AIS["3922"].predefined
    assert [AIS[f"723{n}"].title for n in (0, 9)] == ["CERT # 1", "CERT # 10"]
    assert all(str(ai) in AIS for ai in range(90, 100))
