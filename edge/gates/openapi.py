"""OpenAPI paths of the gate API (merged into the edge document by ``edge/openapi.py``)."""

from __future__ import annotations

from typing import Any

from cangyun.openapi import PAGE_PARAMS, operation, path_param, query

GATE = path_param("gate", "gate code, e.g. dock-1")
HOLD = path_param("hold_id", "id of the held pallet")
TAGS = ["gates"]

GATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "direction"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"},
        "direction": {"type": "string", "enum": ["in", "out", "both"]},
        "window_s": {
            "type": "number",
            "default": 60,
            "description": "sightings of one pallet within this many seconds make one event",
        },
        "ocr_containers": {
            "type": "boolean",
            "default": False,
            "description": "also read ISO 6346 container numbers by OCR (about 0.7 s a frame)",
        },
        "ocr_plates": {
            "type": "boolean",
            "default": False,
            "description": "also read Chinese truck plates by OCR: each truck becomes a"
            " logged event of kind plate",
        },
    },
}

EXPECTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["qty"],
    "additionalProperties": False,
    "description": "one expected pallet; give sscc or gtin (or both)",
    "properties": {
        "direction": {
            "type": "string",
            "enum": ["in", "out"],
            "description": "default: the gate's; required on a gate for both directions",
        },
        "sscc": {"type": "string", "description": "18-digit SSCC"},
        "gtin": {"type": "string", "description": "GTIN-8/12/13/14"},
        "lot": {"type": "string", "maxLength": 20},
        "qty": {"type": "integer", "minimum": 1, "description": "pieces on the pallet"},
        "weight_kg": {"type": "number"},
        "customer": {"type": "string", "description": "cargo owner (货主) code"},
        "reference": {"type": "string", "description": "ASN or shipment number"},
    },
}

ACCEPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "what the operator confirms; missing values come from the event or line",
    "properties": {
        "qty": {"type": "integer", "minimum": 1},
        "direction": {"type": "string", "enum": ["in", "out"]},
        "gtin": {"type": "string"},
        "lot": {"type": "string", "maxLength": 20},
        "weight_kg": {"type": "number"},
        "customer": {"type": "string"},
        "note": {"type": "string", "maxLength": 500},
    },
}

NOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"note": {"type": "string", "maxLength": 500}},
}

IMAGE_BODY: dict[str, Any] = {
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
    },
}

AUTH = {401: "no or bad token"}
MISSING_GATE = {404: "no such gate"}


def gate_paths() -> dict[str, Any]:
    listing = {200: "page {total, items, next}", **AUTH, **MISSING_GATE}
    return {
        "/api/v1/gates": {
            "post": operation(
                "Add a gate; the answer holds its camera token, shown this once",
                body=GATE_SCHEMA,
                responses={
                    201: "the gate with camera_token",
                    **AUTH,
                    409: "gate_exists",
                    422: "invalid gate",
                },
                tags=TAGS,
            ),
            "get": operation(
                "List gates with their cameras",
                responses={200: "page {total, items, next}", **AUTH},
                tags=TAGS,
            ),
        },
        "/api/v1/gates/status": {
            "get": operation(
                "Frames received, decoded and dropped per gate, and the decoding queue",
                responses={200: "queue, dropped, gates", **AUTH},
                tags=TAGS,
            )
        },
        "/api/v1/gates/alerts": {
            "get": operation(
                "Gate alerts, newest first (unexpected goods, shipments stock cannot cover)",
                params=[query("gate", "only this gate's alerts"), *PAGE_PARAMS],
                responses={200: "page {total, items, next}", **AUTH},
                tags=TAGS,
            )
        },
        "/api/v1/gates/{gate}/expected": {
            "post": operation(
                "Expect a pallet at this gate (an ASN line inbound, a shipment line outbound)",
                params=[GATE],
                body=EXPECTED_SCHEMA,
                responses={201: "the expected line", **AUTH, **MISSING_GATE, 422: "invalid line"},
                tags=TAGS,
            ),
            "get": operation(
                "Expected pallets, newest first: this gate's and the cloud's for any gate",
                params=[
                    GATE,
                    query("status", "open, claimed, held, received, shipped or cancelled"),
                    *PAGE_PARAMS,
                ],
                responses=listing,
                tags=TAGS,
            ),
        },
        "/api/v1/gates/{gate}/frames": {
            "post": {
                **operation(
                    "Push one camera frame (raw image/jpeg body or multipart field `image`);"
                    " decoded asynchronously. Takes the gate's camera token or the device"
                    " token.",
                    params=[GATE, query("camera", "camera code (default: push)")],
                    responses={
                        202: "queued: gate, camera, width, height, waiting, dropped",
                        400: "empty upload",
                        **AUTH,
                        **MISSING_GATE,
                        413: "over 32 MB or too many pixels",
                        415: "not a JPEG, PNG or WebP image",
                        422: "corrupt image",
                    },
                    tags=TAGS,
                ),
                "requestBody": IMAGE_BODY,
            }
        },
        "/api/v1/gates/{gate}/events": {
            "get": operation(
                "Gate events, one per pallet pass, newest first",
                params=[
                    GATE,
                    *(
                        query(name, f"only events with this {name}")
                        for name in ("outcome", "kind", "sscc", "gtin", "plate")
                    ),
                    *PAGE_PARAMS,
                ],
                responses=listing,
                tags=TAGS,
            )
        },
        "/api/v1/gates/{gate}/held": {
            "get": operation(
                "Pallets held for an operator (unexpected, or stock does not allow)",
                params=[
                    GATE,
                    query("status", "open (default), accepted, rejected or all"),
                    *PAGE_PARAMS,
                ],
                responses=listing,
                tags=TAGS,
            )
        },
        "/api/v1/gates/{gate}/held/{hold_id}/accept": {
            "post": operation(
                "Accept a held pallet: records its receipt or shipment",
                params=[GATE, HOLD],
                body=ACCEPT_SCHEMA,
                responses={
                    200: "the hold, accepted, with movement_id",
                    **AUTH,
                    404: "no such gate or held pallet",
                    409: "hold_resolved, insufficient_stock, ambiguous_customer",
                    422: "missing qty, gtin or direction; invalid movement",
                    507: "storage_full",
                },
                tags=TAGS,
            )
        },
        "/api/v1/gates/{gate}/held/{hold_id}/reject": {
            "post": {
                **operation(
                    "Reject a held pallet: nothing is recorded; its expected line stays open",
                    params=[GATE, HOLD],
                    responses={
                        200: "the hold, rejected",
                        **AUTH,
                        404: "no such gate or held pallet",
                        409: "hold_resolved",
                    },
                    tags=TAGS,
                ),
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": NOTE_SCHEMA}},
                },
            }
        },
        "/api/v1/gates/{gate}/status": {
            "get": operation(
                "Per camera: frames received, decoded, dropped; source state and last error",
                params=[GATE],
                responses={200: "gate status", **AUTH, **MISSING_GATE},
                tags=TAGS,
            )
        },
    }
