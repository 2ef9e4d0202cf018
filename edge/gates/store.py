"""All SQL of the dock gates: gates, cameras, expected goods, events, holds and alerts.

The tables live in the edge's own SQLite file (WAL) under their own migration set, so a
gate event and the receipt it confirms sit side by side; writes take the write lock up front
(``BEGIN IMMEDIATE``) through the helpers of ``edge.store``. Movements themselves are never
written here: they go through ``EdgeStore.record_movement`` with the event's idempotency key.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils
from sqlite_utils.migrations import Migrations

from cangyun.errors import AlreadyExists, Conflict, NotFound
from cangyun.movement import grams_to_kg
from cangyun.timeutil import format_ts
from cangyun.wire import CloudLine
from edge.gates.model import (
    CameraConfig,
    ExpectedLine,
    GateConfig,
    check_code,
    check_direction,
    new_camera_token,
    token_hash,
)
from edge.gates.tracker import PalletPass
from edge.store import SqliteFile, connect, immediate, open_database

migrations = Migrations("cangyun-edge-gates")

# Outcomes of an event. "open": the pallet is still in view (or was, moments ago).
FINAL_OUTCOMES = ("received", "shipped", "held", "accepted", "rejected", "duplicate", "logged")
EVENT_FILTERS = ("outcome", "kind", "sscc", "gtin", "plate")


@migrations()
def m001_gates(db: sqlite_utils.Database) -> None:
    statements = [
        """CREATE TABLE gates (
            code TEXT PRIMARY KEY,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out', 'both')),
            token_hash TEXT NOT NULL UNIQUE,
            window_s REAL NOT NULL DEFAULT 60,
            ocr_containers INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL)""",
        """CREATE TABLE gate_cameras (
            gate TEXT NOT NULL REFERENCES gates(code),
            code TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('push', 'stream', 'folder')),
            url TEXT, fps REAL NOT NULL DEFAULT 2,
            folder TEXT, after TEXT NOT NULL DEFAULT 'archive', poll_s REAL NOT NULL DEFAULT 1,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (gate, code))""",
        """CREATE TABLE gate_expected (
            id INTEGER PRIMARY KEY,
            gate TEXT NOT NULL REFERENCES gates(code),
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            sscc TEXT, gtin TEXT, lot TEXT,
            qty INTEGER NOT NULL, weight_g INTEGER, customer TEXT, reference TEXT,
            status TEXT NOT NULL DEFAULT 'open',
            event_id INTEGER, movement_id TEXT,
            created_at TEXT NOT NULL, done_at TEXT)""",
        """CREATE INDEX gate_expected_sscc ON gate_expected(gate, sscc, status)""",
        """CREATE INDEX gate_expected_gtin ON gate_expected(gate, gtin, status)""",
        # AUTOINCREMENT: ids are never reused, even if old rows are trimmed one day, because
        # they key the movements (gate-event:{id}, gate-hold:{id}).
        """CREATE TABLE gate_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            gate TEXT NOT NULL REFERENCES gates(code),
            direction TEXT NOT NULL,
            kind TEXT NOT NULL,
            sscc TEXT, gtin TEXT, lot TEXT, container TEXT,
            first_seen REAL NOT NULL, last_seen REAL NOT NULL,
            frames INTEGER NOT NULL, cameras TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT 'open',
            reason TEXT,
            expected_id INTEGER, movement_id TEXT, hold_id INTEGER,
            settled_at REAL)""",
        """CREATE INDEX gate_events_gate ON gate_events(gate, id)""",
        """CREATE INDEX gate_events_outcome ON gate_events(outcome)""",
        """CREATE TABLE gate_holds (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            gate TEXT NOT NULL REFERENCES gates(code),
            event_id INTEGER NOT NULL UNIQUE REFERENCES gate_events(id),
            expected_id INTEGER,
            direction TEXT NOT NULL,
            reason TEXT NOT NULL, message TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',
            movement_id TEXT, note TEXT,
            created_at TEXT NOT NULL, resolved_at TEXT)""",
        """CREATE INDEX gate_holds_gate ON gate_holds(gate, status, id)""",
        """CREATE TABLE gate_alerts (
            id INTEGER PRIMARY KEY,
            gate TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            event_id INTEGER, hold_id INTEGER,
            created_at TEXT NOT NULL)""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m002_plates_and_cloud_lines(db: sqlite_utils.Database) -> None:
    """Truck plates (a gate option and the event's plate) and expected lines from the cloud.

    A cloud line keeps its cloud id (unique: the same command twice changes nothing) and the
    change stamp it was sent with. It may name a gate this box does not have (yet) or none
    at all (any gate of its direction), so ``gate`` loses its NOT NULL and its reference to
    ``gates``: SQLite cannot drop either in place, hence the rebuild. Nothing refers to
    ``gate_expected`` by foreign key, so the rebuild is safe with foreign keys on.
    """
    statements = [
        "ALTER TABLE gates ADD COLUMN ocr_plates INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE gate_events ADD COLUMN plate TEXT",
        """CREATE TABLE gate_expected_new (
            id INTEGER PRIMARY KEY,
            gate TEXT,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            sscc TEXT, gtin TEXT, lot TEXT,
            qty INTEGER NOT NULL, weight_g INTEGER, customer TEXT, reference TEXT,
            status TEXT NOT NULL DEFAULT 'open',
            event_id INTEGER, movement_id TEXT,
            created_at TEXT NOT NULL, done_at TEXT,
            cloud_id INTEGER, cloud_version INTEGER)""",
        """INSERT INTO gate_expected_new (id, gate, direction, sscc, gtin, lot, qty, weight_g,
             customer, reference, status, event_id, movement_id, created_at, done_at)
           SELECT id, gate, direction, sscc, gtin, lot, qty, weight_g, customer, reference,
             status, event_id, movement_id, created_at, done_at FROM gate_expected""",
        "DROP TABLE gate_expected",
        "ALTER TABLE gate_expected_new RENAME TO gate_expected",
        "CREATE INDEX gate_expected_sscc ON gate_expected(gate, sscc, status)",
        "CREATE INDEX gate_expected_gtin ON gate_expected(gate, gtin, status)",
        "CREATE UNIQUE INDEX gate_expected_cloud ON gate_expected(cloud_id)",
    ]
    for statement in statements:
        db.execute(statement)


class GateNotFound(NotFound):
    """No gate of that code; ``args[0]`` is the code (the CLI words its own message)."""

    code = "gate_not_found"

    def __init__(self, gate: str) -> None:
        super().__init__(f"no gate {gate}")
        self.args = (gate,)


class GateExists(AlreadyExists):
    code = "gate_exists"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="code")


class HoldNotFound(NotFound):
    pass


class HoldResolved(Conflict):
    """The held pallet was accepted or rejected already."""

    code = "hold_resolved"


@dataclass(frozen=True)
class Match:
    """What an event matched among the expected goods."""

    line: dict[str, Any] | None  # the expected line this event claims
    direction: str  # in | out | both (unresolved on a both gate)
    duplicate_of: dict[str, Any] | None = None  # an SSCC line already done


def open_gates_database(path: Path) -> None:
    """Create or migrate the edge file (its tables first), then the gate tables."""
    open_database(path)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = connect(path)
        try:
            migrations.apply(sqlite_utils.Database(conn))
        finally:
            conn.close()


class GateStore(SqliteFile):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        open_gates_database(self.path)
        # FULL, like movements: an event id must never be handed out twice (after a power
        # cut), since its receipt is recorded under the idempotency key gate-event:{id}.
        super().__init__(self.path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, immediate(self._writer) as conn:
            yield conn

    # --- gates and cameras --------------------------------------------------------------

    def create_gate(self, gate: GateConfig, token: str) -> dict[str, Any]:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM gates WHERE code = ?", (gate.code,)).fetchone():
                raise GateExists(f"gate {gate.code} exists already")
            conn.execute(
                """INSERT INTO gates (code, direction, token_hash, window_s, ocr_containers,
                     ocr_plates, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    gate.code,
                    gate.direction,
                    token_hash(token),
                    gate.window_s,
                    int(gate.ocr_containers),
                    int(gate.ocr_plates),
                    _now_text(),
                ),
            )
        found = self.get_gate(gate.code)
        assert found is not None
        return found

    def set_token(self, code: str, token: str) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE gates SET token_hash = ? WHERE code = ?", (token_hash(token), code)
            )
            if cursor.rowcount == 0:
                raise GateNotFound(code)

    def gate_for_token(self, token: str) -> str | None:
        row = (
            self._reader()
            .execute("SELECT code FROM gates WHERE token_hash = ?", (token_hash(token),))
            .fetchone()
        )
        return row["code"] if row else None

    def get_gate(self, code: str) -> dict[str, Any] | None:
        conn = self._reader()
        row = conn.execute("SELECT * FROM gates WHERE code = ?", (code,)).fetchone()
        if row is None:
            return None
        cameras = conn.execute(
            "SELECT * FROM gate_cameras WHERE gate = ? ORDER BY code", (code,)
        ).fetchall()
        return _gate_row(row, cameras)

    def gate_config(self, code: str) -> GateConfig:
        row = self._reader().execute("SELECT * FROM gates WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise GateNotFound(code)
        return GateConfig(
            row["code"],
            row["direction"],
            row["window_s"],
            bool(row["ocr_containers"]),
            bool(row["ocr_plates"]),
        )

    def list_gates(self) -> list[dict[str, Any]]:
        conn = self._reader()
        cameras: dict[str, list[sqlite3.Row]] = {}
        for row in conn.execute("SELECT * FROM gate_cameras ORDER BY gate, code"):
            cameras.setdefault(row["gate"], []).append(row)
        return [
            _gate_row(row, cameras.get(row["code"], []))
            for row in conn.execute("SELECT * FROM gates ORDER BY code")
        ]

    def set_camera(self, camera: CameraConfig) -> None:
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM gates WHERE code = ?", (camera.gate,)).fetchone():
                raise GateNotFound(camera.gate)
            conn.execute(
                """INSERT INTO gate_cameras (gate, code, kind, url, fps, folder, after, poll_s,
                     updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (gate, code) DO UPDATE SET kind = excluded.kind,
                     url = excluded.url, fps = excluded.fps, folder = excluded.folder,
                     after = excluded.after, poll_s = excluded.poll_s,
                     updated_at = excluded.updated_at""",
                (
                    camera.gate,
                    camera.code,
                    camera.kind,
                    camera.url,
                    camera.fps,
                    camera.folder,
                    camera.after,
                    camera.poll_s,
                    _now_text(),
                ),
            )

    def remove_camera(self, gate: str, code: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM gate_cameras WHERE gate = ? AND code = ?", (gate, code)
            )
            return cursor.rowcount > 0

    def cameras(self) -> list[CameraConfig]:
        return [
            CameraConfig(
                gate=r["gate"],
                code=r["code"],
                kind=r["kind"],
                url=r["url"],
                fps=r["fps"],
                folder=r["folder"],
                after=r["after"],
                poll_s=r["poll_s"],
            )
            for r in self._reader().execute("SELECT * FROM gate_cameras ORDER BY gate, code")
        ]

    # --- expected goods -----------------------------------------------------------------

    def add_expected(self, gate: str, line: ExpectedLine) -> dict[str, Any]:
        """Record one expected pallet. Also the entry point for lines the cloud sends down."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM gates WHERE code = ?", (gate,)).fetchone():
                raise GateNotFound(gate)
            line_id = _insert_expected(conn, gate, line, _now_text())
        found = self.get_expected(line_id or 0)
        assert found is not None
        return found

    def get_expected(self, line_id: int) -> dict[str, Any] | None:
        row = (
            self._reader()
            .execute("SELECT * FROM gate_expected WHERE id = ?", (line_id,))
            .fetchone()
        )
        return _expected_row(row) if row else None

    def list_expected(
        self, gate: str, *, status: str | None, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        """The gate's lines and the cloud's lines for any gate of its direction."""
        directions = _directions(self.gate_config(gate).direction)
        marks = ", ".join("?" * len(directions))
        where = [f"(gate = ? OR (gate IS NULL AND direction IN ({marks})))"]
        args: list[Any] = [gate, *directions]
        if status:
            where.append("status = ?")
            args.append(status)
        return self._page("gate_expected", where, args, before_id, limit, _expected_row)

    def apply_cloud_lines(
        self,
        lines: list[CloudLine],
        *,
        version: int,
        span: tuple[int, int | None] | None = None,
    ) -> dict[str, int]:
        """Take the lines of one ``expected`` command from the cloud, in one transaction.

        Keyed by cloud id, so a repeated command changes nothing. A cloud line only ever
        goes from open to cancelled, received or shipped, and a line this box has claimed,
        held or done keeps its status: applying commands in any order ends the same way.
        ``span`` (after_id, through_id or None): this command is the part of the full set
        of open lines with cloud ids in that range, so open lines here in the range that it
        does not list, and that existed at ``version``, are no longer expected.
        """
        counts = {"added": 0, "closed": 0, "unchanged": 0, "unplaced": 0}
        now = _now_text()
        with self._write() as conn:
            gates = {
                r["code"]: _directions(r["direction"])
                for r in conn.execute("SELECT code, direction FROM gates")
            }
            for cloud in lines:
                row = conn.execute(
                    "SELECT id, status FROM gate_expected WHERE cloud_id = ?", (cloud.id,)
                ).fetchone()
                if cloud.status == "open" and row is None:
                    line = cloud.line
                    _insert_expected(conn, cloud.gate, line, now, cloud.id, cloud.version)
                    counts["added"] += 1
                    if cloud.gate is not None and line.direction not in gates.get(cloud.gate, ()):
                        counts["unplaced"] += 1  # stored: matched once such a gate exists
                elif cloud.status != "open" and row is not None and row["status"] == "open":
                    conn.execute(
                        """UPDATE gate_expected SET status = ?, cloud_version = ?, done_at = ?
                           WHERE id = ?""",
                        (cloud.status, cloud.version, now, row["id"]),
                    )
                    counts["closed"] += 1
                else:
                    counts["unchanged"] += 1
            if span is not None:
                after, through = span
                listed = {cloud.id for cloud in lines}
                stale = conn.execute(
                    """SELECT id, cloud_id FROM gate_expected WHERE cloud_id > ?
                         AND (? IS NULL OR cloud_id <= ?) AND status = 'open'
                         AND cloud_version <= ?""",
                    (after, through, through, version),
                ).fetchall()
                for row in stale:
                    if row["cloud_id"] not in listed:
                        conn.execute(
                            """UPDATE gate_expected SET status = 'cancelled', done_at = ?
                               WHERE id = ?""",
                            (now, row["id"]),
                        )
                        counts["closed"] += 1
        return counts

    # --- events -------------------------------------------------------------------------

    def open_event(self, gate: str, direction: str, passage: PalletPass) -> int:
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO gate_events (gate, direction, kind, sscc, gtin, lot, container,
                     plate, first_seen, last_seen, frames, cameras)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    gate,
                    direction,
                    passage.kind,
                    passage.sscc,
                    passage.gtin,
                    passage.lot,
                    passage.container,
                    passage.plate,
                    passage.first_seen,
                    passage.last_seen,
                    passage.frames,
                    orjson.dumps(list(passage.cameras)).decode(),
                ),
            )
            event_id = cursor.lastrowid
            assert event_id is not None
            return event_id

    def touch_event(self, event_id: int, passage: PalletPass) -> None:
        """A pass was seen again: last sighting, frames, cameras (and a better identity
        while the event is still open)."""
        with self._write() as conn:
            conn.execute(
                """UPDATE gate_events SET last_seen = MAX(last_seen, ?), frames = ?, cameras = ?,
                     gtin = COALESCE(gtin, ?), lot = COALESCE(lot, ?),
                     kind = CASE WHEN outcome = 'open' THEN ? ELSE kind END,
                     sscc = CASE WHEN outcome = 'open' THEN COALESCE(?, sscc) ELSE sscc END
                   WHERE id = ?""",
                (
                    passage.last_seen,
                    passage.frames,
                    orjson.dumps(list(passage.cameras)).decode(),
                    passage.gtin,
                    passage.lot,
                    passage.kind,
                    passage.sscc,
                    event_id,
                ),
            )

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        row = (
            self._reader().execute("SELECT * FROM gate_events WHERE id = ?", (event_id,)).fetchone()
        )
        return _event_row(row) if row else None

    def list_events(
        self, gate: str, *, filters: dict[str, str], before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        where, args = ["gate = ?"], [gate]
        for column in EVENT_FILTERS:
            if column in filters:
                where.append(f"{column} = ?")
                args.append(filters[column])
        return self._page("gate_events", where, args, before_id, limit, _event_row)

    def recent_passes(self, gate: str, since: float) -> list[tuple[int, PalletPass]]:
        """Events still open or seen since ``since``, as passes: what a restarted tracker
        must remember so a pallet in view across the restart stays one event."""
        rows = self._reader().execute(
            """SELECT * FROM gate_events WHERE gate = ? AND (outcome = 'open' OR last_seen >= ?)
               ORDER BY id""",
            (gate, since),
        )
        return [
            (
                r["id"],
                PalletPass(
                    number=0,
                    kind=r["kind"],
                    sscc=r["sscc"],
                    gtin=r["gtin"],
                    lot=r["lot"],
                    container=r["container"],
                    first_seen=r["first_seen"],
                    last_seen=r["last_seen"],
                    frames=r["frames"],
                    cameras=tuple(orjson.loads(r["cameras"])),
                    settled=r["outcome"] != "open",
                    plate=r["plate"],
                ),
            )
            for r in rows
        ]

    def count_events(self, gate: str) -> dict[str, int]:
        rows = self._reader().execute(
            "SELECT outcome, COUNT(*) AS n FROM gate_events WHERE gate = ? GROUP BY outcome",
            (gate,),
        )
        return {r["outcome"]: r["n"] for r in rows}

    # --- what an event means ------------------------------------------------------------

    def match_event(self, event_id: int) -> Match:
        """Claim the expected line this event confirms, once: a repeat returns the same line.

        An SSCC names exactly one line; a GTIN takes the oldest open line for that GTIN whose
        lot is the event's or unspecified (lines that name an SSCC wait for that SSCC). On a
        gate for both directions an inbound line wins over an outbound one.
        """
        with self._write() as conn:
            event = conn.execute("SELECT * FROM gate_events WHERE id = ?", (event_id,)).fetchone()
            gate = conn.execute("SELECT * FROM gates WHERE code = ?", (event["gate"],)).fetchone()
            if event["expected_id"] is not None:
                line = conn.execute(
                    "SELECT * FROM gate_expected WHERE id = ?", (event["expected_id"],)
                ).fetchone()
                return Match(_expected_row(line), line["direction"])
            directions = _directions(gate["direction"])
            line = _find_line(conn, event, directions)
            if line is not None:
                conn.execute(
                    "UPDATE gate_expected SET status = 'claimed', event_id = ? WHERE id = ?",
                    (event_id, line["id"]),
                )
                conn.execute(
                    "UPDATE gate_events SET expected_id = ?, direction = ? WHERE id = ?",
                    (line["id"], line["direction"], event_id),
                )
                claimed = conn.execute(
                    "SELECT * FROM gate_expected WHERE id = ?", (line["id"],)
                ).fetchone()
                return Match(_expected_row(claimed), line["direction"])
            if event["sscc"]:
                for direction in directions:
                    done = conn.execute(
                        """SELECT * FROM gate_expected WHERE (gate = ? OR gate IS NULL)
                             AND sscc = ? AND direction = ? AND status IN ('received', 'shipped')
                           ORDER BY id DESC LIMIT 1""",
                        (event["gate"], event["sscc"], direction),
                    ).fetchone()
                    if done is not None:
                        return Match(None, direction, duplicate_of=_expected_row(done))
            return Match(None, gate["direction"])

    def finish_event(
        self,
        event_id: int,
        outcome: str,
        *,
        movement_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Close an event; its claimed line is done with the same movement."""
        line_status = {"received": "received", "shipped": "shipped"}.get(outcome)
        now = datetime.now(UTC).timestamp()
        with self._write() as conn:
            event = conn.execute("SELECT * FROM gate_events WHERE id = ?", (event_id,)).fetchone()
            if event["outcome"] != "open":
                return
            conn.execute(
                """UPDATE gate_events SET outcome = ?, movement_id = ?, reason = ?,
                     settled_at = ? WHERE id = ?""",
                (outcome, movement_id, reason, now, event_id),
            )
            if line_status and event["expected_id"] is not None:
                conn.execute(
                    """UPDATE gate_expected SET status = ?, movement_id = ?, done_at = ?
                       WHERE id = ?""",
                    (line_status, movement_id, _now_text(), event["expected_id"]),
                )

    def hold_event(
        self, event_id: int, *, direction: str, reason: str, message: str, alert: str
    ) -> int | None:
        """Hold the pallet for an operator and raise an alert, once per event (None when the
        event was decided otherwise meanwhile)."""
        now = datetime.now(UTC).timestamp()
        with self._write() as conn:
            event = conn.execute("SELECT * FROM gate_events WHERE id = ?", (event_id,)).fetchone()
            if event["hold_id"] is not None or event["outcome"] != "open":
                return event["hold_id"]
            cursor = conn.execute(
                """INSERT INTO gate_holds (gate, event_id, expected_id, direction, reason,
                     message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    event["gate"],
                    event_id,
                    event["expected_id"],
                    direction,
                    reason,
                    message,
                    _now_text(),
                ),
            )
            hold_id = cursor.lastrowid
            assert hold_id is not None
            conn.execute(
                """UPDATE gate_events SET outcome = 'held', reason = ?, hold_id = ?,
                     settled_at = ? WHERE id = ?""",
                (reason, hold_id, now, event_id),
            )
            if event["expected_id"] is not None:
                conn.execute(
                    "UPDATE gate_expected SET status = 'held' WHERE id = ?",
                    (event["expected_id"],),
                )
            conn.execute(
                """INSERT INTO gate_alerts (gate, kind, message, event_id, hold_id, created_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (event["gate"], alert, message, event_id, hold_id, _now_text()),
            )
            return hold_id

    # --- holds and alerts ---------------------------------------------------------------

    def get_hold(self, gate: str, hold_id: int) -> dict[str, Any]:
        conn = self._reader()
        row = conn.execute(
            "SELECT * FROM gate_holds WHERE id = ? AND gate = ?", (hold_id, gate)
        ).fetchone()
        if row is None:
            raise HoldNotFound(f"no held pallet {hold_id} at gate {gate}")
        event = conn.execute(
            "SELECT * FROM gate_events WHERE id = ?", (row["event_id"],)
        ).fetchone()
        line = None
        if row["expected_id"] is not None:
            found = conn.execute(
                "SELECT * FROM gate_expected WHERE id = ?", (row["expected_id"],)
            ).fetchone()
            line = _expected_row(found) if found else None
        return _hold_row(row, event, line)

    def list_holds(
        self, gate: str, *, status: str | None, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        where, args = ["gate = ?"], [gate]
        if status:
            where.append("status = ?")
            args.append(status)
        total, rows, next_id = self._page("gate_holds", where, args, before_id, limit, dict)
        return total, [self.get_hold(gate, r["id"]) for r in rows], next_id

    def resolve_hold(
        self, gate: str, hold_id: int, status: str, *, movement_id: str | None, note: str | None
    ) -> dict[str, Any]:
        """Accept (with the movement recorded) or reject a held pallet; once."""
        with self._write() as conn:
            hold = conn.execute(
                "SELECT * FROM gate_holds WHERE id = ? AND gate = ?", (hold_id, gate)
            ).fetchone()
            if hold is None:
                raise HoldNotFound(f"no held pallet {hold_id} at gate {gate}")
            if hold["status"] != "open":
                if hold["status"] == status and status == "accepted":
                    return dict(hold)  # a retried accept: same movement, nothing new
                raise HoldResolved(f"held pallet {hold_id} was {hold['status']} already")
            conn.execute(
                """UPDATE gate_holds SET status = ?, movement_id = ?, note = ?, resolved_at = ?
                   WHERE id = ?""",
                (status, movement_id, note, _now_text(), hold_id),
            )
            conn.execute(
                "UPDATE gate_events SET outcome = ?, movement_id = COALESCE(?, movement_id)"
                " WHERE id = ?",
                (status, movement_id, hold["event_id"]),
            )
            if hold["expected_id"] is not None:
                if status == "accepted":
                    done = "received" if hold["direction"] == "in" else "shipped"
                    conn.execute(
                        """UPDATE gate_expected SET status = ?, movement_id = ?, done_at = ?
                           WHERE id = ?""",
                        (done, movement_id, _now_text(), hold["expected_id"]),
                    )
                else:  # the line is expected still: a later pass may confirm it
                    conn.execute(
                        """UPDATE gate_expected SET status = 'open', event_id = NULL
                           WHERE id = ?""",
                        (hold["expected_id"],),
                    )
            return dict(hold)

    def add_alert(self, gate: str, kind: str, message: str, event_id: int | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                """INSERT INTO gate_alerts (gate, kind, message, event_id, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (gate, kind, message, event_id, _now_text()),
            )

    def list_alerts(
        self, *, gate: str | None, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        where: list[str] = []
        args: list[Any] = []
        if gate:
            where.append("gate = ?")
            args.append(gate)
        return self._page("gate_alerts", where, args, before_id, limit, _alert_row)

    # --- helpers ------------------------------------------------------------------------

    def _page(
        self,
        table: str,
        where: list[str],
        args: list[Any],
        before_id: int | None,
        limit: int,
        shape: Any,
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        """Newest first: (total matching, page, id to continue before)."""
        conn = self._reader()
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = conn.execute(f"SELECT COUNT(*) FROM {table} {clause}", args).fetchone()[0]
        page_where = [*where, "id < ?"] if before_id is not None else where
        page_args = [*args, before_id] if before_id is not None else args
        page_clause = f"WHERE {' AND '.join(page_where)}" if page_where else ""
        rows = conn.execute(
            f"SELECT * FROM {table} {page_clause} ORDER BY id DESC LIMIT ?",
            (*page_args, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return total, [shape(r) for r in rows], rows[-1]["id"] if more and rows else None


def _find_line(
    conn: sqlite3.Connection, event: sqlite3.Row, directions: tuple[str, ...]
) -> sqlite3.Row | None:
    """The open line an event confirms: by SSCC in any direction first, then by GTIN."""
    if event["sscc"]:
        for direction in directions:
            line = conn.execute(
                """SELECT * FROM gate_expected WHERE (gate = ? OR gate IS NULL)
                     AND direction = ? AND status = 'open' AND sscc = ? ORDER BY id LIMIT 1""",
                (event["gate"], direction, event["sscc"]),
            ).fetchone()
            if line is not None:
                return line
    if event["gtin"]:
        for direction in directions:
            line = conn.execute(
                """SELECT * FROM gate_expected WHERE (gate = ? OR gate IS NULL)
                     AND direction = ? AND status = 'open' AND sscc IS NULL AND gtin = ?
                     AND (lot IS NULL OR lot = ?)
                   ORDER BY id LIMIT 1""",
                (event["gate"], direction, event["gtin"], event["lot"] or ""),
            ).fetchone()
            if line is not None:
                return line
    return None


# --- provisioning (the demo and `cangyun edge gate add`) --------------------------------


def ensure_gate(
    db_path: Path, code: str, direction: str, *, token: str | None = None
) -> str | None:
    """Create gate ``code`` unless it exists; return its new camera token, or None if the gate
    existed already (its token is left alone: use ``set_camera_token`` to choose one)."""
    config = GateConfig(check_code(code, "gate"), check_direction(direction))
    store = GateStore(db_path)
    try:
        if store.get_gate(code) is not None:
            return None
        token = token or new_camera_token()
        try:
            store.create_gate(config, token)
        except GateExists:
            return None
        return token
    finally:
        store.close()


def set_camera_token(db_path: Path, code: str, token: str | None = None) -> str:
    """Give gate ``code`` a known (or a fresh random) camera token; return it."""
    store = GateStore(db_path)
    try:
        token = token or new_camera_token()
        store.set_token(code, token)
        return token
    finally:
        store.close()


# --- row shapes -----------------------------------------------------------------------


def _insert_expected(
    conn: sqlite3.Connection,
    gate: str | None,
    line: ExpectedLine,
    created_at: str,
    cloud_id: int | None = None,
    cloud_version: int | None = None,
) -> int | None:
    """One expected line, entered here (no cloud id) or sent down by the cloud."""
    cursor = conn.execute(
        """INSERT INTO gate_expected (gate, direction, sscc, gtin, lot, qty, weight_g, customer,
             reference, created_at, cloud_id, cloud_version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            gate,
            line.direction,
            line.sscc,
            line.gtin,
            line.lot,
            line.qty,
            line.weight_g,
            line.customer,
            line.reference,
            created_at,
            cloud_id,
            cloud_version,
        ),
    )
    return cursor.lastrowid


def _now_text() -> str:
    return format_ts(datetime.now(UTC))


def _ts(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return format_ts(datetime.fromtimestamp(seconds, UTC))


def identity_text(
    kind: str,
    sscc: str | None,
    gtin: str | None,
    lot: str | None,
    container: str | None,
    plate: str | None = None,
) -> str:
    """What went through as people read it: the SSCC, (01)GTIN(10)lot, the container or the
    truck's plate."""
    if kind == "sscc" and sscc:
        return sscc
    if kind == "gtin" and gtin:
        return f"(01){gtin}" + (f"(10){lot}" if lot else "")
    if kind == "plate" and plate:
        return plate
    return container or ""


def _directions(gate_direction: str) -> tuple[str, ...]:
    return ("in", "out") if gate_direction == "both" else (gate_direction,)


def _gate_row(row: sqlite3.Row, cameras: list[sqlite3.Row]) -> dict[str, Any]:
    return {
        "code": row["code"],
        "direction": row["direction"],
        "window_s": row["window_s"],
        "ocr_containers": bool(row["ocr_containers"]),
        "ocr_plates": bool(row["ocr_plates"]),
        "created_at": row["created_at"],
        "cameras": [_camera_row(c) for c in cameras],
    }


def _camera_row(row: sqlite3.Row) -> dict[str, Any]:
    data: dict[str, Any] = {"code": row["code"], "kind": row["kind"]}
    if row["kind"] == "stream":
        data.update(url=row["url"], fps=row["fps"])
    elif row["kind"] == "folder":
        data.update(folder=row["folder"], after=row["after"], poll_s=row["poll_s"])
    return data


def _expected_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "direction": row["direction"],
        "sscc": row["sscc"],
        "gtin": row["gtin"],
        "lot": row["lot"],
        "qty": row["qty"],
        "weight_kg": grams_to_kg(row["weight_g"]) if row["weight_g"] is not None else None,
        "customer": row["customer"],
        "reference": row["reference"],
        "status": row["status"],
        "event_id": row["event_id"],
        "movement_id": row["movement_id"],
        "created_at": row["created_at"],
        "done_at": row["done_at"],
        "source": "edge" if row["cloud_id"] is None else "cloud",
        "cloud_id": row["cloud_id"],
    }


def _event_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "direction": row["direction"],
        "kind": row["kind"],
        "identity": identity_text(
            row["kind"], row["sscc"], row["gtin"], row["lot"], row["container"], row["plate"]
        ),
        "sscc": row["sscc"],
        "gtin": row["gtin"],
        "lot": row["lot"],
        "container": row["container"],
        "plate": row["plate"],
        "first_seen": _ts(row["first_seen"]),
        "last_seen": _ts(row["last_seen"]),
        "frames": row["frames"],
        "cameras": orjson.loads(row["cameras"]),
        "outcome": row["outcome"],
        "reason": row["reason"],
        "expected_id": row["expected_id"],
        "movement_id": row["movement_id"],
        "hold_id": row["hold_id"],
    }


def _hold_row(row: sqlite3.Row, event: sqlite3.Row, line: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "direction": row["direction"],
        "reason": row["reason"],
        "message": row["message"],
        "status": row["status"],
        "movement_id": row["movement_id"],
        "note": row["note"],
        "created_at": row["created_at"],
        "resolved_at": row["resolved_at"],
        "event": _event_row(event),
        "expected": line,
    }


def _alert_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "gate": row["gate"],
        "kind": row["kind"],
        "message": row["message"],
        "event_id": row["event_id"],
        "hold_id": row["hold_id"],
        "created_at": row["created_at"],
    }
