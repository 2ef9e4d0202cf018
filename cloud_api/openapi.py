"""OpenAPI document of the cloud API."""

from __future__ import annotations

from typing import Any

from cangyun import __version__
from cangyun.openapi import PAGE_PARAMS, document, operation, path_param, query

AUTH = {401: "no, expired or invalid token"}


def spec() -> dict[str, Any]:
    movement_filters = [
        query("warehouse", "warehouse code"),
        query("device", "device code"),
        query("type", "movement type"),
        query("gtin", "GTIN (any length; matched as GTIN-14)"),
        query("sku", "SKU"),
        query("lot", "lot / batch"),
        query("customer", "cargo owner code"),
        query("from", "occurred at or after (RFC 3339)", {"type": "string", "format": "date-time"}),
        query("to", "occurred before (RFC 3339)", {"type": "string", "format": "date-time"}),
        query(
            "order",
            "asc (default, oldest first) or desc",
            {"type": "string", "enum": ["asc", "desc"]},
        ),
    ]
    from cloud_api import (
        api_accounts,
        api_billing,
        api_crm,
        api_expected,
        api_integrations,
        api_messages,
        api_sites,
    )

    fragments = [
        api_accounts.paths(),
        api_crm.paths(),
        api_sites.paths(),
        api_expected.paths(),
        api_integrations.paths(),
        api_billing.paths(),
        api_messages.paths(),
    ]
    ledger_paths = {
        "/api/v1/movements": {
            "get": operation(
                "The stock ledger: movements filed from every edge of the tenant",
                params=movement_filters + PAGE_PARAMS,
                responses={200: "page {total, items, next}", 400: "bad parameter"} | AUTH,
                tags=["ledger"],
            )
        },
        "/api/v1/stock": {
            "get": operation(
                "Stock per warehouse, cargo owner, goods and lot (pieces and kg)",
                params=[
                    query(n, f"only this {n}")
                    for n in ("warehouse", "customer", "gtin", "sku", "lot")
                ]
                + PAGE_PARAMS,
                responses={200: "page {total, items, next}", 400: "bad parameter"} | AUTH,
                tags=["ledger"],
            )
        },
        "/api/v1/devices": {
            "get": operation(
                "Devices of the tenant with their link state",
                responses={200: "page {total, items, next}"} | AUTH,
                tags=["devices"],
            )
        },
        "/api/v1/devices/{code}/sync": {
            "get": operation(
                "Sync state of one device: watermark, last seen, lag",
                params=[path_param("code", "device code")],
                responses={200: "sync state", 404: "no such device in this tenant"} | AUTH,
                tags=["devices"],
            )
        },
        "/api/v1/openapi.json": {
            "get": operation("This document", responses={200: "OpenAPI 3"}, public=True)
        },
    }
    # Merge per path: two modules may serve different methods of one path (/devices).
    paths: dict[str, Any] = {}
    for fragment in [*fragments, ledger_paths]:
        for path, operations in fragment.items():
            paths.setdefault(path, {}).update(operations)
    return document(
        "cangyun cloud API",
        __version__,
        "Tenants, ledger, stock and devices of 仓运通. JSON; errors are"
        ' {"error": {code, message, details}}; lists are {total, items, next}.',
        paths,
    )
