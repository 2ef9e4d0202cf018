"""How money reaches an order: what a tenant is told to pay, and what an online gateway's
notification must prove before the store settles an order. Pure: no SQL, no Flask.

Two gateways (docs/billing.md "Paying"):

- ``bank_transfer`` (对公转账, the default): the tenant transfers the order's total to the
  platform's account quoting the order's reference; platform staff confirm what arrived.
- ``wechatpay``: WeChat Pay API v3 sends a signed notification whose encrypted resource names
  the order (``out_trade_no``), the gateway's ``transaction_id`` and the amount in fen.

An order's reference is ``CY<order id>-<two check digits>`` (ISO 7064 MOD 97-10, as in an
IBAN): short enough for a bank clerk to type into 附言, and a mistyped digit or two swapped
digits name no order instead of someone else's. It is also the ``out_trade_no`` the online
gateway pays against.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cangyun.errors import Forbidden, Invalid, Unauthenticated

BANK_TRANSFER = "bank_transfer"
WECHATPAY = "wechatpay"
GATEWAYS = (BANK_TRANSFER, WECHATPAY)
REFERENCE_PREFIX = "CY"
MAX_CLOCK_SKEW_S = 300  # WeChat's own advice: refuse a notification more than 5 minutes off
FEN_PER_YUAN = 100
_REFERENCE = re.compile(r"^CY(\d{1,10})-(\d{2})$")


# --- references and amounts -----------------------------------------------------------


def check_digits(order_id: int) -> int:
    """ISO 7064 MOD 97-10 over the order id: ``order_id * 100 + check`` is 1 mod 97."""
    return 98 - (order_id * 100) % 97


def order_reference(order_id: int) -> str:
    return f"{REFERENCE_PREFIX}{order_id}-{check_digits(order_id):02d}"


def order_of_reference(text: str) -> int | None:
    """The order a reference names, or None when it is no reference (or a mistyped one).
    Spaces and case are forgiven: a clerk types what is on the transfer slip."""
    match = _REFERENCE.match(re.sub(r"\s+", "", text).upper())
    if match is None:
        return None
    order_id, check = int(match[1]), int(match[2])
    if order_id < 1 or check != check_digits(order_id):
        return None
    return order_id


def to_fen(yuan: Decimal) -> int:
    """Yuan as whole fen; an amount with a fraction of a fen is no amount a gateway moves."""
    fen = yuan * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise Invalid(f"{yuan} yuan is not a whole number of fen", code="invalid_amount")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return Decimal(fen) / FEN_PER_YUAN


# --- WeChat Pay API v3 notifications ---------------------------------------------------


@dataclass(frozen=True)
class WechatPayConfig:
    """The merchant's side of WeChat Pay: who we are and the keys that prove a notification."""

    mchid: str
    appid: str
    apiv3_key: bytes
    public_key: rsa.RSAPublicKey
    public_key_id: str = ""

    @classmethod
    def from_settings(cls, payment: Any) -> WechatPayConfig | None:
        """None while the gateway is off (no merchant id): every notification is refused."""
        if not payment.wechatpay_mchid:
            return None
        key = payment.wechatpay_apiv3_key.encode()
        if len(key) != 32:
            raise ValueError("payment.wechatpay_apiv3_key must be 32 bytes")
        if not payment.wechatpay_public_key_file:
            raise ValueError("payment.wechatpay_public_key_file is needed with a merchant id")
        return cls(
            mchid=payment.wechatpay_mchid,
            appid=payment.wechatpay_appid,
            apiv3_key=key,
            public_key=load_public_key(Path(payment.wechatpay_public_key_file).read_bytes()),
            public_key_id=payment.wechatpay_public_key_id,
        )


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the WeChat Pay platform key must be an RSA public key")
    return key


@dataclass(frozen=True)
class GatewayPayment:
    """What a verified notification says was paid."""

    out_trade_no: str
    transaction_id: str
    amount_fen: int
    payer_total_fen: int | None
    success_time: str
    notification_id: str


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat signs: timestamp, nonce and the body exactly as sent, each line ended."""
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def verify_notification(
    config: WechatPayConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> GatewayPayment:
    """The payment a notification proves, or a refusal naming why (``code``): the signature
    first (nothing of an unsigned body is believed), then its age, then what it says."""
    timestamp = headers.get("Wechatpay-Timestamp", "")
    nonce = headers.get("Wechatpay-Nonce", "")
    signature = headers.get("Wechatpay-Signature", "")
    serial = headers.get("Wechatpay-Serial", "")
    if not (timestamp and nonce and signature and serial):
        raise _bad_signature("the Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers")
    if config.public_key_id and serial != config.public_key_id:
        raise _bad_signature(f"signed with key {serial!r}, which is not the platform's")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        config.public_key.verify(
            raw_signature,
            signed_message(timestamp, nonce, body),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise _bad_signature("a signature that verifies with the platform key") from exc
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > MAX_CLOCK_SKEW_S:
        raise Unauthenticated(
            f"the notification's timestamp {timestamp} is more than"
            f" {MAX_CLOCK_SKEW_S // 60} minutes off",
            code="stale_timestamp",
        )
    event = _json_object(body, "the notification")
    if event.get("event_type") != "TRANSACTION.SUCCESS":
        raise Invalid(f"event {event.get('event_type')!r} is not a payment", code="not_a_payment")
    resource = event.get("resource")
    if (
        event.get("resource_type") != "encrypt-resource"
        or not isinstance(resource, dict)
        or resource.get("algorithm") != "AEAD_AES_256_GCM"
    ):
        raise Invalid("the resource is not AEAD_AES_256_GCM encrypted", code="bad_notification")
    paid = _json_object(decrypt_resource(config.apiv3_key, resource), "the resource")
    return _payment(config, paid, str(event.get("id", "")))


def decrypt_resource(apiv3_key: bytes, resource: Mapping[str, Any]) -> bytes:
    try:
        return AESGCM(apiv3_key).decrypt(
            str(resource.get("nonce", "")).encode(),
            base64.b64decode(str(resource.get("ciphertext", "")), validate=True),
            str(resource.get("associated_data", "")).encode(),
        )
    except (binascii.Error, ValueError, InvalidTag) as exc:
        raise Invalid(
            "the resource does not decrypt with the APIv3 key", code="bad_notification"
        ) from exc


def _payment(config: WechatPayConfig, paid: dict[str, Any], event_id: str) -> GatewayPayment:
    if paid.get("mchid") != config.mchid:
        raise Forbidden(f"merchant {paid.get('mchid')!r} is not ours", code="wrong_merchant")
    if config.appid and paid.get("appid") != config.appid:
        raise Forbidden(f"appid {paid.get('appid')!r} is not ours", code="wrong_merchant")
    if paid.get("trade_state") != "SUCCESS":
        raise Invalid(f"trade_state is {paid.get('trade_state')!r}", code="not_a_payment")
    amount = paid.get("amount")
    if not isinstance(amount, dict) or amount.get("currency") != "CNY":
        raise Invalid("the amount is not in CNY", code="amount_mismatch")
    total = amount.get("total")
    payer_total = amount.get("payer_total")
    out_trade_no, transaction_id = paid.get("out_trade_no"), paid.get("transaction_id")
    if not _fen(total) or not (payer_total is None or _fen(payer_total)):
        raise Invalid("amount.total is not a number of fen", code="amount_mismatch")
    if not isinstance(out_trade_no, str) or not isinstance(transaction_id, str):
        raise Invalid("out_trade_no and transaction_id are needed", code="bad_notification")
    if not 1 <= len(transaction_id) <= 64:
        raise Invalid("transaction_id is 1..64 characters", code="bad_notification")
    return GatewayPayment(
        out_trade_no=out_trade_no,
        transaction_id=transaction_id,
        amount_fen=total,
        payer_total_fen=payer_total,
        success_time=str(paid.get("success_time", "")),
        notification_id=event_id[:64],
    )


def _fen(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid(f"{what} is not JSON", code="bad_notification") from exc
    if not isinstance(data, dict):
        raise Invalid(f"{what} is not a JSON object", code="bad_notification")
    return data


def _bad_signature(needed: str) -> Unauthenticated:
    return Unauthenticated(f"refused: this notification needs {needed}", code="bad_signature")


__all__ = [
    "BANK_TRANSFER",
    "GATEWAYS",
    "MAX_CLOCK_SKEW_S",
    "WECHATPAY",
    "GatewayPayment",
    "WechatPayConfig",
    "check_digits",
    "decrypt_resource",
    "from_fen",
    "order_of_reference",
    "order_reference",
    "signed_message",
    "to_fen",
    "verify_notification",
]
