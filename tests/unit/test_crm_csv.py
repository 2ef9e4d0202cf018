"""The cargo-owner (货主) CSV format and field rules, without a database."""

from __future__ import annotations

import string
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_api.crm import records as crm_csv
from cloud_api.crm.records import CsvError, FieldError, money, parse_csv

# Text a cargo owner's record may hold: Chinese, CSV's own special characters, line breaks,
# and the characters a spreadsheet would treat as the start of a formula.
SPICE = ",\"'\n\t=+-@;|"
free_text = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " " + SPICE)
    | st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    max_size=40,
)
single_line = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " +-()'=@,\"")
    | st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    max_size=crm_csv.PHONE_MAX,
)
codes = st.from_regex(crm_csv.CODE, fullmatch=True).filter(
    lambda c: c not in crm_csv.RESERVED_CODES
)


def amounts(rate: crm_csv.Rate) -> st.SearchStrategy[Decimal]:
    step = Decimal(1).scaleb(-rate.places)
    return st.integers(0, int(rate.maximum / step)).map(lambda n: n * step)


@st.composite
def customers(draw: st.DrawFn) -> dict:
    """A customer as the API would hold it: every value already through the field rules."""
    name = crm_csv.check_text(draw(free_text.filter(str.strip)), "name", crm_csv.NAME_MAX)
    contacts = []
    if draw(st.booleans()):
        contacts.append(
            crm_csv.check_contact(
                {
                    "name": draw(free_text.filter(str.strip)),
                    "phone": draw(single_line),
                    "email": draw(st.sampled_from(["", "a@b.cn", "Zhang.Wei@Example.COM"])),
                    "role": draw(free_text),
                },
                "contact",
            )
        )
    return {
        "code": draw(codes),
        "name": name,
        "contacts": contacts,
        **{rate.name: draw(amounts(rate)) for rate in crm_csv.RATES},
    }


@given(
    st.lists(customers(), max_size=8, unique_by=lambda c: c["code"]), st.sampled_from(["zh", "en"])
)
def test_export_then_import_gives_the_same_customers(records, lang):
    data = "".join(crm_csv.format_csv(records, lang=lang)).encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = parse_csv(data)
    assert parsed.errors == ()
    assert len(parsed.customers) == len(records)
    for row, (number, record) in zip(parsed.customers, enumerate(records, start=2), strict=True):
        assert row.row == number
        assert (row.code, row.name) == (record["code"], record["name"])
        assert row.contact == (record["contacts"][0] if record["contacts"] else None)
        assert row.rates == {r: record[r] for r in crm_csv.RATE_NAMES}


@given(st.decimals(min_value=0, max_value=10000, places=4, allow_nan=False))
def test_money_text_is_exact(amount):
    text = money(amount)
    assert Decimal(text) == amount
    assert len(text.split(".")[1]) in (2, 3, 4)
    assert crm_csv.check_money(text, "storage_per_tonne_day") == amount


def test_money_examples():
    assert [money(Decimal(v)) for v in ("12.5", "0.125", "3", "0.0001", "1E+2")] == [
        "12.50",
        "0.125",
        "3.00",
        "0.0001",
        "100.00",
    ]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("-1", "storage_per_tonne_day"),
        ("1.23456", "storage_per_tonne_day"),
        ("10000.0001", "handling_in_per_piece"),
        ("100000000.01", "minimum_monthly_charge"),
        ("0.001", "minimum_monthly_charge"),
        ("1e3", "minimum_monthly_charge"),
        ("", "minimum_monthly_charge"),
        ("１２", "minimum_monthly_charge"),  # full-width digits
        (True, "minimum_monthly_charge"),
        (None, "minimum_monthly_charge"),
        (float("inf"), "minimum_monthly_charge"),
    ],
)
def test_bad_money_is_refused(value, field):
    with pytest.raises(FieldError) as caught:
        crm_csv.check_money(value, field)
    assert caught.value.field == field


def test_json_numbers_are_accepted_as_decimals():
    assert crm_csv.check_money(0.1, "handling_in_per_piece") == Decimal("0.1")
    assert crm_csv.check_money(7, "handling_in_per_piece") == Decimal(7)


def test_customer_values_for_create_and_update():
    created = crm_csv.customer_values({"code": " a.b-1 ", "name": " 华东 \r\n 二部 "})
    assert created["code"] == "a.b-1"
    assert created["name"] == "华东 \n 二部"
    assert created["contacts"] == [] and created["contracts"] == []
    assert created["minimum_monthly_charge"] == Decimal(0)
    changes = crm_csv.customer_values({"name": "新"}, current_code="a.b-1")
    assert changes == {"name": "新"}
    with pytest.raises(FieldError) as caught:
        crm_csv.customer_values({"code": "other"}, current_code="a.b-1")
    assert (caught.value.field, caught.value.code) == ("code", "immutable_field")


def test_contract_rules():
    contracts = crm_csv.check_contracts(
        [{"number": "HT-1", "starts": "2026-01-01", "ends": None, "terms": "长期"}]
    )
    assert contracts == [{"number": "HT-1", "starts": "2026-01-01", "ends": None, "terms": "长期"}]
    for bad, field in (
        ([{"number": "1", "starts": "2026-1-1"}], "contracts[0].starts"),
        ([{"number": "1", "starts": "2026-01-02", "ends": "2026-01-01"}], "contracts[0].ends"),
        ([{"number": "", "starts": "2026-01-01"}], "contracts[0].number"),
        ([{"number": "1", "starts": "2026-01-01", "price": 1}], "contracts[0].price"),
    ):
        with pytest.raises(FieldError) as caught:
            crm_csv.check_contracts(bad)
        assert caught.value.field == field


def test_chinese_headers_with_bom_any_order_and_fullwidth_units():
    data = (
        "\ufeff月最低收费（元）,货主名称,货主编码,电话,联系人\r\n1000,上海仓,sh-1,021-1234,李雷\r\n"
    )
    parsed = parse_csv(data.encode("utf-8"))
    assert parsed.errors == ()
    [row] = parsed.customers
    assert (row.code, row.name, row.rates) == ("sh-1", "上海仓", {"minimum_monthly_charge": 1000})
    assert row.contact == {"name": "李雷", "phone": "021-1234", "email": "", "role": ""}


def test_gb18030_from_a_chinese_excel():
    data = "货主编码,货主名称\r\ngz,广州仓配\r\n".encode("gb18030")
    assert parse_csv(data).customers[0].name == "广州仓配"


def test_row_errors_name_spreadsheet_rows():
    data = (
        "code,name,contact_email,storage_per_tonne_day\n"
        'ok,"two\nline name",,1\n'  # row 2 spans two physical lines
        "bad code,x,,1\n"  # row 3
        ",,,\n"  # row 4: blank, skipped
        "ok,again,,1\n"  # row 5: duplicate code
        "c,d,e,2.00001\n"  # row 6: two problems
    )
    parsed = parse_csv(data.encode())
    assert [c.code for c in parsed.customers] == ["ok"]
    assert [(e.row, e.field) for e in parsed.errors] == [
        (3, "code"),
        (5, "code"),
        (6, "contact_name"),
        (6, "storage_per_tonne_day"),
    ]
    assert "row 2" in parsed.errors[1].reason


@pytest.mark.parametrize(
    ("data", "malformed"),
    [
        (b"", True),
        (b"\xef\xbb\xbf", True),
        (b"\x81\x30", True),  # truncated GB18030, not UTF-8 either
        (b"code,name,colour\n", False),
        (b"name\n", False),
        (b"code,Code,name\n", False),
    ],
)
def test_file_level_problems(data, malformed):
    with pytest.raises(CsvError) as caught:
        parse_csv(data)
    assert caught.value.malformed is malformed


def test_formula_cells_are_defused_and_restored():
    record = {
        "code": "f1",
        "name": "=1+1",
        "contacts": [{"name": "'quoted", "phone": "+86 10", "email": "", "role": "@x"}],
        **{r: Decimal(0) for r in crm_csv.RATE_NAMES},
    }
    cells = crm_csv.customer_cells(record)
    assert cells[:6] == ["f1", "'=1+1", "''quoted", "'+86 10", "", "'@x"]
    [row] = parse_csv("".join(crm_csv.format_csv([record])).encode()).customers
    assert row.name == "=1+1"
    assert row.contact == record["contacts"][0]
