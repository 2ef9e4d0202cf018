"""The cloud's SQLite write path: writers in every process queue on one flock beside the
database file, and a write nested in the same thread does not wait for itself."""

from __future__ import annotations

import fcntl
import threading

import pytest
import sqlalchemy as sa

from cloud_api.platform.db import make_engine, write_connection


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    yield engine
    engine.dispose()


def lock_is_free(path) -> bool:
    """Try the writer lock from a separate open file, as another process would."""
    with open(path, "a+b") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(other, fcntl.LOCK_UN)
        return True


def test_a_write_transaction_holds_the_writer_lock_until_it_ends(engine, tmp_path):
    lock = tmp_path / "cloud.sqlite.writer-lock"
    with write_connection(engine) as conn, conn.begin():
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert not lock_is_free(lock)
    assert lock_is_free(lock)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM t")).scalars().all() == [1]


def test_the_lock_is_released_when_the_transaction_fails(engine, tmp_path):
    with pytest.raises(sa.exc.OperationalError):
        with write_connection(engine) as conn, conn.begin():
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.exec_driver_sql("INSERT INTO missing VALUES (1)")
    assert lock_is_free(tmp_path / "cloud.sqlite.writer-lock")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0


def test_writers_in_two_threads_take_turns(engine):
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with write_connection(engine) as conn, conn.begin():
            order.append("first in")
            inside.set()
            release.wait(10)
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with write_connection(engine) as conn, conn.begin():
            order.append("second in")
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inside.wait(10)
    threading.Timer(0.3, release.set).start()
    for thread in threads:
        thread.join(20)
    assert order == ["first in", "first out", "second in"]


def test_a_write_nested_in_the_same_thread_does_not_wait_for_itself(engine, tmp_path):
    with write_connection(engine) as outer:
        with write_connection(engine) as inner, inner.begin():
            inner.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert not lock_is_free(tmp_path / "cloud.sqlite.writer-lock")
        with outer.begin():
            outer.exec_driver_sql("INSERT INTO t VALUES (2)")
    assert lock_is_free(tmp_path / "cloud.sqlite.writer-lock")
