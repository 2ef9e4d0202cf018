"""Database engine for the cloud: SQLite by default, PostgreSQL by URL.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions behind an
flock (so ingest processes queue on the lock instead of failing when a read upgrades to a
write, and get it the moment it is free).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 64 * 1024


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _sqlite_tuning(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_tuning(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's begin event decides how to BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # The ledger's indexes outgrow SQLite's 2 MB default cache within hours of ingest.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


@contextmanager
def write_connection(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose transaction takes the write lock up front on SQLite.

    On a SQLite file, writers in all processes first queue on an ``flock`` of a file beside
    the database. SQLite's own busy handler polls with sleeps of up to 100 ms, so with two
    ingest workers the lock would often sit free while the other one sleeps; the kernel
    hands an flock over the moment it is released.
    """
    with ExitStack() as stack:
        lock_path = _writer_lock_path(engine)
        if lock_path is not None and not getattr(_held, "flock", False):
            stack.enter_context(_writer_flock(lock_path))
        yield stack.enter_context(engine.connect().execution_options(sqlite_immediate=True))


@contextmanager
def atomic(engine: Engine) -> Iterator[sa.Connection]:
    """The one way the cloud writes: a transaction that commits on leaving, or rolls back.

    On SQLite it queues on the writer flock and takes the write lock up front
    (``write_connection``); on PostgreSQL it is a plain transaction.
    """
    with write_connection(engine) as conn, conn.begin():
        yield conn


@contextmanager
def _writer_flock(lock_path: str) -> Iterator[None]:
    with open(lock_path, "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        _held.flock = True  # a nested write in this thread must not wait for itself
        try:
            yield
        finally:
            _held.flock = False
            fcntl.flock(lock_file, fcntl.LOCK_UN)


_held = threading.local()


def _writer_lock_path(engine: Engine) -> str | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}.writer-lock"


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).parents[1] / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(Path(__file__).parents[1] / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def insert_for(engine_or_conn: Engine | sa.Connection) -> Any:
    """The dialect's INSERT construct, which knows ON CONFLICT."""
    if engine_or_conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
