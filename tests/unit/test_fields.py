"""Label field extraction from OCR lines: pure logic on hand-made lines, no OCR engine."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ocr_service import fields as F
from ocr_service import gs1
from ocr_service.ocr import TextLine


def line(text: str, x: int, y: int, w: int = 200, h: int = 40, slope: float = 0.0) -> TextLine:
    """A text line box at (x, y), optionally sloping (dy per px along the line)."""
    dy = int(w * slope)
    return TextLine(text, ((x, y), (x + w, y + dy), (x + w, y + dy + h), (x, y + h)), 0.99)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-15", date(2026, 3, 15)),
        ("2026.3.5", date(2026, 3, 5)),
        ("2026/03/15", date(2026, 3, 15)),
        ("2026年03月15日", date(2026, 3, 15)),
        ("20260315", date(2026, 3, 15)),
        ("15 MAR 2026", date(2026, 3, 15)),
        ("Mar 15, 2026", date(2026, 3, 15)),
        ("15/03/2026", date(2026, 3, 15)),
        ("2O26-O3-l5", date(2026, 3, 15)),  # OCR confusions inside digits
        ("２０２６－０３－１５", date(2026, 3, 15)),  # full width
        ("2027-06", date(2027, 6, 30)),  # month only: its end
        ("2026-02-30", None),
        ("tomorrow", None),
    ],
)
def test_dates(text, expected):
    assert F.parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "kg"),
    [
        ("12.5kg", "12.500"),
        ("12,5 KG", "12.500"),
        ("750 g", "0.750"),
        ("1.2t", "1200.000"),
        ("3斤", "1.500"),
        ("15公斤", "15.000"),
        ("500克", "0.500"),
        ("2 lbs", "0.907"),
        ("0 kg", None),
        ("heavy", None),
        ("12.5", None),  # no unit, no guess
    ],
)
def test_weights_normalise_to_kg(text, kg):
    value = F.parse_weight_kg(text)
    assert (value if value is None else str(value)) == kg


@pytest.mark.parametrize(
    ("start", "shelf", "expiry"),
    [
        (date(2026, 1, 31), "1个月", date(2026, 2, 28)),
        (date(2024, 1, 31), "1个月", date(2024, 2, 29)),
        (date(2026, 3, 15), "24个月", date(2028, 3, 15)),
        (date(2026, 3, 15), "180天", date(2026, 9, 11)),
        (date(2026, 3, 15), "2年", date(2028, 3, 15)),
        (date(2026, 3, 15), "6 months", date(2026, 9, 15)),
    ],
)
def test_shelf_life_is_counted_from_production(start, shelf, expiry):
    assert F.add_duration(start, F.parse_shelf_life(shelf)) == expiry


def test_key_value_on_one_line_right_and_below():
    lines = [
        line("品名：冷冻带鱼段", 50, 50, w=400),
        line("批号", 50, 120, w=80),
        line("B2611-07", 300, 122, w=200),  # two columns: value to the right
        line("生产日期", 50, 190, w=160),
        line("2026.03.15", 50, 235, w=200),  # stacked: value below
        line("保质期 24个月", 50, 300, w=300),
        line("净重", 50, 360, w=80),
        line("12.5kg", 300, 360, w=150),
        line("数量", 50, 420, w=80),
        line("24 箱", 300, 420, w=100),
        line("货主", 50, 480, w=80),
        line("上海冷链物流有限公司", 300, 480, w=400),
    ]
    assert F.read_fields(lines) == {
        "product_name": "冷冻带鱼段",
        "lot": "B2611-07",
        "production_date": "2026-03-15",
        "expiry_date": "2028-03-15",
        "net_weight_kg": 12.5,
        "quantity": 24,
        "owner": "上海冷链物流有限公司",
    }


def test_a_slanted_photo_keeps_rows_apart():
    # Every line slopes down 0.15 px per px: on a naive y-overlap test the value of the
    # second row would be taken for the first key.
    slope = 0.15
    lines = [
        line("LOT", 50, 100, w=80, slope=slope),
        line("B2405-14", 400, 100 + int(350 * slope), w=200, slope=slope),
        line("QTY", 50, 170, w=80, slope=slope),
        line("310 CASES", 400, 170 + int(350 * slope), w=200, slope=slope),
    ]
    fields = F.read_fields(lines)
    assert (fields["lot"], fields["quantity"]) == ("B2405-14", 310)


def test_stacked_columns_take_the_value_under_each_key():
    lines = [
        line("批次", 50, 100, w=80),
        line("GTIN", 400, 100, w=80),
        line("2025040904", 50, 150, w=220),
        line("6914594797861", 400, 148, w=260),
    ]
    fields = F.read_fields(lines)
    assert (fields["lot"], fields["gtin"]) == ("2025040904", "06914594797861")


def test_a_wrapped_name_is_joined_but_not_the_next_rows_value():
    lines = [
        line("Product:", 50, 100, w=160),
        line("Mozzarella Cheese", 300, 100, w=320),
        line("Blocks", 300, 145, w=110),
        line("LOT:", 50, 200, w=80),
        line("C68342", 300, 200, w=150),
    ]
    fields = F.read_fields(lines)
    assert fields["product_name"] == "Mozzarella Cheese Blocks"
    assert fields["lot"] == "C68342"


def test_titles_are_not_keys():
    fields = F.read_fields(
        [
            line("PRODUCT LABEL", 200, 20, w=400),
            line("Product", 50, 100),
            line("Greek Yogurt 200g x 12", 300, 100, w=400),
        ]
    )
    assert fields["product_name"] == "Greek Yogurt 200g x 12"


def test_human_readable_gs1_line_and_bare_identifiers_are_used():
    fields = F.read_fields(
        [
            line("(01)06901234567892(10)LOT7(17)270131", 50, 100, w=600),
            line("(00) 1 0614141 123456789 7", 50, 200, w=600),
        ]
    )
    assert fields["gtin"] == "06901234567892"
    assert fields["lot"] == "LOT7"
    assert fields["expiry_date"] == "2027-01-31"
    assert fields["sscc"] == "106141411234567897"


def test_barcode_wins_ocr_fills_and_disagreements_are_reported():
    message = gs1.parse("]C1010690123456789210B2611-07\x1d172701313103012500")
    barcode = F.gs1_fields(message)
    assert barcode["net_weight_kg"] == 12.5
    merged = F.merge(
        barcode,
        {"lot": "B2611-O7", "expiry_date": "2027-02-28", "owner": "Acme", "gtin": "06901234567892"},
    )
    assert merged.fields["lot"] == "B2611-07"  # O/0 confusion is not a conflict
    assert merged.fields["owner"] == "Acme"
    assert merged.sources == {
        "gtin": "barcode",
        "lot": "barcode",
        "expiry_date": "barcode",
        "net_weight_kg": "barcode",
        "owner": "ocr",
    }
    assert merged.conflicts == [
        {"field": "expiry_date", "barcode": "2027-01-31", "ocr": "2027-02-28"}
    ]


def test_weights_are_compared_in_kg():
    merged = F.merge({"net_weight_kg": 12.5}, {"net_weight_kg": float(Decimal("12.500"))})
    assert merged.conflicts == []
    assert F.merge({"net_weight_kg": 12.5}, {"net_weight_kg": 1.25}).conflicts
