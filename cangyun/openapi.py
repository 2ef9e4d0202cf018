"""A few builders that keep each app's OpenAPI document short and readable."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def document(title: str, version: str, description: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version, "description": description},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def operation(
    summary: str,
    *,
    responses: dict[int, str],
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    public: bool = False,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if tags:
        op["tags"] = tags
    for status, description in responses.items():
        response: dict[str, Any] = {"description": description}
        if status >= 400:
            response["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            }
        else:
            response["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"][str(status)] = response
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        op["security"] = []
    return op


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def path_param(name: str, description: str, *, integer: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1} if integer else {"type": "string"},
    }


PAGE_PARAMS = [
    query(
        "limit",
        "page size (1-1000, default 100)",
        {"type": "integer", "minimum": 1, "maximum": 1000},
    ),
    query("cursor", "the `next` value of the previous page"),
]

MOVEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "qty"],
    "additionalProperties": False,
    "properties": {
        "type": {
            "type": "string",
            "enum": ["receive", "putaway", "pick", "ship", "adjust", "transfer", "count"],
        },
        "gtin": {"type": "string", "description": "GTIN-8/12/13/14 with a valid check digit"},
        "sku": {"type": "string", "maxLength": 64},
        "qty": {"type": "integer", "description": "pieces; signed for adjust, counted for count"},
        "lot": {"type": "string", "maxLength": 20},
        "expiry_date": {"type": "string", "format": "date"},
        "weight_kg": {"type": "number", "description": "total weight of the movement in kg"},
        "customer": {"type": "string", "description": "cargo owner (货主) code"},
        "location": {"type": "string"},
        "to_location": {"type": "string"},
        "sscc": {"type": "string", "description": "18-digit SSCC of the pallet"},
        "serial": {"type": "string", "maxLength": 20},
        "occurred_at": {"type": "string", "format": "date-time"},
    },
}
