"""站内信 (in-site messages) and 消息订阅 (message subscriptions)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from cangyun.errors import NotFound
from cangyun.httpapi import (
    ApiError,
    decode_cursor,
    encode_cursor,
    json_body,
    json_response,
    page,
    query_int,
)
from cangyun.timeutil import utcnow
from cloud_api.messaging.store import (
    CHANNELS,
    MESSAGE_TYPES,
    InvalidSubscription,
    Subscription,
    TenantMessaging,
)
from cloud_api.platform.auth import caller, client_ip, engine, requires

bp = Blueprint("messages", __name__)

MAX_BODY = 16 * 1024
MAX_ID = 2**62  # larger ids cannot exist; refusing them early keeps BIGINT overflow out of SQL
MAX_RECIPIENTS = 100
PAGE_DEFAULT, PAGE_MAX = 50, 200


def tenant_messaging() -> TenantMessaging:
    return TenantMessaging(engine(), caller().tenant_id)


def inbox_owner() -> int:
    """Messages belong to people: an API key has no inbox."""
    user_id = caller().user_id
    if user_id is None:
        raise ApiError(403, "forbidden", "API keys have no in-site messages; log in as a user")
    return user_id


@bp.get("/messages")
def list_messages() -> Response:
    user_id = inbox_owner()
    unread = request.args.get("unread", "false").lower()
    if unread not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_parameter", "unread must be true or false")
    limit = query_int("limit", PAGE_DEFAULT, 1, PAGE_MAX)
    cursor = request.args.get("cursor")
    before = decode_cursor(cursor) if cursor else None
    if before is not None and (
        not isinstance(before, int) or isinstance(before, bool) or not 0 < before <= MAX_ID
    ):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, last = tenant_messaging().inbox(
        user_id, unread_only=unread in ("true", "1"), before_id=before, limit=limit
    )
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/messages/<int:message_id>/read")
def mark_read(message_id: int) -> Response:
    user_id = inbox_owner()
    if message_id > MAX_ID:
        raise ApiError(404, "not_found", f"no message {message_id}")
    try:
        return json_response(tenant_messaging().mark_read(user_id, message_id, utcnow()))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@bp.get("/subscriptions")
@requires("users:read")
def get_subscriptions() -> Response:
    return json_response(tenant_messaging().subscriptions())


@bp.put("/subscriptions")
@requires("users:write")
def put_subscriptions() -> Response:
    changes = _parse_subscriptions(json_body(MAX_BODY))
    try:
        result = tenant_messaging().set_subscriptions(changes, caller(), client_ip(), utcnow())
    except InvalidSubscription as exc:
        raise ApiError(422, "invalid_recipients", str(exc), {"field": exc.field}) from exc
    return json_response(result)


def _parse_subscriptions(data: Any) -> dict[str, Subscription]:
    if not isinstance(data, dict) or not data:
        raise ApiError(400, "invalid_body", "send an object keyed by message type")
    changes: dict[str, Subscription] = {}
    for message_type, entry in data.items():
        if message_type not in MESSAGE_TYPES:
            raise ApiError(
                422,
                "unknown_message_type",
                f"message types are {', '.join(MESSAGE_TYPES)}",
                {"field": message_type},
            )
        if not isinstance(entry, dict) or set(entry) - {"channels", "recipients"}:
            raise ApiError(
                422,
                "invalid_field",
                "each message type takes {channels, recipients}",
                {"field": message_type},
            )
        channels = entry.get("channels")
        if (
            not isinstance(channels, list)
            or not channels
            or not all(isinstance(c, str) and c in CHANNELS for c in channels)
        ):
            raise ApiError(
                422,
                "invalid_channels",
                f"channels must be a non-empty list of {', '.join(CHANNELS)}",
                {"field": f"{message_type}.channels"},
            )
        recipients = entry.get("recipients")
        if (
            not isinstance(recipients, list)
            or not 1 <= len(recipients) <= MAX_RECIPIENTS
            or not all(
                isinstance(r, int) and not isinstance(r, bool) and 0 < r <= MAX_ID
                for r in recipients
            )
        ):
            raise ApiError(
                422,
                "invalid_recipients",
                f"recipients must be a list of 1 to {MAX_RECIPIENTS} user ids",
                {"field": f"{message_type}.recipients"},
            )
        changes[message_type] = Subscription(tuple(channels), tuple(recipients))
    return changes


# --- OpenAPI ---------------------------------------------------------------------------


def paths() -> dict[str, Any]:
    from cangyun.openapi import operation, path_param, query

    tags = ["messages"]
    no_session = {401: "no, expired or invalid token"}
    subscription = {
        "type": "object",
        "required": ["channels", "recipients"],
        "additionalProperties": False,
        "properties": {
            "channels": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": list(CHANNELS)},
                "description": "in_site is always on, whether listed or not",
            },
            "recipients": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_RECIPIENTS,
                "items": {"type": "integer", "minimum": 1},
                "description": "user ids of this tenant",
            },
        },
    }
    return {
        "/api/v1/messages": {
            "get": operation(
                "My in-site messages (站内信), newest first",
                params=[
                    query(
                        "unread",
                        "only unread messages",
                        {"type": "string", "enum": ["true", "false", "1", "0"]},
                    ),
                    query(
                        "limit",
                        f"page size (1-{PAGE_MAX}, default {PAGE_DEFAULT})",
                        {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
                    ),
                    query("cursor", "the `next` value of the previous page"),
                ],
                responses={
                    200: "page {total, items, next}",
                    400: "bad parameter",
                    403: "an API key has no messages",
                }
                | no_session,
                tags=tags,
            )
        },
        "/api/v1/messages/{message_id}/read": {
            "post": operation(
                "Mark one of my messages read",
                params=[path_param("message_id", "message id", integer=True)],
                responses={
                    200: "the message",
                    403: "an API key has no messages",
                    404: "not one of my messages",
                }
                | no_session,
                tags=tags,
            )
        },
        "/api/v1/subscriptions": {
            "get": operation(
                "消息订阅: channels and recipients per message type (defaults when not set)",
                responses={200: "object keyed by message type", 403: "forbidden"} | no_session,
                tags=tags,
            ),
            "put": operation(
                "Change channels and recipients of some message types (owner, admin)",
                body={
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": False,
                    "properties": {t: subscription for t in MESSAGE_TYPES},
                },
                responses={
                    200: "all subscriptions",
                    400: "malformed body",
                    403: "forbidden",
                    422: "unknown type, channel or recipient",
                }
                | no_session,
                tags=tags,
            ),
        },
    }
