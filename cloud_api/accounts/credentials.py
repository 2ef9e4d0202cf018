"""Secrets the cloud hands out and how it stores them. No SQL, no Flask.

- API tokens: 256 random bits, shown once, stored as SHA-256 (enough for that entropy).
- User passwords: Argon2id, memory-hard.
- MQTT passwords: stored in mosquitto's own PBKDF2-SHA512 format (``$7$``), so the broker's
  password file can be rebuilt from the database at any time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "cy_"
MOSQUITTO_ITERATIONS = 101  # mosquitto_passwd's default; the password itself is 128 random bits

_hasher = PasswordHasher()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password(nbytes: int = 16) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${MOSQUITTO_ITERATIONS}${encoded_salt}${base64.b64encode(digest).decode()}"


def check_mosquitto_hash(stored: str, password: str) -> bool:
    try:
        _, kind, iterations, salt, digest = stored.split("$")
        if kind != "7":
            return False
        expected = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
        return hmac.compare_digest(expected, base64.b64decode(digest))
    except ValueError:
        return False
