"""The gate tables: their migrations, in the edge's SQLite file under their own migration set
(applied after the edge's own tables). Apart from the store so its queries are not read
through 100 lines of DDL.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.store import connect, open_database

migrations = Migrations("cangyun-edge-gates")


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
