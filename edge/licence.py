"""The edge's view of its licence: what state it is in now and what that allows.

Rules (docs/licences.md):

- ``trial``: never licensed, within ``TRIAL_DAYS`` of the trial's start (kept in the box's
  SQLite, so a restart does not renew it). The box works as the smallest edition (溯源版):
  receipts and everything else, but no value-added services, so no OCR
  (``feature_not_in_licence``). A new box must record goods before its first connection.
- ``trial_ended``: never licensed, the trial is over: receipts and OCR are refused
  (``licence_required``) until the cloud sends a licence.
- ``valid`` / ``grace``: the licence's features and add-ons apply; receipts are refused
  (``quota_exhausted``) when it says ``inbound_allowed: false``.
- ``expired`` (past the grace period), ``clock_rollback``, ``invalid``: receipts and OCR are
  refused (``licence_expired`` / ``licence_invalid``).

Outbound, internal moves, counts and reads are never refused: goods must be able to leave.
``evaluate`` is pure; ``current`` and ``install_token`` add the store and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from cangyun import licence as tokens
from cangyun.errors import Forbidden
from cangyun.licence import Licence, LicenceError
from cangyun.movement import INBOUND_TYPES
from cangyun.timeutil import format_ts
from cangyun.wire import DeviceAddress

if TYPE_CHECKING:
    from collections.abc import Callable

    from cangyun.box_settings import EdgeSettings
    from edge.store import EdgeStore, InstallOutcome, Outbox, StoredLicence

State = Literal["trial", "trial_ended", "valid", "grace", "expired", "clock_rollback", "invalid"]

OCR_ADD_ON = "ocr_scanning"  # the catalog's code for OCR scanning at inbound (OCR 扫描)
TRIAL_DAYS = 30
# What an unlicensed box may do during its trial: the seed's smallest edition, 溯源版, whose
# column of the feature table (cloud_api/billing/catalog.py EDITION_FEATURES, checked by a
# test) has no value-added services (OCR), task management or industry plugins.
TRIAL_EDITION = "traceability"
TRIAL_FEATURES = (
    "alerts",
    "charges",
    "crm",
    "inbound",
    "outbound",
    "registration",
    "secondary_development",
    "security_policy",
    "warehouse",
)
_IN_FORCE = ("valid", "grace")
_MESSAGES: dict[str, str] = {
    "trial": "no licence yet: trial as 溯源版 (no OCR) until the cloud sends one",
    "trial_ended": "no licence and the trial is over: connect this box to the cloud"
    " (its tenant needs a paid package) to receive goods again",
    "valid": "licence valid",
    "grace": "licence expired; grace period running: connect this box to the cloud to renew",
    "expired": "licence expired and its grace period is over: connect this box to the cloud",
    "clock_rollback": "the clock of this box was set back; set it right (NTP)",
    "invalid": "the stored licence does not verify with this box's key; re-provision the box",
}


class LicenceRefused(Forbidden):
    """The licence does not allow this (403): ``code`` says what, the details' licence_state
    the state that refuses it."""

    def __init__(self, code: str, message: str, state: State) -> None:
        # A keyword, not a quoted key: tests/unit/test_pda_texts.py reads every quoted
        # licence_* string in this file as an error code the PDA must translate.
        super().__init__(message, code=code, details=dict(licence_state=state))
        self.state = state


@dataclass(frozen=True)
class LicenceState:
    state: State
    checked_at: datetime
    licence: Licence | None = None  # decoded and signature-checked; None for trial/invalid
    token: str | None = None
    installed_at: str | None = None
    last_seen: datetime | None = None
    problem: LicenceError | None = None  # why the state is invalid or clock_rollback
    trial_started_at: datetime | None = None  # only while no licence was ever installed

    @property
    def in_force(self) -> bool:
        return self.state in _IN_FORCE

    @property
    def on_trial(self) -> bool:
        return self.state == "trial"

    @property
    def enforced(self) -> bool:
        """Always: since the trial, no state lets everything through (kept for clients)."""
        return True

    @property
    def edition(self) -> str | None:
        if self.licence is not None:
            return self.licence.edition
        return TRIAL_EDITION if self.on_trial else None

    @property
    def features(self) -> tuple[str, ...]:
        """What the licence (or the trial) grants right now (nothing once it has lapsed)."""
        if self.on_trial:
            return TRIAL_FEATURES
        return self.licence.features if self.licence and self.in_force else ()

    @property
    def add_ons(self) -> tuple[str, ...]:
        return self.licence.add_ons if self.licence and self.in_force else ()

    @property
    def inbound_allowed(self) -> bool:
        """Would a new receipt be accepted now."""
        if self.on_trial:
            return True
        return self.in_force and self.licence is not None and self.licence.inbound_allowed

    @property
    def ocr_allowed(self) -> bool:
        return OCR_ADD_ON in self.add_ons

    @property
    def trial_until(self) -> datetime | None:
        if self.trial_started_at is None:
            return None
        return self.trial_started_at + timedelta(days=TRIAL_DAYS)

    @property
    def valid_until(self) -> datetime | None:
        return self.licence.valid_until if self.licence else self.trial_until

    @property
    def grace_until(self) -> datetime | None:
        return self.licence.grace_until if self.licence else None

    @property
    def days_left(self) -> int | None:
        """Full days until gated features lock (end of validity, then end of grace; the
        trial's end)."""
        if self.on_trial and self.trial_until is not None:
            return tokens.whole_days_until(self.trial_until, self.checked_at)
        if self.state == "trial_ended":
            return 0
        if self.licence is None:
            return None
        if self.state == "valid":
            return tokens.whole_days_until(self.licence.valid_until, self.checked_at)
        if self.state == "grace":
            return tokens.whole_days_until(self.licence.grace_until, self.checked_at)
        return 0

    def summary(self) -> dict[str, Any]:
        """The short form the PDA status bar shows (inside ``/api/v1/sync/status``)."""
        return {
            "state": self.state,
            "message": _MESSAGES[self.state],
            "edition": self.edition,
            "valid_until": _ts(self.valid_until),
            "grace_until": _ts(self.grace_until),
            "days_left": self.days_left,
            "inbound_allowed": self.inbound_allowed,
            "ocr_allowed": self.ocr_allowed,
        }

    def to_json(self) -> dict[str, Any]:
        lic = self.licence
        return self.summary() | {
            "enforced": self.enforced,
            "serial": lic.serial if lic else None,
            "tenant": lic.tenant if lic else None,
            "warehouse": lic.warehouse if lic else None,
            "device": lic.device if lic else None,
            "features": list(self.features),
            "add_ons": list(self.add_ons),
            "issued_at": _ts(lic.issued_at) if lic else None,
            "grace_days": lic.grace_days if lic else None,
            "installed_at": self.installed_at,
            "trial_started_at": _ts(self.trial_started_at),
            "last_seen": _ts(self.last_seen),
            "checked_at": _ts(self.checked_at),
            "problem": (
                {"code": self.problem.code, "message": self.problem.message}
                if self.problem
                else None
            ),
            "token": self.token,
        }


def evaluate(
    stored: StoredLicence | None,
    *,
    public_key: str,
    device: DeviceAddress,
    now: datetime,
    last_seen: datetime | None,
    trial_started_at: datetime | None = None,
) -> LicenceState:
    """The licence state at ``now``; the stored token is verified again every time, so an
    edited database row or a changed key makes it ``invalid`` rather than trusted.

    Without a stored licence it is the trial, judged at the later of ``now`` and
    ``last_seen``: setting the clock back cannot lengthen it."""
    if stored is None:
        started = trial_started_at or now
        latest = max(now, last_seen) if last_seen is not None else now
        ended = latest >= started + timedelta(days=TRIAL_DAYS)
        return LicenceState(
            "trial_ended" if ended else "trial",
            now,
            last_seen=last_seen,
            trial_started_at=started,
        )
    base = {"token": stored.token, "installed_at": stored.installed_at, "last_seen": last_seen}
    try:
        licence = tokens.decode(stored.token, public_key, device=device)
    except LicenceError as exc:
        return LicenceState("invalid", now, problem=exc, **base)
    try:
        tokens.check_clock(licence, now=now, last_seen=last_seen)
    except LicenceError as exc:
        # Issued "in the future" of an installed licence also means the clock went back.
        return LicenceState("clock_rollback", now, licence=licence, problem=exc, **base)
    return LicenceState(tokens.status(licence, now), now, licence=licence, **base)


def current(store: EdgeStore, settings: EdgeSettings) -> LicenceState:
    """Check the licence now: this also raises the store's clock high-water mark."""
    now = store.clock()
    last_seen = store.observe_clock(now)
    return evaluate(
        store.licence(),
        public_key=settings.cloud.public_key,
        device=device_of(settings),
        now=now,
        last_seen=last_seen,
        trial_started_at=store.trial_started_at(),
    )


def device_of(settings: EdgeSettings) -> DeviceAddress:
    d = settings.device
    return DeviceAddress(d.tenant, d.warehouse, d.device)


def is_gated(movement_type: str) -> bool:
    """Only receipts depend on the licence; goods must always be able to leave."""
    return movement_type in INBOUND_TYPES


def check_movement(state: LicenceState, movement_type: str) -> None:
    """Refuse new receipts the licence does not allow; everything else always goes on."""
    if not is_gated(movement_type) or state.inbound_allowed:
        return
    if state.in_force:
        raise LicenceRefused(
            "quota_exhausted",
            "the prepaid quota is used up: no new receipts until the package is renewed"
            " (shipping and counting still work)",
            state.state,
        )
    raise _lapsed(state, "receiving new goods")


def admission(store: EdgeStore, settings: EdgeSettings) -> Callable[[str], None]:
    """``admit(movement_type)`` for recorders outside the HTTP API (dock gates): raises
    LicenceRefused exactly when a receipt through the API would be refused."""

    def admit(movement_type: str) -> None:
        if is_gated(movement_type):
            check_movement(current(store, settings), movement_type)

    return admit


def check_ocr(state: LicenceState) -> None:
    """OCR at inbound is the ``ocr_scanning`` add-on; barcode-only scans always work."""
    if state.ocr_allowed:
        return
    if state.on_trial:
        raise LicenceRefused(
            "feature_not_in_licence",
            "OCR scanning is an add-on; the trial of an unlicensed box works as 溯源版,"
            " which has none. Barcode scans still work",
            state.state,
        )
    if state.in_force:
        raise LicenceRefused(
            "feature_not_in_licence",
            "OCR scanning is an add-on this warehouse's licence does not include;"
            " barcode scans still work",
            state.state,
        )
    raise _lapsed(state, "OCR scanning")


def _lapsed(state: LicenceState, what: str) -> LicenceRefused:
    if state.state == "trial_ended":
        ended = _ts(state.trial_until)
        return LicenceRefused(
            "licence_required",
            f"{what} is locked: this box has no licence and its {TRIAL_DAYS}-day trial ended"
            f" {ended}; connect it to the cloud (its tenant needs a paid package)."
            " Shipping and counting still work",
            state.state,
        )
    code = "licence_invalid" if state.state == "invalid" else "licence_expired"
    return LicenceRefused(code, f"{what} is locked: {_MESSAGES[state.state]}", state.state)


def install_token(
    outbox: Outbox, token: object, *, public_key: str, device: DeviceAddress, now: datetime
) -> tuple[InstallOutcome, Licence]:
    """Verify a token the cloud sent and store it unless an equal or newer one is in force.

    Raises ``LicenceError`` for a token that does not verify; the stored licence is untouched.
    """
    licence = tokens.verify(token, public_key, now=now, device=device)
    assert isinstance(token, str)  # verify accepts nothing else
    outcome = outbox.install_licence(
        token,
        licence.to_payload(),
        serial=licence.serial,
        issued_at=format_ts(licence.issued_at),
        now=now,
    )
    return outcome, licence


def _ts(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment is not None else None
