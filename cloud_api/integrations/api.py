"""二次开发管理: webhooks (API keys live with the accounts)."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, current_app
from pydantic import Field

from cangyun.apispec import Body, Page, Reply, operation
from cangyun.fields import Text
from cangyun.httpapi import json_response, page
from cloud_api.integrations.store import EVENTS, TenantIntegrations
from cloud_api.integrations.webhooks import MAX_URL, check_url
from cloud_api.platform.auth import caller, client_ip, engine, feature, requires

bp = Blueprint("integrations", __name__)

MAX_BODY = 16 * 1024
# ping is sent on request (POST .../ping), never subscribed to.
ChoosableEvent = Literal[tuple(e for e in EVENTS if e != "ping")]  # type: ignore[valid-type]
Event = Literal[EVENTS]  # type: ignore[valid-type]


class NewWebhook(Body):
    url: Text(MAX_URL) = Field(
        json_schema_extra={"format": "uri"},
        description="http:// or https://, resolving to a public address",
    )
    events: list[ChoosableEvent] = Field(min_length=1, description="the events to receive")


class Webhook(Reply):
    """A webhook of the tenant"""

    id: int
    url: str
    events: list[Event]
    active: bool
    created_at: str


class CreatedWebhook(Webhook):
    """The new webhook, with its signing secret (shown only here)"""

    secret: str


class WebhookDelivery(Reply):
    """One delivery of an event to a webhook"""

    id: int
    event: Event
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str
    created_at: str
    delivered_at: str | None


class PingQueued(Reply):
    """The ping is queued"""

    queued: bool


def store() -> TenantIntegrations:
    return TenantIntegrations(engine(), caller().tenant_id)


@bp.get("/webhooks")
@requires("webhooks:manage")
@feature("secondary_development")
@operation("Webhooks of this tenant", responses={200: Page[Webhook]})
def list_webhooks() -> Response:
    items = store().webhooks()
    return json_response(page(len(items), items, None))


@bp.post("/webhooks")
@requires("webhooks:manage")
@feature("secondary_development")
@operation(
    "Subscribe a URL to events; the signing secret is shown only here",
    body=NewWebhook,
    max_bytes=MAX_BODY,
    responses={201: CreatedWebhook, 422: "invalid_url: not http(s), or a private address"},
)
def create_webhook(body: NewWebhook) -> Response:
    allow_private = current_app.extensions["cangyun.settings"].cloud.webhooks_allow_private
    url = check_url(body.url, allow_private=allow_private)
    webhook, secret = store().create(url, sorted(set(body.events)), caller(), client_ip())
    return json_response(webhook | {"secret": secret}, 201)


@bp.delete("/webhooks/<int:webhook_id>")
@requires("webhooks:manage")
@feature("secondary_development")
@operation(
    "Delete a webhook and its queue",
    responses={204: "deleted", 404: "no such webhook in this tenant"},
)
def delete_webhook(webhook_id: int) -> Response:
    store().delete(webhook_id, caller(), client_ip())
    return Response(status=204)


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@requires("webhooks:manage")
@feature("secondary_development")
@operation(
    "Recent deliveries with status and last error, newest first",
    responses={200: Page[WebhookDelivery], 404: "no such webhook in this tenant"},
)
def list_deliveries(webhook_id: int) -> Response:
    items = store().deliveries(webhook_id)
    return json_response(page(len(items), items, None))


@bp.post("/webhooks/<int:webhook_id>/ping")
@requires("webhooks:manage")
@feature("secondary_development")
@operation(
    "Queue a ping delivery to test the receiver",
    responses={202: PingQueued, 404: "no such webhook in this tenant"},
)
def ping_webhook(webhook_id: int) -> Response:
    store().ping(webhook_id)
    return json_response({"queued": True}, 202)
