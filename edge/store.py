"""The edge's local SQLite store: every SQL statement the edge and its sync agent run.

Durability: WAL with ``synchronous=FULL``; a movement, its stock effect and its outbox row
commit in one ``BEGIN IMMEDIATE`` transaction, and the HTTP 201 goes out only after that
commit. ``seq`` is the movements table's rowid: movements are never deleted, so it is
strictly increasing and gapless for the life of the database file, whose ``epoch`` (a random
id made when the file is created) names that sequence.

The outbox holds each movement once more as ready-to-send wire JSON. A row is acknowledged
when the cloud's ``acked_through`` covers its seq; acknowledged rows are trimmed only after a
retention period, unacknowledged ones never.

It also keeps the licence in force (installed by the sync agent) and ``clock.last_seen``, the
largest wall-clock time the box has observed, which the licence check uses to notice a clock
set back (docs/licences.md).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import sqlite_utils
from sqlite_utils.migrations import Migrations

from cangyun import wire
from cangyun.errors import Unavailable
from cangyun.movement import Movement, grams_to_kg, movement_body
from cangyun.timeutil import format_ts, parse_ts, utcnow
from edge.stock import BinChange, BinStock, StockError, plan, resolve_customer

BUSY_TIMEOUT_MS = 10_000
# A licence check moves the persisted clock high-water mark at most this often: rollback is
# judged with an hour's tolerance, so finer steps would only add write transactions.
LAST_SEEN_STEP_S = 60.0
InstallOutcome = Literal["installed", "unchanged", "older"]
migrations = Migrations("cangyun-edge")


@migrations()
def m001_movements_outbox_stock(db: sqlite_utils.Database) -> None:
    statements = [
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE movements (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            request_id TEXT UNIQUE,
            type TEXT NOT NULL,
            gtin TEXT, sku TEXT, lot TEXT, expiry_date TEXT, serial TEXT, sscc TEXT,
            qty INTEGER NOT NULL,
            weight_g INTEGER,
            qty_delta INTEGER, weight_delta_g INTEGER,
            customer TEXT, location TEXT, to_location TEXT,
            operator TEXT, reverses TEXT,
            occurred_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL)""",
        """CREATE INDEX movements_operator ON movements(operator, seq)""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            item BLOB NOT NULL,
            created_at REAL NOT NULL)""",
        """CREATE TABLE stock (
            customer TEXT NOT NULL, gtin TEXT NOT NULL, sku TEXT NOT NULL,
            lot TEXT NOT NULL, location TEXT NOT NULL,
            qty INTEGER NOT NULL, weight_g INTEGER NOT NULL,
            expiry_date TEXT, updated_at TEXT NOT NULL,
            PRIMARY KEY (gtin, sku, lot, customer, location))""",
        """CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            acked_through INTEGER NOT NULL DEFAULT 0,
            last_ack_at REAL,
            online INTEGER NOT NULL DEFAULT 0,
            link_changed_at REAL,
            agent_seen_at REAL,
            last_error TEXT)""",
        """INSERT INTO sync_state (id) VALUES (1)""",
        """CREATE TABLE rejected (
            seq INTEGER PRIMARY KEY,
            code TEXT NOT NULL,
            rejected_at REAL NOT NULL)""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m002_licence(db: sqlite_utils.Database) -> None:
    statements = [
        # The one licence in force: the token as the cloud signed it and what it decoded to.
        """CREATE TABLE licence (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            token TEXT NOT NULL,
            serial TEXT NOT NULL,
            payload TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            installed_at TEXT NOT NULL)""",
        # The largest wall-clock time (epoch seconds) this box has seen; only ever raised.
        """CREATE TABLE clock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_seen REAL)""",
        """INSERT INTO clock (id, last_seen) VALUES (1, NULL)""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m003_operators(db: sqlite_utils.Database) -> None:
    statements = [
        # PDA operators of this box. Hashes stay here so a login works with the cloud away.
        """CREATE TABLE operators (
            username TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        # Server-side sessions: the cookie holds a random token, this table only its SHA-256.
        """CREATE TABLE operator_sessions (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES operators(username) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL)""",
        """CREATE INDEX operator_sessions_username ON operator_sessions(username)""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m004_trial(db: sqlite_utils.Database) -> None:
    # The unlicensed trial runs from the first start of this software on this file (for a
    # box upgraded from before the trial existed: from the upgrade); a restart keeps it.
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('trial_started_at', ?)",
        [format_ts(utcnow())],
    )


class StorageFull(Unavailable):
    """The disk budget is spent: refuse new movements rather than drop old ones. Recording
    can resume once the cloud acknowledges the backlog or disk is freed; the edge API answers
    it with 507 Insufficient Storage."""

    code = "storage_full"


@dataclass(frozen=True)
class StoredLicence:
    """The installed licence as stored; the edge re-verifies ``token`` on every check."""

    token: str
    serial: str
    payload: dict[str, Any]
    issued_at: str
    installed_at: str


@dataclass(frozen=True)
class Recorded:
    id: str
    seq: int
    created: bool  # False when an Idempotency-Key matched an earlier movement


def connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front (no deadlock on upgrade)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_database(path: Path) -> str:
    """Create or migrate the database file; return its epoch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The edge and its sync agent may start together on a new file: one migrates at a time.
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _migrate(path)


def _migrate(path: Path) -> str:
    conn = connect(path)
    try:
        db = sqlite_utils.Database(conn)
        migrations.apply(db)
        with immediate(conn):
            row = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            if row is None:
                epoch = uuid.uuid4().hex
                conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('created_at', ?)", (format_ts(utcnow()),)
                )
            else:
                epoch = row["value"]
        return epoch
    finally:
        conn.close()


class SqliteFile:
    """One edge SQLite file as a service uses it: a single writer connection behind a lock
    (SQLite has one writer anyway; queuing here beats busy retries) and one reader per
    thread, so reads never wait for a write. Opening and migrating is the subclass's job."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._writer = connect(self.path)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
        for conn in self._readers:
            conn.close()

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            self._readers.append(conn)
        return conn


class EdgeStore(SqliteFile):
    """The edge service's view: record movements, read movements, stock and sync status."""

    def __init__(
        self,
        path: Path,
        *,
        device: str,
        max_backlog: int = 2_000_000,
        min_free_disk_mb: int = 100,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = Path(path)
        self.device = device
        # Wall clock of the box; tests replace it to play a clock set back or forward.
        self.clock = clock
        self.max_backlog = max_backlog
        self.min_free_disk_mb = min_free_disk_mb
        self.epoch = open_database(self.path)
        super().__init__(self.path)

    # --- writes -------------------------------------------------------------------------

    def record_movement(
        self, movement: Movement, *, request_id: str | None = None, operator: str | None = None
    ) -> Recorded:
        """Record one movement with its stock effect and outbox row, atomically."""
        return self.record_movements([(movement, request_id)], operator=operator)[0]

    def record_movements(
        self, movements: list[tuple[Movement, str | None]], *, operator: str | None = None
    ) -> list[Recorded]:
        """Record several movements in one transaction: all of them or, on error, none."""
        self._check_budget(len(movements))
        results: list[Recorded] = []
        with self._write_lock, immediate(self._writer) as conn:
            for movement, request_id in movements:
                results.append(self._record(conn, movement, request_id, operator))
        return results

    def _record(
        self,
        conn: sqlite3.Connection,
        movement: Movement,
        request_id: str | None,
        operator: str | None,
    ) -> Recorded:
        if request_id is not None:
            row = conn.execute(
                "SELECT id, seq FROM movements WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is not None:
                return Recorded(row["id"], row["seq"], created=False)
        if operator is not None:
            movement = replace(movement, operator=operator)
        gtin, sku = movement.item_key
        lot = movement.lot or ""
        holders = [
            r["customer"]
            for r in conn.execute(
                "SELECT DISTINCT customer FROM stock"
                " WHERE gtin = ? AND sku = ? AND lot = ? AND qty > 0",
                (gtin, sku, lot),
            )
        ]
        movement = resolve_customer(movement, holders)
        customer = movement.customer or ""
        bins = [
            BinStock(r["location"], r["qty"], r["weight_g"], r["expiry_date"])
            for r in conn.execute(
                "SELECT location, qty, weight_g, expiry_date FROM stock"
                " WHERE gtin = ? AND sku = ? AND lot = ? AND customer = ?",
                (gtin, sku, lot, customer),
            )
        ]
        movement, changes = plan(movement, bins)

        movement_id = str(uuid.uuid4())
        now = self.clock()
        occurred = format_ts(movement.occurred_at)
        cursor = conn.execute(
            """INSERT INTO movements (id, request_id, type, gtin, sku, lot, expiry_date, serial,
                 sscc, qty, weight_g, qty_delta, weight_delta_g, customer, location, to_location,
                 operator, reverses, occurred_at, recorded_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                movement_id,
                request_id,
                movement.type,
                movement.gtin,
                movement.sku,
                movement.lot,
                movement.expiry_date.isoformat() if movement.expiry_date else None,
                movement.serial,
                movement.sscc,
                movement.qty,
                movement.weight_g,
                movement.qty_delta,
                movement.weight_delta_g,
                movement.customer,
                movement.location,
                movement.to_location,
                movement.operator,
                movement.reverses,
                occurred,
                format_ts(now),
            ),
        )
        seq = cursor.lastrowid
        assert seq is not None
        self._apply(conn, gtin, sku, lot, customer, changes, format_ts(now))
        item = wire.encode_item(seq, movement_id, movement.type, occurred, movement_body(movement))
        conn.execute(
            "INSERT INTO outbox (seq, item, created_at) VALUES (?, ?, ?)",
            (seq, item, now.timestamp()),
        )
        raise_last_seen(conn, now)
        return Recorded(movement_id, seq, created=True)

    @staticmethod
    def _apply(
        conn: sqlite3.Connection,
        gtin: str,
        sku: str,
        lot: str,
        customer: str,
        changes: list[BinChange],
        now: str,
    ) -> None:
        for change in changes:
            conn.execute(
                """INSERT INTO stock (customer, gtin, sku, lot, location, qty, weight_g,
                     expiry_date, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (gtin, sku, lot, customer, location) DO UPDATE SET
                     qty = qty + excluded.qty,
                     weight_g = weight_g + excluded.weight_g,
                     expiry_date = COALESCE(expiry_date, excluded.expiry_date),
                     updated_at = excluded.updated_at""",
                (
                    customer,
                    gtin,
                    sku,
                    lot,
                    change.location,
                    change.qty,
                    change.weight_g,
                    change.expiry_date,
                    now,
                ),
            )
            if change.qty < 0 or change.weight_g < 0:
                # An emptied bin leaves the stock list (a residual weight keeps it visible).
                conn.execute(
                    """DELETE FROM stock WHERE gtin = ? AND sku = ? AND lot = ? AND customer = ?
                         AND location = ? AND qty = 0 AND weight_g = 0""",
                    (gtin, sku, lot, customer, change.location),
                )

    def _check_budget(self, incoming: int) -> None:
        conn = self._reader()
        last_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM movements").fetchone()[0]
        acked = conn.execute("SELECT acked_through FROM sync_state").fetchone()[0]
        if last_seq - acked + incoming > self.max_backlog:
            raise StorageFull(
                f"{last_seq - acked} movements are waiting to sync (limit {self.max_backlog});"
                " restore the link to the cloud before recording more"
            )
        stats = os.statvfs(self.path.parent)
        free_mb = stats.f_bavail * stats.f_frsize // (1024 * 1024)
        if free_mb < self.min_free_disk_mb:
            raise StorageFull(
                f"only {free_mb} MB of disk left (minimum {self.min_free_disk_mb} MB);"
                " free disk space on the edge box"
            )

    def observe_clock(self, now: datetime) -> datetime:
        """Raise the clock high-water mark to ``now`` (throttled); return the stored mark."""
        seen = read_last_seen(self._reader())
        if seen is not None and now.timestamp() <= seen.timestamp() + LAST_SEEN_STEP_S:
            return seen
        with self._write_lock, immediate(self._writer) as conn:
            return raise_last_seen(conn, now)

    # --- reads --------------------------------------------------------------------------

    def licence(self) -> StoredLicence | None:
        return read_licence(self._reader())

    def trial_started_at(self) -> datetime | None:
        return read_trial_started_at(self._reader())

    def movement_id_for_request(self, request_id: str) -> str | None:
        row = (
            self._reader()
            .execute("SELECT id FROM movements WHERE request_id = ?", (request_id,))
            .fetchone()
        )
        return row["id"] if row else None

    def recent_customers(self, limit: int = 50) -> list[str]:
        """Cargo owners of the latest movements, most recent first (the PDA's pick list)."""
        rows = self._reader().execute(
            """SELECT customer, MAX(seq) AS last FROM movements
               WHERE customer IS NOT NULL AND customer != ''
               GROUP BY customer ORDER BY last DESC LIMIT ?""",
            (limit,),
        )
        return [r["customer"] for r in rows]

    def get_movement(self, movement_id: str) -> dict[str, Any] | None:
        conn = self._reader()
        acked = conn.execute("SELECT acked_through FROM sync_state").fetchone()[0]
        row = conn.execute("SELECT * FROM movements WHERE id = ?", (movement_id,)).fetchone()
        return _movement_row(row, acked) if row else None

    def list_movements(
        self, filters: dict[str, str], *, before_seq: int | None, limit: int
    ) -> tuple[int, list[dict[str, Any]], int | None]:
        """Newest first. Returns (total matching, page, seq to continue before)."""
        where, args = [], []
        for column in ("type", "gtin", "sku", "lot", "customer", "operator", "sscc"):
            if column in filters:
                where.append(f"{column} = ?")
                args.append(filters[column])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        conn = self._reader()
        acked = conn.execute("SELECT acked_through FROM sync_state").fetchone()[0]
        total = conn.execute(f"SELECT COUNT(*) FROM movements {clause}", args).fetchone()[0]
        page_where = list(where)
        page_args = list(args)
        if before_seq is not None:
            page_where.append("seq < ?")
            page_args.append(before_seq)
        page_clause = f"WHERE {' AND '.join(page_where)}" if page_where else ""
        rows = conn.execute(
            f"SELECT * FROM movements {page_clause} ORDER BY seq DESC LIMIT ?",
            (*page_args, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_movement_row(r, acked) for r in rows]
        return total, items, rows[-1]["seq"] if more and rows else None

    def stock(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        where, args = [], []
        for column in ("customer", "gtin", "sku", "lot", "location"):
            if column in filters:
                where.append(f"{column} = ?")
                args.append(filters[column])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._reader().execute(
            f"""SELECT customer, gtin, sku, lot, location, qty, weight_g, expiry_date, updated_at
                FROM stock {clause} ORDER BY gtin, sku, lot, customer, location LIMIT 10000""",
            args,
        )
        return [
            {
                "customer": r["customer"] or None,
                "gtin": r["gtin"] or None,
                "sku": r["sku"] or None,
                "lot": r["lot"] or None,
                "location": r["location"] or None,
                "qty": r["qty"],
                "weight_kg": grams_to_kg(r["weight_g"]),
                "expiry_date": r["expiry_date"],
                "updated_at": r["updated_at"],
            }
            for r in rows
        ]

    def sync_status(self, *, agent_timeout_s: float) -> dict[str, Any]:
        conn = self._reader()
        state = conn.execute("SELECT * FROM sync_state").fetchone()
        last_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM movements").fetchone()[0]
        acked = state["acked_through"]
        oldest = conn.execute(
            "SELECT created_at FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1", (acked,)
        ).fetchone()
        rejected = conn.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        now = time.time()
        agent_alive = state["agent_seen_at"] is not None and (
            now - state["agent_seen_at"] <= agent_timeout_s
        )
        online = bool(state["online"]) and agent_alive
        # Offline since the link dropped, or since the agent's last beat when it went quiet.
        if online:
            offline_since = None
        elif state["online"]:
            offline_since = state["agent_seen_at"]
        else:
            offline_since = state["link_changed_at"]
        return {
            "device": self.device,
            "epoch": self.epoch,
            "online": online,
            "link_since": _ts(state["link_changed_at"]),
            "offline_since": _ts(offline_since),
            "agent_running": agent_alive,
            "last_seq": last_seq,
            "acked_through": acked,
            "backlog": last_seq - acked,
            "oldest_unacked_age_s": round(now - oldest["created_at"], 3) if oldest else 0.0,
            "last_ack_at": _ts(state["last_ack_at"]),
            "rejected": rejected,
            "last_error": state["last_error"],
        }


class Outbox:
    """The sync agent's view of the same file: read unsent items, persist acks and link state.

    It uses ``synchronous=NORMAL``: acks and link state can be replayed after a power cut
    (the cloud re-acks on hello), unlike the movements themselves.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.epoch = open_database(self.path)
        self._conn = connect(self.path, synchronous="NORMAL")

    def close(self) -> None:
        self._conn.close()

    def items_after(self, seq: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._conn.execute(
            "SELECT seq, item FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [(r[0], bytes(r[1])) for r in rows]

    def first_seq_after(self, seq: int) -> int | None:
        row = self._conn.execute("SELECT MIN(seq) FROM outbox WHERE seq > ?", (seq,)).fetchone()
        return row[0]

    def last_seq(self) -> int:
        return self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM movements").fetchone()[0]

    def acked_through(self) -> int:
        return self._conn.execute("SELECT acked_through FROM sync_state").fetchone()[0]

    def record_ack(self, acked_through: int, rejected: tuple[tuple[int, str], ...]) -> int:
        """Advance the acknowledged watermark (never backwards); return the stored value."""
        now = time.time()
        with immediate(self._conn) as conn:
            conn.execute(
                """UPDATE sync_state SET acked_through = MAX(acked_through, ?), last_ack_at = ?,
                     agent_seen_at = ?""",
                (acked_through, now, now),
            )
            for seq, code in rejected:
                conn.execute(
                    "INSERT OR IGNORE INTO rejected (seq, code, rejected_at) VALUES (?, ?, ?)",
                    (seq, code, now),
                )
            return conn.execute("SELECT acked_through FROM sync_state").fetchone()[0]

    def set_link(self, online: bool, error: str | None = None) -> None:
        now = time.time()
        with immediate(self._conn) as conn:
            conn.execute(
                """UPDATE sync_state SET
                     link_changed_at = CASE WHEN online = ? THEN link_changed_at ELSE ? END,
                     online = ?, agent_seen_at = ?, last_error = ?""",
                (int(online), now, int(online), now, error),
            )

    def install_licence(
        self, token: str, payload: dict[str, Any], *, serial: str, issued_at: str, now: datetime
    ) -> InstallOutcome:
        """Store a verified licence unless it is older than the installed one.

        Returns ``installed``, ``unchanged`` (this very token is installed) or ``older``.
        """
        with immediate(self._conn) as conn:
            raise_last_seen(conn, now)
            current = read_licence(conn)
            if current is not None:
                if current.token == token:
                    return "unchanged"
                if parse_ts(issued_at) < parse_ts(current.issued_at):
                    return "older"
            conn.execute(
                """INSERT INTO licence (id, token, serial, payload, issued_at, installed_at)
                   VALUES (1, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET token = excluded.token,
                     serial = excluded.serial, payload = excluded.payload,
                     issued_at = excluded.issued_at, installed_at = excluded.installed_at""",
                (token, serial, orjson.dumps(payload).decode(), issued_at, format_ts(now)),
            )
            return "installed"

    def licence(self) -> StoredLicence | None:
        return read_licence(self._conn)

    def heartbeat(self) -> None:
        with immediate(self._conn) as conn:
            conn.execute("UPDATE sync_state SET agent_seen_at = ?", (time.time(),))

    def trim(self, older_than_s: float) -> int:
        """Delete acknowledged outbox rows older than the retention; return how many."""
        cutoff = time.time() - older_than_s
        with immediate(self._conn) as conn:
            cursor = conn.execute(
                """DELETE FROM outbox WHERE created_at < ?
                     AND seq <= (SELECT acked_through FROM sync_state)""",
                (cutoff,),
            )
            return cursor.rowcount


def read_licence(conn: sqlite3.Connection) -> StoredLicence | None:
    row = conn.execute(
        "SELECT token, serial, payload, issued_at, installed_at FROM licence WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    return StoredLicence(
        token=row["token"],
        serial=row["serial"],
        payload=orjson.loads(row["payload"]),
        issued_at=row["issued_at"],
        installed_at=row["installed_at"],
    )


def read_trial_started_at(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'trial_started_at'").fetchone()
    return None if row is None else parse_ts(row[0])


def read_last_seen(conn: sqlite3.Connection) -> datetime | None:
    value = conn.execute("SELECT last_seen FROM clock WHERE id = 1").fetchone()[0]
    return None if value is None else datetime.fromtimestamp(value, UTC)


def raise_last_seen(conn: sqlite3.Connection, now: datetime) -> datetime:
    """Inside a write transaction: last_seen = max(last_seen, now); never lowered."""
    conn.execute(
        "UPDATE clock SET last_seen = MAX(COALESCE(last_seen, 0), ?) WHERE id = 1",
        (now.timestamp(),),
    )
    seen = read_last_seen(conn)
    assert seen is not None
    return seen


def _ts(epoch_seconds: float | None) -> str | None:
    if epoch_seconds is None:
        return None
    return format_ts(datetime.fromtimestamp(epoch_seconds, UTC))


def _movement_row(row: sqlite3.Row, acked_through: int) -> dict[str, Any]:
    weight = row["weight_g"]
    result = {
        "id": row["id"],
        "seq": row["seq"],
        "type": row["type"],
        "gtin": row["gtin"],
        "sku": row["sku"],
        "lot": row["lot"],
        "expiry_date": row["expiry_date"],
        "serial": row["serial"],
        "sscc": row["sscc"],
        "qty": row["qty"],
        "weight_kg": grams_to_kg(weight) if weight is not None else None,
        "customer": row["customer"],
        "location": row["location"],
        "to_location": row["to_location"],
        "operator": row["operator"],
        "occurred_at": row["occurred_at"],
        "recorded_at": row["recorded_at"],
        "synced": row["seq"] <= acked_through,
    }
    if row["qty_delta"] is not None:
        result["qty_delta"] = row["qty_delta"]
        result["weight_delta_kg"] = grams_to_kg(row["weight_delta_g"] or 0)
    if row["reverses"]:
        result["reverses"] = row["reverses"]
    return result


__all__ = [
    "EdgeStore",
    "Outbox",
    "Recorded",
    "StockError",
    "StorageFull",
    "StoredLicence",
    "open_database",
]
