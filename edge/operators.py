"""PDA operators of an edge box: accounts, password checks, lockout and login sessions.

Everything lives in the edge's own SQLite file (tables from ``edge.store``'s migration
``m003_operators``), so operators log in while the cloud is unreachable. Passwords are kept
as Argon2id hashes. A session is a random token in an HttpOnly cookie; the database keeps
only its SHA-256, so a copied database file opens no session. Sessions end at a fixed
expiry (one shift by default), on logout, on a password change and when the account is
disabled.

The policy (lockout after repeated failures, password rules) is plain functions here; the
``OperatorStore`` holds the SQL.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cangyun.errors import (
    AlreadyExists,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    Unauthenticated,
)
from edge.store import SqliteFile, immediate, open_database

MAX_FAILURES = 5  # failed logins in a row before the account locks
LOCKOUT_S = 15 * 60.0
SESSION_S = 12 * 3600.0  # a shift; a PDA reload inside it keeps the operator logged in
MIN_PASSWORD = 8
MAX_PASSWORD = 128
MAX_NAME = 64
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")

# OWASP's Argon2id minimum (19 MiB, 2 passes): memory-hard, yet a login on a small edge box
# takes tens of milliseconds, not seconds.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class OperatorError(DomainError):
    """A refused operator action; ``code`` is the API error code. Each kind below answers
    the status of its ``cangyun.errors`` kind."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, code=code, details=details)


class InvalidOperator(OperatorError, Invalid):
    """A username, password or name that breaks a rule, or missing credentials (422)."""


class OperatorNotFound(OperatorError, NotFound):
    """No operator of that username (404)."""


class OperatorExists(OperatorError, AlreadyExists):
    """The username is taken (409)."""


class LoginFailed(OperatorError, Unauthenticated):
    """Wrong username or password, never saying which (401)."""


class AccountLocked(OperatorError, Throttled):
    """Too many wrong passwords; ``details["retry_after_s"]`` says for how long. The edge
    answers it 423 Locked with Retry-After (``edge.app``), not the 429 of its kind."""


class AccountDisabled(OperatorError, Forbidden):
    """The account exists but may not log in (403)."""


@dataclass(frozen=True)
class Operator:
    username: str
    name: str
    enabled: bool
    failed_logins: int
    locked_until: float | None
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "name": self.name}


@dataclass(frozen=True)
class Session:
    token: str  # only known at login; the store never sees it again
    operator: Operator
    expires_at: float


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = MAX_FAILURES
    lockout_s: float = LOCKOUT_S


# --- pure rules ----------------------------------------------------------------------------


def normalize_username(username: Any) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username.strip().lower()):
        raise InvalidOperator(
            "invalid_username",
            "a username is 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return username.strip().lower()


def check_password_rules(password: Any) -> str:
    if not isinstance(password, str):
        raise InvalidOperator("invalid_password", "the password must be text")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidOperator(
            "weak_password",
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
        )
    if not password.strip():
        raise InvalidOperator("weak_password", "a password cannot be only spaces")
    return password


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise InvalidOperator("invalid_name", f"a display name has 1 to {MAX_NAME} characters")
    if not name.strip().isprintable():
        raise InvalidOperator("invalid_name", "the display name contains control characters")
    return name.strip()


def is_locked(locked_until: float | None, now: float) -> bool:
    return locked_until is not None and now < locked_until


def after_failure(failures: int, now: float, policy: LockoutPolicy) -> tuple[int, float | None]:
    """(failures, locked_until) after one more wrong password; the count restarts on a lock."""
    failures += 1
    if failures >= policy.max_failures:
        return 0, now + policy.lockout_s
    return failures, None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so a miss costs as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the store -----------------------------------------------------------------------------


class OperatorStore(SqliteFile):
    """Operator accounts and sessions in the edge database file."""

    def __init__(
        self,
        path: Path,
        *,
        session_s: float = SESSION_S,
        policy: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.session_s = session_s
        self.policy = policy or LockoutPolicy()
        self.clock = clock  # tests replace it to expire sessions and lockouts
        open_database(self.path)
        super().__init__(self.path)

    # --- accounts --------------------------------------------------------------------

    def add(self, username: str, password: str, name: str) -> Operator:
        username = normalize_username(username)
        name = check_name(name)
        hashed = hash_password(check_password_rules(password))
        now = self.clock()
        with self._write_lock, immediate(self._writer) as conn:
            try:
                conn.execute(
                    """INSERT INTO operators (username, name, password_hash, created_at,
                         updated_at) VALUES (?, ?, ?, ?, ?)""",
                    (username, name, hashed, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise OperatorExists(
                    "operator_exists", f"operator {username!r} already exists"
                ) from exc
        return self.get(username)

    def get(self, username: str) -> Operator:
        row = (
            self._reader()
            .execute("SELECT * FROM operators WHERE username = ?", (username.strip().lower(),))
            .fetchone()
        )
        if row is None:
            raise OperatorNotFound("operator_not_found", f"no operator {username!r}")
        return _operator(row)

    def all(self) -> list[Operator]:
        rows = self._reader().execute("SELECT * FROM operators ORDER BY username")
        return [_operator(r) for r in rows]

    def set_password(self, username: str, password: str) -> Operator:
        """New password; ends the operator's sessions and lifts a lockout."""
        hashed = hash_password(check_password_rules(password))
        self._update(
            username,
            "password_hash = ?, failed_logins = 0, locked_until = NULL",
            (hashed,),
            end_sessions=True,
        )
        return self.get(username)

    def set_enabled(self, username: str, enabled: bool) -> Operator:
        """Disable (and log out everywhere) or enable again (which also lifts a lockout)."""
        if enabled:
            self._update(username, "enabled = 1, failed_logins = 0, locked_until = NULL", ())
        else:
            self._update(username, "enabled = 0", (), end_sessions=True)
        return self.get(username)

    def set_name(self, username: str, name: str) -> Operator:
        self._update(username, "name = ?", (check_name(name),))
        return self.get(username)

    def _update(
        self, username: str, assignments: str, args: tuple[Any, ...], *, end_sessions=False
    ) -> None:
        username = username.strip().lower()
        with self._write_lock, immediate(self._writer) as conn:
            cursor = conn.execute(
                f"UPDATE operators SET {assignments}, updated_at = ? WHERE username = ?",
                (*args, self.clock(), username),
            )
            if cursor.rowcount == 0:
                raise OperatorNotFound("operator_not_found", f"no operator {username!r}")
            if end_sessions:
                conn.execute("DELETE FROM operator_sessions WHERE username = ?", (username,))

    # --- login and sessions --------------------------------------------------------------

    def login(self, username: Any, password: Any) -> Session:
        """Check the password and open a session, or raise LoginFailed / AccountLocked /
        AccountDisabled. Wrong passwords count towards the lockout; unknown names do not
        reveal that they are unknown."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidOperator("missing_credentials", "give username and password")
        if not username.strip() or not password:
            raise InvalidOperator("missing_credentials", "give username and password")
        name = username.strip().lower()
        now = self.clock()
        row = (
            self._reader().execute("SELECT * FROM operators WHERE username = ?", (name,)).fetchone()
        )
        if row is None or len(password) > MAX_PASSWORD:
            verify_password(_dummy_hash(), password[:MAX_PASSWORD])
            raise LoginFailed("invalid_credentials", "wrong username or password")
        if is_locked(row["locked_until"], now):
            raise _locked(row["locked_until"], now)
        if not verify_password(row["password_hash"], password):
            locked_until = self._count_failure(name, now)
            if locked_until is not None:
                raise _locked(locked_until, now)
            raise LoginFailed("invalid_credentials", "wrong username or password")
        if not row["enabled"]:
            raise AccountDisabled("account_disabled", "this operator account is disabled")
        token = secrets.token_urlsafe(32)
        expires = now + self.session_s
        with self._write_lock, immediate(self._writer) as conn:
            conn.execute("DELETE FROM operator_sessions WHERE expires_at <= ?", (now,))
            conn.execute(
                "UPDATE operators SET failed_logins = 0, locked_until = NULL WHERE username = ?",
                (name,),
            )
            conn.execute(
                """INSERT INTO operator_sessions (token_hash, username, created_at, expires_at)
                   VALUES (?, ?, ?, ?)""",
                (token_hash(token), name, now, expires),
            )
        return Session(token, self.get(name), expires)

    def _count_failure(self, username: str, now: float) -> float | None:
        with self._write_lock, immediate(self._writer) as conn:
            row = conn.execute(
                "SELECT failed_logins FROM operators WHERE username = ?", (username,)
            ).fetchone()
            failures, locked_until = after_failure(row["failed_logins"], now, self.policy)
            conn.execute(
                "UPDATE operators SET failed_logins = ?, locked_until = ? WHERE username = ?",
                (failures, locked_until, username),
            )
        return locked_until

    def session(self, token: str) -> tuple[Operator, float] | None:
        """(operator, expires_at) of a live session of an enabled operator, else None."""
        if not token or len(token) > 256:
            return None
        row = (
            self._reader()
            .execute(
                """SELECT o.*, s.expires_at AS session_expires FROM operator_sessions s
                   JOIN operators o ON o.username = s.username WHERE s.token_hash = ?""",
                (token_hash(token),),
            )
            .fetchone()
        )
        if row is None or row["session_expires"] <= self.clock() or not row["enabled"]:
            return None
        return _operator(row), row["session_expires"]

    def logout(self, token: str) -> None:
        with self._write_lock, immediate(self._writer) as conn:
            conn.execute("DELETE FROM operator_sessions WHERE token_hash = ?", (token_hash(token),))


def _locked(locked_until: float, now: float) -> AccountLocked:
    wait = max(1, int(locked_until - now + 0.999))
    return AccountLocked(
        "account_locked",
        f"too many wrong passwords: this account is locked for {(wait + 59) // 60} more minutes",
        retry_after_s=wait,
    )


def _operator(row: sqlite3.Row) -> Operator:
    return Operator(
        username=row["username"],
        name=row["name"],
        enabled=bool(row["enabled"]),
        failed_logins=row["failed_logins"],
        locked_until=row["locked_until"],
        created_at=row["created_at"],
    )


def ensure_operator(settings_or_db_path: Any, username: str, password: str, name: str) -> Operator:
    """Create the operator, or bring an existing one to this password and name, enabled.

    For provisioning and the demo: idempotent, so a rerun with the same arguments changes
    nothing visible (existing sessions survive when the password is unchanged).
    ``settings_or_db_path`` is an ``EdgeSettings`` or the path of ``edge.sqlite``.
    """
    path = getattr(settings_or_db_path, "database_path", settings_or_db_path)
    store = OperatorStore(Path(path))
    try:
        try:
            current = store.get(username)
        except OperatorNotFound:
            return store.add(username, password, name)
        row = (
            store._reader()
            .execute("SELECT password_hash FROM operators WHERE username = ?", (current.username,))
            .fetchone()
        )
        if not verify_password(row["password_hash"], password):
            store.set_password(current.username, password)
        if current.name != check_name(name):
            store.set_name(current.username, name)
        if not current.enabled:
            store.set_enabled(current.username, True)
        return store.get(current.username)
    finally:
        store.close()
