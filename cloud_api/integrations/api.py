"""二次开发管理: webhooks (API keys live with the accounts)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from cangyun.errors import NotFound
from cangyun.httpapi import ApiError, json_body, json_response, page
from cloud_api.integrations.store import EVENTS, TenantIntegrations
from cloud_api.integrations.webhooks import WebhookUrlError, check_url
from cloud_api.platform.auth import caller, client_ip, engine, feature, requires

bp = Blueprint("integrations", __name__)


def store() -> TenantIntegrations:
    return TenantIntegrations(engine(), caller().tenant_id)


@bp.get("/webhooks")
@requires("webhooks:manage")
@feature("secondary_development")
def list_webhooks() -> Response:
    items = store().webhooks()
    return json_response(page(len(items), items, None))


@bp.post("/webhooks")
@requires("webhooks:manage")
@feature("secondary_development")
def create_webhook() -> Response:
    data = json_body(16 * 1024)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send {url, events}")
    url, events = data.get("url"), data.get("events")
    if not isinstance(url, str):
        raise ApiError(422, "missing_field", "url is required", {"field": "url"})
    allow_private = current_app.extensions["cangyun.settings"].cloud.webhooks_allow_private
    try:
        url = check_url(url, allow_private=allow_private)
    except WebhookUrlError as exc:
        raise ApiError(422, "invalid_url", str(exc), {"field": "url"}) from exc
    choosable = [e for e in EVENTS if e != "ping"]
    if (
        not isinstance(events, list)
        or not events
        or not all(isinstance(e, str) and e in choosable for e in events)
    ):
        raise ApiError(
            422, "invalid_events", f"events must be a list from {choosable}", {"field": "events"}
        )
    webhook, secret = store().create(url, sorted(set(events)), caller(), client_ip())
    return json_response(webhook | {"secret": secret}, 201)


@bp.delete("/webhooks/<int:webhook_id>")
@requires("webhooks:manage")
@feature("secondary_development")
def delete_webhook(webhook_id: int) -> Response:
    try:
        store().delete(webhook_id, caller(), client_ip())
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return Response(status=204)


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@requires("webhooks:manage")
@feature("secondary_development")
def list_deliveries(webhook_id: int) -> Response:
    try:
        items = store().deliveries(webhook_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return json_response(page(len(items), items, None))


@bp.post("/webhooks/<int:webhook_id>/ping")
@requires("webhooks:manage")
@feature("secondary_development")
def ping_webhook(webhook_id: int) -> Response:
    try:
        store().ping(webhook_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return json_response({"queued": True}, 202)


def paths() -> dict[str, Any]:
    from cangyun.openapi import operation, path_param

    webhook_id = [path_param("webhook_id", "webhook id", integer=True)]
    errors = {401: "no session", 403: "forbidden"}
    tags = ["integrations"]
    return {
        "/api/v1/webhooks": {
            "get": operation(
                "Webhooks of this tenant", responses={200: "page"} | errors, tags=tags
            ),
            "post": operation(
                "Subscribe a URL to events; the signing secret is shown only here",
                body={
                    "type": "object",
                    "required": ["url", "events"],
                    "additionalProperties": False,
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "enum": ["movements.created", "alerts.created"],
                            },
                        },
                    },
                },
                responses={201: "webhook with secret", 400: "malformed", 422: "invalid"} | errors,
                tags=tags,
            ),
        },
        "/api/v1/webhooks/{webhook_id}": {
            "delete": operation(
                "Delete a webhook and its queue",
                params=webhook_id,
                responses={204: "deleted", 404: "not found"} | errors,
                tags=tags,
            )
        },
        "/api/v1/webhooks/{webhook_id}/deliveries": {
            "get": operation(
                "Recent deliveries with status and last error",
                params=webhook_id,
                responses={200: "page", 404: "not found"} | errors,
                tags=tags,
            )
        },
        "/api/v1/webhooks/{webhook_id}/ping": {
            "post": operation(
                "Queue a ping delivery to test the receiver",
                params=webhook_id,
                responses={202: "queued", 404: "not found"} | errors,
                tags=tags,
            )
        },
    }
