"""All SQL of the dock gates' daily work: gates, cameras, expected goods, events, holds and
alerts. ``GateStore`` is what callers use; beside it, ``schema`` holds the tables, ``rows`` the
JSON shapes of their rows and ``expected`` the rules that match pallets to expected lines.

Writes take the write lock up front (``BEGIN IMMEDIATE``) through the helpers of
``edge.store``, so a gate event and the receipt it confirms sit side by side in the edge's
file. Movements themselves are never written here: they go through
``EdgeStore.record_movement`` with the event's idempotency key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cangyun.errors import AlreadyExists, Conflict, NotFound
from cangyun.expected import ExpectedLine
from cangyun.wire import CloudLine
from edge.gates import expected
from edge.gates.expected import Match
from edge.gates.model import (
    CameraConfig,
    GateConfig,
    check_code,
    check_direction,
    new_camera_token,
    token_hash,
)
from edge.gates.rows import (
    alert_row,
    event_row,
    expected_row,
    gate_row,
    hold_row,
    now_text,
)
from edge.gates.schema import open_gates_database
from edge.gates.tracker import PalletPass
from edge.store import SqliteFile, immediate

# Outcomes of an event. "open": the pallet is still in view (or was, moments ago).
FINAL_OUTCOMES = ("received", "shipped", "held", "accepted", "rejected", "duplicate", "logged")
EVENT_FILTERS = ("outcome", "kind", "sscc", "gtin", "plate")


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
                    now_text(),
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
        return gate_row(row, cameras)

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
            gate_row(row, cameras.get(row["code"], []))
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
                    now_text(),
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
            line_id = expected.insert_line(conn, gate, line, now_text())
        found = self.get_expected(line_id or 0)
        assert found is not None
        return found

    def get_expected(self, line_id: int) -> dict[str, Any] | None:
        row = (
            self._reader()
            .execute("SELECT * FROM gate_expected WHERE id = ?", (line_id,))
            .fetchone()
        )
        return expected_row(row) if row else None

    def list_expected(
        self, gate: str, *, status: str | None, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        """The gate's lines and the cloud's lines for any gate of its direction."""
        directions = expected.served_directions(self.gate_config(gate).direction)
        marks = ", ".join("?" * len(directions))
        where = [f"(gate = ? OR (gate IS NULL AND direction IN ({marks})))"]
        args: list[Any] = [gate, *directions]
        if status:
            where.append("status = ?")
            args.append(status)
        return self._page("gate_expected", where, args, before_id, limit, expected_row)

    def apply_cloud_lines(
        self,
        lines: list[CloudLine],
        *,
        version: int,
        span: tuple[int, int | None] | None = None,
    ) -> dict[str, int]:
        """Take the lines of one ``expected`` command from the cloud, in one transaction
        (the rules: ``expected.apply_cloud_lines``)."""
        now = now_text()
        with self._write() as conn:
            return expected.apply_cloud_lines(conn, lines, version=version, span=span, now=now)

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
        return event_row(row) if row else None

    def list_events(
        self, gate: str, *, filters: dict[str, str], before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        where, args = ["gate = ?"], [gate]
        for column in EVENT_FILTERS:
            if column in filters:
                where.append(f"{column} = ?")
                args.append(filters[column])
        return self._page("gate_events", where, args, before_id, limit, event_row)

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
        """Claim the expected line this event confirms, once: a repeat returns the same line
        (the rules: ``expected.claim_line``)."""
        with self._write() as conn:
            return expected.claim_line(conn, event_id)

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
                    (line_status, movement_id, now_text(), event["expected_id"]),
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
                    now_text(),
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
                (event["gate"], alert, message, event_id, hold_id, now_text()),
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
            line = expected_row(found) if found else None
        return hold_row(row, event, line)

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
                (status, movement_id, note, now_text(), hold_id),
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
                        (done, movement_id, now_text(), hold["expected_id"]),
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
                (gate, kind, message, event_id, now_text()),
            )

    def list_alerts(
        self, *, gate: str | None, before_id: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        where: list[str] = []
        args: list[Any] = []
        if gate:
            where.append("gate = ?")
            args.append(gate)
        return self._page("gate_alerts", where, args, before_id, limit, alert_row)

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
