"""Placeholder: filled in by the crm work."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

bp = Blueprint("crm", __name__)


def paths() -> dict[str, Any]:
    return {}
