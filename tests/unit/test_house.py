"""Rules of the house that a reader could break without noticing: they are checked here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cloud_modules() -> list[Path]:
    return [
        p
        for p in (ROOT / "cloud_api").rglob("*.py")
        if "migrations" not in p.parts and p != ROOT / "cloud_api" / "platform" / "db.py"
    ]


def test_every_cloud_write_goes_through_atomic():
    bare = re.compile(r"\.begin\(\)|write_connection\(|sqlite_immediate")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in _cloud_modules()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert not offenders, "write with cloud_api.platform.db.atomic():\n" + "\n".join(offenders)
