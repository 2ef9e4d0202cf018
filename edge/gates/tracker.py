"""From codes read on camera frames to one pass per pallet. Pure: no I/O; times are passed in.

The rules, in the order they apply to each frame:

1. **Grouping.** Codes read on one frame are grouped by pallet: every SSCC and every
   container number anchors its own group, and so does every truck plate (a vehicle rather
   than a pallet, tracked by the same rules); a GTIN (with or without lot) joins the nearest
   SSCC on the frame (the same label carries both), otherwise it forms a group of its own.
   A pallet's identity is its SSCC, else its GTIN and lot, else its container number.
2. **Confirmation.** A group that matches no pass yet is a candidate until it has been seen
   on ``confirm_frames`` (2) frames of the same camera within ``confirm_window_s``, or once
   on a pushed snapshot when every code in it carries a valid check digit (SSCC, GTIN and
   container numbers all do; plates have none, so a plate always needs two frames). One
   stray misread therefore never makes an event.
3. **One pass per pallet.** A confirmed group opens a pass. Later sightings of the same
   identity within ``window_s`` (default 60 s, measured from the last sighting) extend that
   pass instead of opening another: a forklift that stops, backs up or comes through twice
   makes one event. An SSCC finds its pass by SSCC only (many pallets share a GTIN and
   lot); a GTIN without SSCC joins a pass that has the same GTIN and lot and was seen
   within ``confirm_window_s`` (the pallet whose SSCC was just read), else a GTIN pass.
4. **Settling.** A pass settles when its pallet has been out of sight for ``settle_s`` (or
   has stood in view for ``settle_max_s``). Until then a GTIN pass still becomes an SSCC
   pass when the SSCC turns up, so the decision taken on settling (receipt, shipment, hold)
   sees the best identity. A settled pass keeps absorbing sightings until its window ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

CONFIRM_FRAMES = 2
CONFIRM_WINDOW_S = 3.0
PASS_WINDOW_S = 60.0
SETTLE_S = 2.0
SETTLE_MAX_S = 30.0

KINDS = ("sscc", "gtin", "container", "plate")
ANCHORS = ("sscc", "container", "plate")  # kinds that are a thing of their own on a frame


@dataclass(frozen=True)
class Code:
    """One identity read on a frame."""

    kind: str  # sscc | gtin | container | plate
    sscc: str | None = None
    gtin: str | None = None
    lot: str | None = None
    container: str | None = None
    centre: tuple[float, float] | None = None  # where on the frame, to pair a label's codes
    checked: bool = True  # carries a valid check digit
    plate: str | None = None  # a truck's licence plate, e.g. 沪A12345

    @property
    def key(self) -> str:
        return identity_key(self.kind, self.sscc, self.gtin, self.lot, self.container, self.plate)


@dataclass(frozen=True)
class Sighting:
    """The codes read on one frame of one camera (possibly none)."""

    camera: str
    at: float  # seconds, the caller's clock
    codes: tuple[Code, ...] = ()
    snapshot: bool = False  # a single pushed picture rather than a frame of a stream


@dataclass(frozen=True)
class PalletPass:
    """A pallet going through the gate: what becomes one gate event."""

    number: int
    kind: str
    sscc: str | None
    gtin: str | None
    lot: str | None
    container: str | None
    first_seen: float
    last_seen: float
    frames: int
    cameras: tuple[str, ...]
    settled: bool = False
    plate: str | None = None

    @property
    def key(self) -> str:
        return identity_key(self.kind, self.sscc, self.gtin, self.lot, self.container, self.plate)


@dataclass(frozen=True)
class Update:
    """``opened``: a new pass; ``seen``: an open or settled pass was seen again (or took a
    better identity); ``settled``: time to decide what the pass means."""

    action: Literal["opened", "seen", "settled"]
    passage: PalletPass


def identity_key(
    kind: str,
    sscc: str | None,
    gtin: str | None,
    lot: str | None,
    container: str | None,
    plate: str | None = None,
) -> str:
    if kind == "sscc":
        return f"sscc:{sscc}"
    if kind == "gtin":
        return f"gtin:{gtin}:{lot or ''}"
    if kind == "plate":
        return f"plate:{plate}"
    return f"container:{container}"


@dataclass
class _Group:
    kind: str
    sscc: str | None = None
    gtin: str | None = None
    lot: str | None = None
    container: str | None = None
    checked: bool = True
    plate: str | None = None

    @property
    def key(self) -> str:
        return identity_key(self.kind, self.sscc, self.gtin, self.lot, self.container, self.plate)

    def absorb(self, code: Code) -> None:
        self.gtin = self.gtin or code.gtin
        self.lot = self.lot or code.lot
        self.checked = self.checked and code.checked


@dataclass
class _Candidate:
    frames: list[tuple[int, float]] = field(default_factory=list)  # (frame number, time)
    group: _Group | None = None


def group_codes(codes: tuple[Code, ...]) -> list[_Group]:
    """Rule 1: the pallets on one frame."""
    groups: dict[str, _Group] = {}
    anchors: list[tuple[Code, _Group]] = []
    for code in codes:
        if code.kind in ANCHORS:
            group = groups.get(code.key)
            if group is None:
                group = groups[code.key] = _Group(
                    code.kind,
                    sscc=code.sscc,
                    container=code.container,
                    checked=code.checked,
                    plate=code.plate,
                )
                if code.kind == "sscc":
                    anchors.append((code, group))
            group.absorb(code)
    loose: list[Code] = []
    for code in codes:
        if code.kind != "gtin":
            continue
        anchor = _nearest(code, anchors)
        if anchor is not None:
            anchor.absorb(code)
        else:
            loose.append(code)
    # Loose GTINs: a GTIN with a lot and the same GTIN without one are the same goods.
    for code in sorted(loose, key=lambda c: c.lot is None):
        match = next(
            (
                g
                for g in groups.values()
                if g.kind == "gtin" and g.gtin == code.gtin and (code.lot in (None, g.lot))
            ),
            None,
        )
        if match is None:
            groups[code.key] = _Group("gtin", gtin=code.gtin, lot=code.lot, checked=code.checked)
        else:
            match.checked = match.checked and code.checked
    return list(groups.values())


def _nearest(code: Code, anchors: list[tuple[Code, _Group]]) -> _Group | None:
    if not anchors:
        return None
    if len(anchors) == 1:
        return anchors[0][1]
    if code.centre is None:
        return None  # several pallets in view and no position: do not guess

    def distance(anchor: tuple[Code, _Group]) -> float:
        centre = anchor[0].centre
        return math.dist(code.centre, centre) if centre is not None else math.inf  # type: ignore[arg-type]

    best = min(anchors, key=distance)
    return best[1] if math.isfinite(distance(best)) else None


class Tracker:
    """The passes of one gate. Feed it ``observe`` per frame and ``tick`` now and then."""

    def __init__(
        self,
        *,
        window_s: float = PASS_WINDOW_S,
        confirm_frames: int = CONFIRM_FRAMES,
        confirm_window_s: float = CONFIRM_WINDOW_S,
        settle_s: float = SETTLE_S,
        settle_max_s: float = SETTLE_MAX_S,
    ) -> None:
        self.window_s = window_s
        self.confirm_frames = confirm_frames
        self.confirm_window_s = confirm_window_s
        self.settle_s = settle_s
        self.settle_max_s = settle_max_s
        self._passes: dict[int, PalletPass] = {}
        self._gtin_aliases: dict[int, set[str]] = {}  # pass -> GTIN keys read with its SSCC
        self._candidates: dict[tuple[str, str], _Candidate] = {}
        self._next_number = 1
        self._frame = 0

    @property
    def passes(self) -> list[PalletPass]:
        return sorted(self._passes.values(), key=lambda p: p.number)

    def adopt(self, passage: PalletPass) -> PalletPass:
        """Take over a pass remembered elsewhere (the database, after a restart)."""
        adopted = replace(passage, number=self._next_number)
        self._next_number += 1
        self._passes[adopted.number] = adopted
        self._gtin_aliases[adopted.number] = set()
        return adopted

    def observe(self, sighting: Sighting) -> list[Update]:
        self._frame += 1
        now = sighting.at
        updates: dict[int, Update] = {}
        for group in group_codes(sighting.codes):
            found = self._find(group, now)
            if found is not None:
                if found.number not in updates:
                    updates[found.number] = Update("seen", self._extend(found, group, sighting))
                continue
            opened = self._confirm(group, sighting)
            if opened is not None:
                updates[opened.number] = Update("opened", opened)
        return list(updates.values())

    def tick(self, now: float) -> list[Update]:
        """Settle passes out of sight; forget what is older than its window."""
        updates = []
        for number, passage in list(self._passes.items()):
            if not passage.settled and (
                now - passage.last_seen >= self.settle_s
                or now - passage.first_seen >= self.settle_max_s
            ):
                passage = self._passes[number] = replace(passage, settled=True)
                updates.append(Update("settled", passage))
            if passage.settled and now - passage.last_seen > self.window_s:
                del self._passes[number]
                self._gtin_aliases.pop(number, None)
        for key, candidate in list(self._candidates.items()):
            candidate.frames = [f for f in candidate.frames if now - f[1] <= self.confirm_window_s]
            if not candidate.frames:
                del self._candidates[key]
        return updates

    # --- rules 2-4 ----------------------------------------------------------------------

    def _find(self, group: _Group, now: float) -> PalletPass | None:
        live = [p for p in self._passes.values() if now - p.last_seen <= self.window_s]
        if group.kind == "sscc":
            same = [p for p in live if p.kind == "sscc" and p.sscc == group.sscc]
            if same:
                return same[0]
            # The SSCC of a pallet first read by its GTIN alone: upgrade that pass.
            fresh = [
                p
                for p in live
                if p.kind == "gtin"
                and not p.settled
                and group.gtin is not None
                and p.gtin == group.gtin
                and (p.lot or None) == (group.lot or None)
                and now - p.last_seen <= self.confirm_window_s
            ]
            return max(fresh, key=lambda p: p.last_seen) if fresh else None
        if group.kind == "gtin":
            key = group.key
            recent_sscc = [
                p
                for p in live
                if p.kind == "sscc"
                and key in self._gtin_aliases.get(p.number, ())
                and now - p.last_seen <= self.confirm_window_s
            ]
            if recent_sscc:
                return max(recent_sscc, key=lambda p: p.last_seen)
            same = [p for p in live if p.kind == "gtin" and p.key == key]
            return same[0] if same else None
        same = [p for p in live if p.kind == group.kind and p.key == group.key]
        return same[0] if same else None

    def _extend(self, passage: PalletPass, group: _Group, sighting: Sighting) -> PalletPass:
        changes: dict[str, object] = {
            "last_seen": max(passage.last_seen, sighting.at),
            "frames": passage.frames + 1,
            "gtin": passage.gtin or group.gtin,
            "lot": passage.lot or group.lot,
        }
        if sighting.camera not in passage.cameras:
            changes["cameras"] = (*passage.cameras, sighting.camera)
        if group.kind == "sscc" and passage.kind == "gtin" and not passage.settled:
            changes.update(kind="sscc", sscc=group.sscc)
        updated = replace(passage, **changes)  # type: ignore[arg-type]
        self._passes[passage.number] = updated
        if updated.kind == "sscc" and group.gtin:
            aliases = self._gtin_aliases.setdefault(passage.number, set())
            aliases.add(identity_key("gtin", None, group.gtin, group.lot, None))
            aliases.add(identity_key("gtin", None, group.gtin, None, None))
        return updated

    def _confirm(self, group: _Group, sighting: Sighting) -> PalletPass | None:
        key = (sighting.camera, group.key)
        candidate = self._candidates.setdefault(key, _Candidate())
        now = sighting.at
        candidate.frames = [f for f in candidate.frames if now - f[1] <= self.confirm_window_s]
        candidate.frames.append((self._frame, now))
        if candidate.group is None:
            candidate.group = group
        else:
            candidate.group.gtin = candidate.group.gtin or group.gtin
            candidate.group.lot = candidate.group.lot or group.lot
        confirmed = (sighting.snapshot and group.checked) or len(
            {f[0] for f in candidate.frames}
        ) >= self.confirm_frames
        if not confirmed:
            return None
        del self._candidates[key]
        best = candidate.group
        passage = PalletPass(
            number=self._next_number,
            kind=group.kind,
            sscc=group.sscc,
            gtin=best.gtin,
            lot=best.lot,
            container=group.container,
            first_seen=min(f[1] for f in candidate.frames),
            last_seen=now,
            frames=len(candidate.frames),
            cameras=(sighting.camera,),
            plate=group.plate,
        )
        self._next_number += 1
        self._passes[passage.number] = passage
        aliases = self._gtin_aliases[passage.number] = set()
        if passage.kind == "sscc" and passage.gtin:
            aliases.add(identity_key("gtin", None, passage.gtin, passage.lot, None))
            aliases.add(identity_key("gtin", None, passage.gtin, None, None))
        return passage
