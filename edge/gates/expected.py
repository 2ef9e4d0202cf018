"""The rules of expected goods at the gates: which open line a pallet event claims, and how the
cloud's lines are taken in. Functions of a connection inside the caller's write transaction;
``GateStore`` opens that transaction and is what callers use.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from cangyun.expected import ExpectedLine
from cangyun.wire import CloudLine
from edge.gates.rows import expected_row


@dataclass(frozen=True)
class Match:
    """What an event matched among the expected goods."""

    line: dict[str, Any] | None  # the expected line this event claims
    direction: str  # in | out | both (unresolved on a both gate)
    duplicate_of: dict[str, Any] | None = None  # an SSCC line already done


def served_directions(gate_direction: str) -> tuple[str, ...]:
    """The directions of the lines a gate can confirm; inbound first."""
    return ("in", "out") if gate_direction == "both" else (gate_direction,)


def insert_line(
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


def apply_cloud_lines(
    conn: sqlite3.Connection,
    lines: list[CloudLine],
    *,
    version: int,
    span: tuple[int, int | None] | None,
    now: str,
) -> dict[str, int]:
    """Take the lines of one ``expected`` command from the cloud.

    Keyed by cloud id, so a repeated command changes nothing. A cloud line only ever
    goes from open to cancelled, received or shipped, and a line this box has claimed,
    held or done keeps its status: applying commands in any order ends the same way.
    ``span`` (after_id, through_id or None): this command is the part of the full set
    of open lines with cloud ids in that range, so open lines here in the range that it
    does not list, and that existed at ``version``, are no longer expected.
    """
    counts = {"added": 0, "closed": 0, "unchanged": 0, "unplaced": 0}
    gates = {
        r["code"]: served_directions(r["direction"])
        for r in conn.execute("SELECT code, direction FROM gates")
    }
    for cloud in lines:
        row = conn.execute(
            "SELECT id, status FROM gate_expected WHERE cloud_id = ?", (cloud.id,)
        ).fetchone()
        if cloud.status == "open" and row is None:
            line = cloud.line
            insert_line(conn, cloud.gate, line, now, cloud.id, cloud.version)
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


def claim_line(conn: sqlite3.Connection, event_id: int) -> Match:
    """Claim the expected line this event confirms, once: a repeat returns the same line.

    An SSCC names exactly one line; a GTIN takes the oldest open line for that GTIN whose
    lot is the event's or unspecified (lines that name an SSCC wait for that SSCC). On a
    gate for both directions an inbound line wins over an outbound one.
    """
    event = conn.execute("SELECT * FROM gate_events WHERE id = ?", (event_id,)).fetchone()
    gate = conn.execute("SELECT * FROM gates WHERE code = ?", (event["gate"],)).fetchone()
    if event["expected_id"] is not None:
        line = conn.execute(
            "SELECT * FROM gate_expected WHERE id = ?", (event["expected_id"],)
        ).fetchone()
        return Match(expected_row(line), line["direction"])
    directions = served_directions(gate["direction"])
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
        claimed = conn.execute("SELECT * FROM gate_expected WHERE id = ?", (line["id"],)).fetchone()
        return Match(expected_row(claimed), line["direction"])
    if event["sscc"]:
        for direction in directions:
            done = conn.execute(
                """SELECT * FROM gate_expected WHERE (gate = ? OR gate IS NULL)
                     AND sscc = ? AND direction = ? AND status IN ('received', 'shipped')
                   ORDER BY id DESC LIMIT 1""",
                (event["gate"], event["sscc"], direction),
            ).fetchone()
            if done is not None:
                return Match(None, direction, duplicate_of=expected_row(done))
    return Match(None, gate["direction"])


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
