"""Licences for edge boxes in tests, signed with a fixed test key as the cloud would sign them.

An unlicensed box is on trial (溯源版, no OCR; docs/licences.md), so a test that scans with OCR
gives its box ``trusting(settings)`` and then ``install(settings)``: a 专业版 licence with the
OCR add-on, written into the box's own SQLite the way the sync agent installs one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cangyun import licence as tokens
from cangyun.box_settings import EdgeSettings
from cangyun.licence import Licence
from cangyun.timeutil import utcnow
from edge import licence
from edge.store import Outbox

KEY = Ed25519PrivateKey.from_private_bytes(b"cangyun-test-support-licence-key")
_serials = iter(range(1, 1_000_000))


def trusting(settings: EdgeSettings) -> EdgeSettings:
    """The box's settings with the test key as the cloud's public key."""
    return replace(settings, cloud=replace(settings.cloud, public_key=tokens.public_key_b64(KEY)))


def token_for(settings: EdgeSettings, **changes: Any) -> str:
    """A licence for this box: professional with the OCR add-on for 30 days, unless changed."""
    issued = utcnow() - timedelta(minutes=1)
    granted = Licence(
        serial=f"LIC-SUPPORT-{next(_serials):06d}",
        tenant=settings.device.tenant,
        warehouse=settings.device.warehouse,
        device=settings.device.device,
        edition="professional",
        features=("inbound", "outbound", "task_management", "value_added_services"),
        add_ons=(licence.OCR_ADD_ON,),
        inbound_allowed=True,
        valid_until=issued + timedelta(days=30),
        issued_at=issued,
        grace_days=7,
    )
    return tokens.issue(replace(granted, **changes), KEY)


def install(settings: EdgeSettings, token: str | None = None) -> str:
    """Install a licence in the box's database (its settings must be ``trusting``)."""
    token = token or token_for(settings)
    outbox = Outbox(settings.database_path)
    try:
        licence.install_token(
            outbox,
            token,
            public_key=settings.cloud.public_key,
            device=licence.device_of(settings),
            now=utcnow(),
        )
    finally:
        outbox.close()
    return token
