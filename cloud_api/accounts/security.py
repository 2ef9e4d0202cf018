"""安全策略 and roles: pure rules, no SQL and no Flask.

- ``SecurityPolicy``: per tenant password rules, rotation, lockout, session lifetime, IP
  allow-list and two-step login; validated as a whole, with defaults for every field.
- ``PERMISSIONS``: what each role may do; API keys carry scopes that must be a subset of
  what their creator may do. A route states one permission; checking it is one call.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from cangyun.errors import Invalid

ROLES = ("owner", "admin", "operator", "viewer", "developer")
PLATFORM_STAFF = "platform_staff"

_READ_ALL = frozenset(
    {
        "movements:read",
        "stock:read",
        "warehouses:read",
        "devices:read",
        "customers:read",
        "usage:read",
        "tasks:read",
        "expected:read",
    }
)
_ADMIN = frozenset(
    {
        "customers:write",
        "warehouses:write",
        "devices:write",
        "users:read",
        "users:write",
        "security_policy:read",
        "audit:read",
        "api_keys:manage",
        "webhooks:manage",
        "tasks:write",
        "expected:write",
        "billing:manage",
        "plugins:manage",
    }
)
PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": _READ_ALL | _ADMIN | {"security_policy:write", "staff_grants:manage"},
    # Owner or admin answer platform staff's requests for a grant (代运营) and offer them.
    "admin": _READ_ALL | _ADMIN | {"staff_grants:manage"},
    # Expected goods (ASN and shipment lines) are inbound/outbound work: operators' too.
    "operator": _READ_ALL | {"customers:write", "tasks:write", "expected:write"},
    "viewer": _READ_ALL,
    "developer": _READ_ALL | {"api_keys:manage", "webhooks:manage"},
    # Managed operations (代运营): at most inbound/outbound work and statistics, never
    # accounts; a staff session gets only what its grant's scopes add up to (GRANT_SCOPES).
    PLATFORM_STAFF: _READ_ALL | {"customers:write", "tasks:write", "expected:write"},
}  # fmt: skip
ALL_PERMISSIONS = frozenset().union(*PERMISSIONS.values())

# What a grant's scopes let a staff session do inside the tenant. ``inbound`` and ``outbound``
# share expected:write; the expected-goods route also checks each line's direction against
# them (``DIRECTION_SCOPES``). The cargo owners (customers) the goods belong to come with them.
_ON_BEHALF = frozenset({"expected:write", "expected:read", "warehouses:read", "tasks:write",
                        "tasks:read", "customers:read", "customers:write"})  # fmt: skip
GRANT_SCOPES: dict[str, frozenset[str]] = {
    "read": _READ_ALL,  # the tenant's data and statistics
    "inbound": _ON_BEHALF,  # ASN lines (receipts) on the tenant's behalf
    "outbound": _ON_BEHALF,  # shipment lines on the tenant's behalf
    "reports": frozenset({"usage:read", "stock:read", "movements:read", "warehouses:read"}),
}
DIRECTION_SCOPES = {"in": "inbound", "out": "outbound"}
# A grant offered without scopes: see, never act.
DEFAULT_GRANT_SCOPES = ("read",)
# Owners cannot be created or promoted to through the users API: one owner per tenant.
ASSIGNABLE_ROLES = ("admin", "operator", "viewer", "developer")


class PolicyError(Invalid):
    """A policy document or a password that breaks the rules; ``field`` names the culprit."""

    def __init__(self, code: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message, code=code, field=field_name)


@dataclass(frozen=True)
class SecurityPolicy:
    min_length: int = 10
    require_upper: bool = False
    require_lower: bool = True
    require_digit: bool = True
    require_symbol: bool = False
    rotation_days: int = 0  # 0: passwords never expire
    lockout_threshold: int = 5  # failed logins in a row that lock the account
    lockout_minutes: int = 15
    session_minutes: int = 12 * 60
    ip_allowlist: tuple[str, ...] = field(default_factory=tuple)  # empty: any address
    two_step: bool = False  # a code by email after the password

    LIMITS = {
        "min_length": (8, 128),
        "rotation_days": (0, 3650),
        "lockout_threshold": (1, 100),
        "lockout_minutes": (1, 7 * 24 * 60),
        "session_minutes": (5, 30 * 24 * 60),
    }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ip_allowlist"] = list(self.ip_allowlist)
        return data

    @classmethod
    def from_json(cls, data: Any, *, base: SecurityPolicy | None = None) -> SecurityPolicy:
        """Build from a (partial) JSON document; unknown keys and bad values are refused."""
        if not isinstance(data, dict):
            raise PolicyError("invalid_policy", "the policy must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PolicyError("unknown_field", f"unknown policy field {unknown[0]!r}", unknown[0])
        values = asdict(base or cls())
        for name, value in data.items():
            if name == "ip_allowlist":
                values[name] = _networks(value)
            elif isinstance(values[name], bool):
                if not isinstance(value, bool):
                    raise PolicyError("invalid_field", f"{name} must be true or false", name)
                values[name] = value
            else:
                low, high = cls.LIMITS[name]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not low <= value <= high
                ):
                    raise PolicyError(
                        "invalid_field", f"{name} must be an integer {low}..{high}", name
                    )
                values[name] = value
        values["ip_allowlist"] = tuple(values["ip_allowlist"])
        return cls(**values)

    # --- rules --------------------------------------------------------------------------

    def check_password(self, password: str, *, email: str | None = None) -> None:
        problems = []
        if len(password) < self.min_length:
            problems.append(f"at least {self.min_length} characters")
        if self.require_upper and not any(c.isupper() for c in password):
            problems.append("an upper-case letter")
        if self.require_lower and not any(c.islower() for c in password):
            problems.append("a lower-case letter")
        if self.require_digit and not any(c.isdigit() for c in password):
            problems.append("a digit")
        if self.require_symbol and all(c.isalnum() for c in password):
            problems.append("a symbol")
        if len(password) > 256:
            problems.append("at most 256 characters")
        name = (email or "").split("@")[0].lower()
        if len(name) >= 4 and name in password.lower():
            problems.append("not the email name")
        if problems:
            raise PolicyError(
                "weak_password", "the password needs " + ", ".join(problems), "password"
            )

    def password_expired(self, changed_at: datetime | None, now: datetime) -> bool:
        if not self.rotation_days or changed_at is None:
            return False
        return now - changed_at >= timedelta(days=self.rotation_days)

    def lock_after_failure(self, failed_logins: int, now: datetime) -> datetime | None:
        """When the account unlocks if this failure (the nth in a row) locks it."""
        if failed_logins >= self.lockout_threshold:
            return now + timedelta(minutes=self.lockout_minutes)
        return None

    def session_expiry(self, now: datetime) -> datetime:
        return now + timedelta(minutes=self.session_minutes)

    def ip_allowed(self, address: str | None) -> bool:
        if not self.ip_allowlist:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.ip_allowlist)


def _networks(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 200:
        raise PolicyError(
            "invalid_field", "ip_allowlist must be a list of addresses or CIDRs", "ip_allowlist"
        )
    networks = []
    for item in value:
        try:
            networks.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError as exc:
            raise PolicyError(
                "invalid_field", f"{item!r} is not an IP address or CIDR", "ip_allowlist"
            ) from exc
    return networks


def retry_after_seconds(locked_until: datetime, now: datetime) -> int:
    return max(1, math.ceil((locked_until - now).total_seconds()))


def allowed(role: str, permission: str, scopes: frozenset[str] | None = None) -> bool:
    """Role grants it and, for an API key, the key's scopes include it."""
    if permission not in PERMISSIONS.get(role, frozenset()):
        return False
    return scopes is None or permission in scopes


def grant_permissions(grant_scopes: frozenset[str]) -> frozenset[str]:
    """What a staff session under a grant with these scopes may do (within PLATFORM_STAFF)."""
    granted = frozenset().union(*(GRANT_SCOPES.get(s, frozenset()) for s in grant_scopes))
    return granted & PERMISSIONS[PLATFORM_STAFF]
