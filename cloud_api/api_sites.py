"""Placeholder: filled in by the sites work."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

bp = Blueprint("sites", __name__)


def paths() -> dict[str, Any]:
    return {}
