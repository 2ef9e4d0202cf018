"""站内信 (in-site messages) and 消息订阅 (message subscriptions)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import ConfigDict, Field

from cangyun.apispec import Body, Page, Query, Reply, operation
from cangyun.errors import Forbidden
from cangyun.fields import RowId, Text
from cangyun.httpapi import ApiError, decode_cursor, encode_cursor, json_response, page
from cangyun.timeutil import utcnow
from cloud_api.messaging.reminders import PERIOD_ENDING, QUOTA_EXHAUSTED, RENEWAL_REMINDER
from cloud_api.messaging.store import (
    CHANNELS,
    CUSTOM_SERVICE,
    MESSAGE_TYPE_LABELS,
    MESSAGE_TYPES,
    Subscription,
    TenantMessaging,
)
from cloud_api.platform.auth import caller, client_ip, engine, requires

bp = Blueprint("messages", __name__)

MAX_BODY = 16 * 1024
MAX_ID = 2**62  # larger ids cannot exist; refusing them early keeps BIGINT overflow out of SQL
MAX_RECIPIENTS = 100
PAGE_DEFAULT, PAGE_MAX = 50, 200
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
MessageType = Literal[MESSAGE_TYPES]  # type: ignore[valid-type]


class MessageFilter(Query):
    unread: bool = Field(False, description="only unread messages")
    limit: int = Field(PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="page size")
    cursor: Text(400) | None = Field(None, description="the `next` value of the previous page")


class InSiteMessage(Reply):
    """An in-site message (站内信)"""

    id: int
    message_type: MessageType
    title: str
    body: str
    created_at: str
    read_at: str | None
    read: bool


class SubscriptionChange(Body):
    channels: list[Channel] = Field(
        min_length=1, description="in_site is always on, whether listed or not"
    )
    recipients: list[RowId] = Field(
        min_length=1, max_length=MAX_RECIPIENTS, description="user ids of this tenant"
    )


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent means unchanged; null is not accepted


def _change(message_type: str) -> Any:
    # Defaults are not validated, so an absent type is None while a null sent is refused.
    return Field(
        None,
        description=f"{MESSAGE_TYPE_LABELS[message_type]}; absent: unchanged",
        json_schema_extra=_no_default,
    )


class SubscriptionChanges(Body):
    """The message types to change, each with all its channels and recipients"""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    renewal_reminder: SubscriptionChange = _change(RENEWAL_REMINDER)
    quota_exhausted: SubscriptionChange = _change(QUOTA_EXHAUSTED)
    period_ending: SubscriptionChange = _change(PERIOD_ENDING)
    custom_service: SubscriptionChange = _change(CUSTOM_SERVICE)


class SubscribedUser(Reply):
    id: int
    email: str
    name: str
    has_phone: bool


class SubscriptionView(Reply):
    label: str
    channels: list[Channel]
    recipients: list[int]
    users: list[SubscribedUser] = Field(description="the recipients still active")
    default: bool = Field(description="never set: the owner, by every channel")
    updated_at: str | None


class Subscriptions(Reply):
    """Channels and recipients of every message type (defaults when not set)"""

    renewal_reminder: SubscriptionView
    quota_exhausted: SubscriptionView
    period_ending: SubscriptionView
    custom_service: SubscriptionView = Field(description="by email and in-site message only")


assert tuple(SubscriptionChanges.model_fields) == MESSAGE_TYPES
assert tuple(Subscriptions.model_fields) == MESSAGE_TYPES


def tenant_messaging() -> TenantMessaging:
    return TenantMessaging(engine(), caller().tenant_id)


def inbox_owner() -> int:
    """Messages belong to people: an API key has no inbox."""
    user_id = caller().user_id
    if user_id is None:
        raise Forbidden("API keys have no in-site messages; log in as a user")
    return user_id


@bp.get("/messages")
@operation(
    "My in-site messages (站内信), newest first",
    query=MessageFilter,
    responses={200: Page[InSiteMessage], 403: "an API key has no messages"},
)
def list_messages(query: MessageFilter) -> Response:
    user_id = inbox_owner()
    before = decode_cursor(query.cursor) if query.cursor else None
    if before is not None and (
        not isinstance(before, int) or isinstance(before, bool) or not 0 < before <= MAX_ID
    ):
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid")
    total, items, last = tenant_messaging().inbox(
        user_id, unread_only=query.unread, before_id=before, limit=query.limit
    )
    return json_response(page(total, items, encode_cursor(last) if last else None))


@bp.post("/messages/<int:message_id>/read")
@operation(
    "Mark one of my messages read (again: the same answer)",
    responses={
        200: InSiteMessage,
        403: "an API key has no messages",
        404: "not one of my messages",
    },
)
def mark_read(message_id: int) -> Response:
    user_id = inbox_owner()
    return json_response(tenant_messaging().mark_read(user_id, message_id, utcnow()))


@bp.get("/subscriptions")
@requires("users:read")
@operation(
    "消息订阅: channels and recipients per message type (defaults when not set)",
    responses={200: Subscriptions},
)
def get_subscriptions() -> Response:
    return json_response(tenant_messaging().subscriptions())


@bp.put("/subscriptions")
@requires("users:write")
@operation(
    "Change channels and recipients of some message types (owner, admin)",
    body=SubscriptionChanges,
    max_bytes=MAX_BODY,
    responses={
        200: Subscriptions,
        400: "no message type in the body",
        422: "invalid_recipients: a recipient is not an active user of this tenant;"
        " channel_not_offered: SMS for a type without an SMS template",
    },
)
def put_subscriptions(body: SubscriptionChanges) -> Response:
    changes = {
        message_type: Subscription(tuple(wanted.channels), tuple(wanted.recipients))
        for message_type in MESSAGE_TYPES
        if (wanted := getattr(body, message_type)) is not None
    }
    if not changes:
        raise ApiError(400, "invalid_body", "send an object keyed by message type")
    result = tenant_messaging().set_subscriptions(changes, caller(), client_ip(), utcnow())
    return json_response(result)
