"""Every error the edge can answer the PDA with has a sentence in Chinese and in English."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ROOT / "edge" / "pda" / "static" / "pda" / "i18n.js"
# (file, pattern of the code's first argument) for every place an edge error code is made.
SOURCES = {
    "edge/api.py": r"ApiError\(\s*\d{3},\s*\"([a-z_]+)\"",
    "edge/scanning.py": r"ApiError\(\s*\d{3},\s*\"([a-z_]+)\"",
    "edge/store.py": r"\n    code = \"([a-z_]+)\"",
    "edge/operators.py": r"(?:Operator|Login|Account)\w*\(\s*\"([a-z_]+)\"",
    "edge/licence.py": r"\"(licence_[a-z_]+|quota_exhausted|feature_not_in_licence)\"",
    "edge/stock.py": r"StockError\(\s*\"([a-z_]+)\"",
    "edge/pda/undo.py": r"CannotUndo\(\s*\"([a-z_]+)\"",
    "ocr_service/images.py": r"ImageError\(\s*\"([a-z_]+)\"",
    "cangyun/movement.py": r"MovementError\(\s*\"([a-z_]+)\"",
}
# Only integrators can cause these (the page never sends such a request); they keep the
# edge's own English message.
NOT_FROM_THE_PDA = {
    "invalid_body",
    "unknown_field",
    "unknown_type",
    "invalid_timestamp",
    "invalid_idempotency_key",
    "invalid_parameter",
    "operator_exists",
    "operator_not_found",
    "invalid_username",
    "invalid_password",
    "weak_password",
    "invalid_name",
}


def texts(lang: str) -> set[str]:
    source = TEXTS.read_text(encoding="utf-8")
    block = source.split(f"  {lang}: {{", 1)[1].split("\n  },", 1)[0]
    return set(re.findall(r"(?:^|,)\s*([a-z0-9_]+):\s*\"", block, re.MULTILINE))


def edge_error_codes() -> set[str]:
    codes: set[str] = set()
    for path, pattern in SOURCES.items():
        codes |= set(re.findall(pattern, (ROOT / path).read_text(encoding="utf-8")))
    return codes


def test_both_languages_have_the_same_texts():
    assert texts("zh") == texts("en")


def test_every_error_the_pda_can_meet_is_translated():
    codes = edge_error_codes()
    assert {"storage_full", "feature_not_in_licence", "quota_exhausted", "account_locked"} <= codes
    missing = sorted(codes - NOT_FROM_THE_PDA - texts("zh"))
    assert missing == []


def test_refusals_worded_from_details_have_their_sentences():
    """The PDA words these from the error's details instead of the edge's English message."""
    from cangyun.movement import _API_FIELDS

    undo = (ROOT / "edge/pda/undo.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r"reason=\"([a-z_]+)\"", undo))
    assert {"is_undo", "several_bins", "not_undoable"} <= reasons
    wanted = {f"undo_{r}" for r in reasons} | {f"field_{f}" for f in _API_FIELDS}
    wanted |= {"short_stock", "all_bins", "invalid_field_named", "missing_field_named"}
    for lang in ("zh", "en"):
        assert sorted(wanted - texts(lang)) == [], lang
