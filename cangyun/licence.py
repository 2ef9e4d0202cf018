"""Offline edge licences: the token the cloud signs and every edge box verifies by itself.

Format (docs/licences.md)::

    cylic1.<base64url(JSON payload)>.<base64url(Ed25519 signature)>

The signature covers ``b"cangyun-licence/v1." + <payload part as sent>``: the prefix keeps a
licence signature from ever being valid for anything else the cloud key signs, and signing
the encoded text (not re-serialised JSON) means a verifier never parses unauthenticated bytes.

Pure: no Flask, no SQL. Every failure is one ``LicenceError`` with a stable ``code``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cangyun.timeutil import TimestampError, format_ts, parse_ts
from cangyun.wire import DeviceAddress, is_valid_code

TOKEN_VERSION = "cylic1"
SIGNING_CONTEXT = b"cangyun-licence/v1."
# Longer than any honest licence by far; bounds the work a hostile string can cause.
MAX_TOKEN_CHARS = 16 * 1024
MAX_CODES = 64  # features or add-ons in one licence
MAX_SERIAL_CHARS = 40  # the cloud's licences.serial column
MAX_GRACE_DAYS = 365
# Keygen's MaxClockDrift: a licence issued further ahead than this means our clock is behind.
MAX_CLOCK_DRIFT = timedelta(minutes=5)
# NTP steps and a hand-set clock wander a little; more than this backwards is a rollback.
ROLLBACK_TOLERANCE = timedelta(hours=1)
ED25519_SIGNATURE_BYTES = 64
ED25519_PUBLIC_KEY_BYTES = 32

Status = Literal["valid", "grace", "expired"]

_VERSION = re.compile(r"cylic[0-9]{1,4}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class LicenceError(ValueError):
    """A token or key that cannot be trusted; ``code`` is stable for logs, metrics and APIs.

    Codes: ``bad_format``, ``bad_signature``, ``unsupported_version``, ``issued_in_future``,
    ``clock_rollback``, ``wrong_device``, ``bad_public_key``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Licence:
    """What the cloud grants one edge box. Timestamps travel to the millisecond."""

    serial: str
    tenant: str
    warehouse: str
    device: str
    edition: str | None
    features: tuple[str, ...]
    add_ons: tuple[str, ...]
    # False when the tenant's prepaid quota is used up: no new receipts until renewal.
    inbound_allowed: bool
    valid_until: datetime
    issued_at: datetime
    grace_days: int

    @property
    def grace_until(self) -> datetime:
        return self.valid_until + timedelta(days=self.grace_days)

    def to_payload(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "tenant": self.tenant,
            "warehouse": self.warehouse,
            "device": self.device,
            "edition": self.edition,
            "features": list(self.features),
            "add_ons": list(self.add_ons),
            "inbound_allowed": self.inbound_allowed,
            "valid_until": format_ts(self.valid_until),
            "issued_at": format_ts(self.issued_at),
            "grace_days": self.grace_days,
        }

    @classmethod
    def from_payload(cls, payload: object) -> Licence:
        """Check every field; unknown keys are ignored so v1 payloads can grow."""
        if not isinstance(payload, dict):
            raise LicenceError("bad_format", "the licence payload must be a JSON object")
        serial = payload.get("serial")
        if not isinstance(serial, str) or not 0 < len(serial) <= MAX_SERIAL_CHARS:
            raise LicenceError("bad_format", f"serial must be 1-{MAX_SERIAL_CHARS} characters")
        codes = {}
        for name in ("tenant", "warehouse", "device"):
            if not is_valid_code(payload.get(name)):
                raise LicenceError("bad_format", f"{name} must be a valid code")
            codes[name] = payload[name]
        edition = payload.get("edition")
        if edition is not None and not is_valid_code(edition):
            raise LicenceError("bad_format", "edition must be a code or null")
        inbound_allowed = payload.get("inbound_allowed")
        if not isinstance(inbound_allowed, bool):
            raise LicenceError("bad_format", "inbound_allowed must be true or false")
        grace_days = payload.get("grace_days")
        if (
            isinstance(grace_days, bool)
            or not isinstance(grace_days, int)
            or not 0 <= grace_days <= MAX_GRACE_DAYS
        ):
            raise LicenceError("bad_format", f"grace_days must be an integer 0-{MAX_GRACE_DAYS}")
        try:
            valid_until = parse_ts(payload.get("valid_until"))
            issued_at = parse_ts(payload.get("issued_at"))
        except TimestampError as exc:
            raise LicenceError("bad_format", f"licence timestamp: {exc}") from exc
        return cls(
            serial=serial,
            tenant=codes["tenant"],
            warehouse=codes["warehouse"],
            device=codes["device"],
            edition=edition,
            features=_codes(payload.get("features"), "features"),
            add_ons=_codes(payload.get("add_ons"), "add_ons"),
            inbound_allowed=inbound_allowed,
            valid_until=valid_until,
            issued_at=issued_at,
            grace_days=grace_days,
        )


def _codes(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_CODES:
        raise LicenceError("bad_format", f"{name} must be a list of at most {MAX_CODES} codes")
    if not all(is_valid_code(code) for code in value):
        raise LicenceError("bad_format", f"every entry of {name} must be a code")
    return tuple(value)


# --- keys --------------------------------------------------------------------------------


def load_public_key(text: str) -> Ed25519PublicKey:
    """The cloud's public key as provisioning writes it: base64 of the 32 raw bytes."""
    if not isinstance(text, str) or not text.strip():
        raise LicenceError(
            "bad_public_key",
            "no licence public key configured ([cloud] public_key); re-provision this box",
        )
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LicenceError("bad_public_key", "[cloud] public_key is not valid base64") from exc
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise LicenceError(
            "bad_public_key",
            f"[cloud] public_key must be {ED25519_PUBLIC_KEY_BYTES} bytes, got {len(raw)}",
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


# --- tokens ------------------------------------------------------------------------------


def issue(licence: Licence, private_key: Ed25519PrivateKey) -> str:
    """Sign ``licence`` into a token (the cloud's side).

    Raises ``LicenceError`` (``bad_format``) rather than sign a licence every edge would
    refuse, e.g. a code with a ``/`` in it.
    """
    Licence.from_payload(licence.to_payload())
    payload = orjson.dumps(licence.to_payload(), option=orjson.OPT_SORT_KEYS)
    payload_b64 = _b64encode(payload)
    signature = private_key.sign(SIGNING_CONTEXT + payload_b64.encode("ascii"))
    return f"{TOKEN_VERSION}.{payload_b64}.{_b64encode(signature)}"


def decode(
    token: object,
    public_key: str | Ed25519PublicKey,
    *,
    device: DeviceAddress | None = None,
) -> Licence:
    """Check the signature and the payload; no clock checks (see ``verify``).

    ``device``, when given, must be the one the licence names: a token copied from another
    box (``GET /api/v1/licence`` shows it) grants nothing here.
    """
    key = load_public_key(public_key) if isinstance(public_key, str) else public_key
    payload_b64, signature_b64 = _split(token)
    # Anything wrong in the signed text or the signature is tampering, whatever it breaks.
    if not _B64URL.fullmatch(payload_b64):
        raise LicenceError("bad_signature", "the licence payload was altered")
    signature = _b64decode_canonical(signature_b64)
    if signature is None or len(signature) != ED25519_SIGNATURE_BYTES:
        raise LicenceError("bad_signature", "the licence signature was altered")
    try:
        key.verify(signature, SIGNING_CONTEXT + payload_b64.encode("ascii"))
    except InvalidSignature as exc:
        raise LicenceError(
            "bad_signature", "the licence signature does not match (altered, or another key)"
        ) from exc
    # Signed by the cloud, so what follows can only fail through an issuer bug.
    raw = _b64decode_canonical(payload_b64)
    try:
        payload = orjson.loads(raw if raw is not None else b"")
    except orjson.JSONDecodeError as exc:
        raise LicenceError("bad_format", "the licence payload is not JSON") from exc
    licence = Licence.from_payload(payload)
    if device is not None and (licence.tenant, licence.warehouse, licence.device) != (
        device.tenant,
        device.warehouse,
        device.device,
    ):
        raise LicenceError(
            "wrong_device",
            f"licence is for {licence.tenant}/{licence.warehouse}/{licence.device},"
            f" not {device.tenant}/{device.warehouse}/{device.device}",
        )
    return licence


def check_clock(
    licence: Licence,
    *,
    now: datetime,
    last_seen: datetime | None = None,
    rollback_tolerance: timedelta = ROLLBACK_TOLERANCE,
    max_clock_drift: timedelta = MAX_CLOCK_DRIFT,
) -> None:
    """Refuse a clock that went back: behind the persisted high-water mark or the issuer."""
    if last_seen is not None and now < last_seen - rollback_tolerance:
        raise LicenceError(
            "clock_rollback",
            f"the clock reads {format_ts(now)} but this box already saw {format_ts(last_seen)};"
            " set the clock right (NTP)",
        )
    if licence.issued_at > now + max_clock_drift:
        raise LicenceError(
            "issued_in_future",
            f"licence issued at {format_ts(licence.issued_at)} but the clock reads"
            f" {format_ts(now)}; the clock is behind, set it right (NTP)",
        )


def verify(
    token: object,
    public_key: str | Ed25519PublicKey,
    *,
    now: datetime,
    last_seen: datetime | None = None,
    device: DeviceAddress | None = None,
    rollback_tolerance: timedelta = ROLLBACK_TOLERANCE,
) -> Licence:
    """``decode`` plus the clock checks. Raises ``LicenceError`` and nothing else."""
    licence = decode(token, public_key, device=device)
    check_clock(licence, now=now, last_seen=last_seen, rollback_tolerance=rollback_tolerance)
    return licence


def status(licence: Licence, now: datetime) -> Status:
    """``valid`` up to and including valid_until, ``grace`` up to grace_until, then expired."""
    if now <= licence.valid_until:
        return "valid"
    if now <= licence.grace_until:
        return "grace"
    return "expired"


def whole_days_until(deadline: datetime, now: datetime) -> int:
    """Full days left before ``deadline`` (0 once it has passed)."""
    return max(0, math.floor((deadline - now).total_seconds() / 86400))


def _split(token: object) -> tuple[str, str]:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise LicenceError(
            "bad_format", f"a licence token is a string of 1-{MAX_TOKEN_CHARS} characters"
        )
    version, dot, rest = token.partition(".")
    if not dot or not _VERSION.fullmatch(version):
        raise LicenceError("bad_format", f"a licence token starts with {TOKEN_VERSION}.")
    if version != TOKEN_VERSION:
        raise LicenceError(
            "unsupported_version",
            f"licence format {version} is not supported by this edge (it reads {TOKEN_VERSION});"
            " update the edge software",
        )
    # The last dot ends the payload: a dot slipped into either part then fails the signature.
    payload_b64, dot, signature_b64 = rest.rpartition(".")
    if not dot:
        raise LicenceError("bad_format", "a licence token has three dot-separated parts")
    return payload_b64, signature_b64


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64decode_canonical(text: str) -> bytes | None:
    """Unpadded base64url, or None. Re-encoding must give the same text: otherwise the spare
    low bits of the last character would let a token be altered without changing its bytes."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == text else None
