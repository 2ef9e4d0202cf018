"""A local stand-in for WeChat Pay API v3: it holds a platform RSA key (made at test time)
and the merchant's APIv3 key, and builds payment notifications exactly as WeChat sends them:
the transaction encrypted with AEAD_AES_256_GCM under the APIv3 key, and the headers'
signature RSA PKCS#1 v1.5 SHA-256 over "timestamp\\nnonce\\nbody\\n"."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
KEY_ID = "PUB_KEY_ID_0119000001092026120700000000000001"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeWechatPay:
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    apiv3_key: bytes = field(default_factory=lambda: secrets.token_hex(16).encode())
    mchid: str = MCHID
    key_id: str = KEY_ID

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_public_key(self, path: Path) -> Path:
        path.write_bytes(self.public_pem())
        return path

    def transaction(
        self, out_trade_no: str, total_fen: int, transaction_id: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """The decrypted resource of a successful payment, as WeChat documents it."""
        paid = {
            "mchid": self.mchid,
            "appid": APPID,
            "out_trade_no": out_trade_no,
            "transaction_id": transaction_id or "4200" + secrets.token_hex(14)[:28],
            "trade_type": "NATIVE",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": "2026-12-07T18:00:00+08:00",
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {
                "total": total_fen,
                "payer_total": total_fen,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }
        paid.update(extra)
        return paid

    def body(self, transaction: dict[str, Any], *, apiv3_key: bytes | None = None) -> bytes:
        """The notification body: the transaction sealed under the APIv3 key."""
        nonce = secrets.token_hex(6)  # WeChat's resource nonce: 12 characters
        associated = "transaction"
        sealed = AESGCM(apiv3_key or self.apiv3_key).encrypt(
            nonce.encode(), json.dumps(transaction).encode(), associated.encode()
        )
        event = {
            "id": "EV-" + secrets.token_hex(8),
            "create_time": "2026-12-07T18:00:01+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(sealed).decode(),
                "associated_data": associated,
                "nonce": nonce,
            },
        }
        return json.dumps(event, ensure_ascii=False).encode()

    def headers(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = base64.b32encode(os.urandom(20)).decode()
        message = stamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        signature = (key or self.key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Serial": self.key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def notification(
        self, out_trade_no: str, total_fen: int, transaction_id: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        body = self.body(self.transaction(out_trade_no, total_fen, transaction_id))
        return body, self.headers(body)


__all__ = ["APPID", "KEY_ID", "MCHID", "FakeWechatPay", "new_key"]
