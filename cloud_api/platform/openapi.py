"""OpenAPI document of the cloud API, generated from the routes' declared bodies."""

from __future__ import annotations

from typing import Any

from flask import current_app

from cangyun import __version__, apispec


def spec() -> dict[str, Any]:
    document = apispec.document(
        current_app,
        title="cangyun cloud API",
        version=__version__,
        description="Tenants, ledger, stock and devices of 仓运通. JSON; errors are"
        ' {"error": {code, message, details}}; lists are {total, items, next}.',
    )
    # Routes not yet declared with apispec.operation keep their hand-written fragments.
    from cloud_api.accounts import api as accounts
    from cloud_api.billing import api as billing
    from cloud_api.crm import api as crm
    from cloud_api.expected import api as expected
    from cloud_api.integrations import api as integrations
    from cloud_api.messaging import api as messaging
    from cloud_api.sites import api as sites

    for module in (accounts, crm, sites, expected, integrations, billing, messaging):
        fragment = getattr(module, "paths", None)
        if fragment is None:
            continue
        for path, operations in fragment().items():
            for method, op in operations.items():
                document["paths"].setdefault(path, {}).setdefault(method, op)
    return document
