"""OpenAPI document of the cloud API, generated from the routes' declared bodies."""

from __future__ import annotations

from typing import Any

from flask import current_app

from cangyun import __version__, apispec


def spec() -> dict[str, Any]:
    return apispec.document(
        current_app,
        title="cangyun cloud API",
        version=__version__,
        description="Tenants, ledger, stock and devices of 仓运通. JSON; errors are"
        ' {"error": {code, message, details}}; lists are {total, items, next}.',
    )
