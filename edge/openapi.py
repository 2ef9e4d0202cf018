"""OpenAPI document of the edge API."""

from __future__ import annotations

from typing import Any

from cangyun import __version__
from cangyun.openapi import MOVEMENT_SCHEMA, PAGE_PARAMS, document, operation, path_param, query
from edge.gates.openapi import gate_paths


def spec() -> dict[str, Any]:
    item_filters = [
        query(name, f"only movements with this {name}")
        for name in ("type", "gtin", "sku", "lot", "customer", "operator", "sscc")
    ]
    paths = {
        "/api/v1/movements": {
            "post": operation(
                "Record a stock movement (movement, stock effect and outbox row in one commit)",
                body=MOVEMENT_SCHEMA,
                params=[
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "a retried request with the same key records nothing new",
                        "schema": {"type": "string", "maxLength": 128},
                    }
                ],
                responses={
                    201: "recorded; body has id and seq",
                    200: "already recorded under this Idempotency-Key",
                    400: "malformed JSON",
                    401: "no or bad token",
                    403: "the licence refuses a new receipt: quota_exhausted, licence_expired"
                    " (also after a clock rollback), licence_invalid",
                    409: "stock does not allow it (insufficient_stock, ambiguous_customer)",
                    422: "invalid movement",
                    507: "storage_full: the disk budget is spent",
                },
            ),
            "get": operation(
                "List movements, newest first",
                params=item_filters + PAGE_PARAMS,
                responses={200: "page {total, items, next}", 401: "no or bad token"},
            ),
        },
        "/api/v1/movements/{movement_id}": {
            "get": operation(
                "One movement",
                params=[path_param("movement_id", "movement id")],
                responses={200: "the movement", 404: "unknown id", 401: "no or bad token"},
            )
        },
        "/api/v1/stock": {
            "get": operation(
                "Stock on hand per cargo owner, goods, lot and location",
                params=[
                    query(n, f"only this {n}")
                    for n in ("customer", "gtin", "sku", "lot", "location")
                ],
                responses={200: "page {total, items, next}", 401: "no or bad token"},
            )
        },
        "/api/v1/sync/status": {
            "get": operation(
                "Link to the cloud, the outbox backlog and a licence summary",
                responses={
                    200: "online, backlog, oldest_unacked_age_s, acked_through, licence"
                    " {state, days_left, inbound_allowed, ocr_allowed, ...}",
                    401: "no or bad token",
                },
            )
        },
        "/api/v1/licence": {
            "get": operation(
                "The licence in force, verified offline with the cloud's public key: state"
                " (none, valid, grace, expired, clock_rollback, invalid), features, add-ons,"
                " validity, days left and the token itself",
                responses={200: "licence state", 401: "no or bad token"},
            )
        },
        "/api/v1/scans": {
            "post": {
                **operation(
                    "Decode a photo (barcodes, GS1 data, label fields) or a scanned code string;"
                    " records nothing. Photos: raw body image/jpeg|png|webp or multipart field"
                    ' `image`, `?ocr=1` to read label text too. Codes: JSON {"code": "..."}.',
                    params=[query("ocr", "1 to read label text (slower); default 0")],
                    responses={
                        200: "barcodes, fields, conflicts, timings_ms (or code for a code string)",
                        400: "empty upload",
                        401: "no or bad token",
                        403: "?ocr=1 without the ocr_scanning add-on (feature_not_in_licence)"
                        " or with a lapsed licence (licence_expired, licence_invalid)",
                        413: "image too large or too many pixels",
                        415: "not a JPEG, PNG or WebP image",
                        422: "corrupt image or missing code",
                        503: "OCR engine unavailable",
                    },
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "image/webp": {"schema": {"type": "string", "format": "binary"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"image": {"type": "string", "format": "binary"}},
                            }
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["code"],
                                "properties": {"code": {"type": "string", "maxLength": 4096}},
                            }
                        },
                    },
                },
            }
        },
        "/api/v1/auth/login": {
            "post": operation(
                "Operator login for the PDA (works offline): sets the HttpOnly session cookie."
                " Needs the X-Requested-With header.",
                body={
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "maxLength": 32},
                        "password": {"type": "string", "maxLength": 128},
                    },
                },
                responses={
                    200: "operator {username, name} and expires_at; Set-Cookie",
                    401: "invalid_credentials",
                    403: "account_disabled, or csrf_header_missing",
                    422: "missing_credentials",
                    423: "account_locked after repeated failures; Retry-After says how long",
                },
                public=True,
            )
        },
        "/api/v1/auth/logout": {
            "post": operation(
                "End the operator's session and clear its cookie",
                responses={204: "logged out", 403: "csrf_header_missing"},
                public=True,
            )
        },
        "/api/v1/auth/session": {
            "get": operation(
                "Who is logged in (operator null for the device token)",
                responses={200: "operator and expires_at", 401: "session_expired or no token"},
            )
        },
        "/api/v1/movements/{movement_id}/undo": {
            "post": operation(
                "Undo a movement by compensating movements that name it in `reverses` (never"
                " a delete). Operators undo only their own; a repeat answers 200.",
                params=[path_param("movement_id", "movement id")],
                responses={
                    201: "recorded; items are the compensating movements",
                    200: "already undone; the same items",
                    401: "no or bad token, or session_expired",
                    403: "not_your_movement, csrf_header_missing",
                    404: "unknown id",
                    409: "cannot_undo (a count, an undo, a pick across bins) or"
                    " insufficient_stock (the goods moved on)",
                    507: "storage_full",
                },
            )
        },
        "/api/v1/customers": {
            "get": operation(
                "Cargo owners of recent movements, latest first (the PDA's choice list)",
                params=[query("limit", "at most this many (1-500, default 50)")],
                responses={200: "page {total, items: [{customer}], next}", 401: "no or bad token"},
            )
        },
        "/api/v1/openapi.json": {
            "get": operation("This document", responses={200: "OpenAPI 3"}, public=True)
        },
    }
    paths.update(gate_paths())  # dock gates: edge/gates/openapi.py
    return document(
        "cangyun edge API",
        __version__,
        "API of the warehouse edge box: PDAs, gate cameras and integrations.",
        paths,
    )
