"""The synthetic label generator itself: deterministic, decodable, self-consistent, covering."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
import zxingcpp

from cangyun.identifiers import has_valid_check_digit
from tests.support import labels
from tests.support.camera import photograph

ZX_NAMES = {"Code128": "code128", "DataMatrix": "datamatrix"}


@pytest.fixture(autouse=True)
def _fonts() -> None:
    labels.require_fonts()


def _spec(seed: int, **pins: object) -> labels.LabelSpec:
    return labels.random_spec(random.Random(seed), **pins)


def _gs1_values(content: str) -> dict[str, str]:
    """AI -> value for the few AIs the generator writes (enough to check agreement)."""
    fixed = {"00": 18, "01": 14, "02": 14, "11": 6, "17": 6, "3100": 6, "3101": 6, "3102": 6}
    fixed["3103"] = 6
    out: dict[str, str] = {}
    rest = content
    while rest:
        ai = rest[:4] if rest[:4] in fixed else rest[:2]
        rest = rest[len(ai) :]
        if ai in fixed:
            out[ai], rest = rest[: fixed[ai]], rest[fixed[ai] :]
        else:
            value, _, rest = rest.partition("\x1d")
            out[ai] = value
    return out


def test_same_seed_same_truth():
    first = labels.label_set(6, seed=11, distort=False)
    again = labels.label_set(6, seed=11, distort=False)
    assert [t for _, t, _ in first] == [t for _, t, _ in again]
    assert [i.tobytes() for i, _, _ in first] == [i.tobytes() for i, _, _ in again]
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert photograph(first[0][0], rng_a).tobytes() == photograph(first[0][0], rng_b).tobytes()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_clean_label_barcodes_decode_to_truth(lang):
    spec = _spec(3, lang=lang, barcode_kinds=("code128", "datamatrix"))
    image, truth = labels.render(spec)
    decoded = zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain)
    got = sorted((ZX_NAMES[b.format.name], b.text) for b in decoded)
    assert got == sorted((b.format, b.content) for b in truth.barcodes)
    assert {b.format for b in truth.barcodes} == {"code128", "datamatrix"}
    assert all(b.gs1 for b in truth.barcodes)


@pytest.mark.parametrize("conflict", [False, True])
def test_barcodes_agree_with_printed_fields(conflict):
    for seed in range(12):
        spec = _spec(seed, conflict=conflict)
        _, truth = labels.render(spec)
        fields = truth.fields
        assert has_valid_check_digit(fields["gtin"]) and len(fields["gtin"]) == 14
        if "sscc" in fields:
            assert has_valid_check_digit(fields["sscc"]) and len(fields["sscc"]) == 18
        merged: dict[str, str] = {}
        for barcode in truth.barcodes:
            if barcode.gs1:
                merged.update(_gs1_values(barcode.content))
        assert merged.get("01", merged.get("02")) == fields["gtin"]
        assert merged["10"] == fields["lot"]
        for ai, name in (("11", "production_date"), ("17", "expiry_date")):
            if ai in merged:  # DataBar Expanded leaves the production date out
                assert merged[ai] == dt.date.fromisoformat(fields[name]).strftime("%y%m%d")
        if "net_weight_kg" in fields:
            ai = next(k for k in merged if k.startswith("310"))
            assert int(merged[ai]) / 10 ** int(ai[3]) == pytest.approx(fields["net_weight_kg"])
        if "37" in merged:
            assert int(merged["37"]) == fields["quantity"]
        if conflict:
            assert truth.printed_lot and truth.printed_lot != fields["lot"]
        else:
            assert truth.printed_lot is None


def test_shelf_life_expiry_is_clamped_to_month_end():
    spec = dataclasses.replace(
        _spec(4, lang="zh", barcode_kinds=("datamatrix",)),
        production_date=dt.date(2026, 1, 31),
        shelf_life_months=1,
        expiry_as_duration=True,
    )
    _, truth = labels.render(spec)
    assert truth.fields["expiry_date"] == "2026-02-28"
    assert "17260228" in truth.barcodes[0].content
    assert labels.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert labels.add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)


def test_label_set_covers_every_dimension():
    specs = [spec for _, _, spec in labels.label_set(40, seed=1, distort=False)]
    for lang in labels.LANGS:
        mine = [s for s in specs if s.lang == lang]
        assert {s.layout for s in mine} == set(labels.LAYOUTS)
        assert {s.font for s in mine} == set(labels.available_fonts(lang))
        assert {s.barcode_kinds for s in mine} == set(labels.BARCODE_SETS)
        assert {s.weight_unit for s in mine} == set(labels.WEIGHT_UNITS[lang])
        assert {s.expiry_as_duration for s in mine} == {False, True}
