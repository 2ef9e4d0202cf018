"""Payments reported to the platform, from either gateway, down to the one ``store.settle``.

A staff member confirms what arrived on the platform's bank account; WeChat Pay notifies
what it collected. Both end in ``settle``, which decides and audits; a notification refused
before it names an order (its signature, its age, its merchant) is audited here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from cangyun.errors import DomainError, Forbidden
from cloud_api.billing import payments
from cloud_api.billing.payments import BANK_TRANSFER, WECHATPAY, WechatPayConfig
from cloud_api.billing.store import Payer, Received, refuse_payment, settle


def confirm_transfer(
    engine: Engine, order_id: int, amount_yuan: Decimal, bank_reference: str, payer: Payer
) -> dict[str, Any]:
    """Staff saw ``amount_yuan`` arrive by 对公转账 under the bank's ``bank_reference``."""
    received = Received(BANK_TRANSFER, bank_reference, amount_yuan, {"confirmed_by": payer.actor})
    return settle(engine, order_id, received, payer)


def receive_wechatpay(
    engine: Engine,
    config: WechatPayConfig | None,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    ip: str,
) -> dict[str, Any]:
    """Verify a WeChat Pay notification and settle the order it pays (idempotent on the
    gateway's transaction id)."""
    payer = Payer("wechatpay", None, ip)
    try:
        if config is None:
            # Refused as the caller's problem (403), not ours (5xx): no merchant, no gateway.
            raise Forbidden("the online gateway is not configured here", code="gateway_off")
        paid = payments.verify_notification(config, headers, body, now)
    except DomainError as exc:
        seen = {"serial": headers.get("Wechatpay-Serial", "")[:64]}
        refuse_payment(engine, exc, WECHATPAY, seen, payer)
        raise
    received = Received(
        WECHATPAY,
        paid.transaction_id,
        payments.from_fen(paid.amount_fen),
        {
            "out_trade_no": paid.out_trade_no[:64],
            "amount_fen": paid.amount_fen,
            "payer_total_fen": paid.payer_total_fen,
            "success_time": paid.success_time[:40],
            "notification_id": paid.notification_id,
        },
    )
    return settle(engine, payments.order_of_reference(paid.out_trade_no), received, payer)
