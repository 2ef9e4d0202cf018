"""Shared fixtures: real SQLite files, a temporary PostgreSQL database, whole stacks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Tests never assert on wall-clock time: Hypothesis' per-example deadline and its "input
# generation is slow" check both would, and both flake on a busy 2-core CI machine.
settings.register_profile(
    "cangyun", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("cangyun")

PG_ADMIN_URL = os.environ.get("CANGYUN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin():
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped on leaving; skips the test when none is reachable."""
    name = f"cangyun_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloud.sqlite'}"
    return request.getfixturevalue("postgres_url")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Say in the summary what did not run: PostgreSQL is optional, the rest only skips when
    CANGYUN_SKIP asked for it (tests.support.requires)."""
    skipped = terminalreporter.stats.get("skipped", [])

    def reason(report) -> str:
        longrepr = report.longrepr
        return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)

    on_pg = sum(1 for r in skipped if "PostgreSQL not reachable" in reason(r))
    asked = sum(1 for r in skipped if "CANGYUN_SKIP=" in reason(r))
    if on_pg:
        terminalreporter.write_line(
            f"PostgreSQL: not reachable at {PG_ADMIN_URL}; {on_pg} tests ran on SQLite only "
            "(start PostgreSQL or set CANGYUN_TEST_PG to include them)",
            yellow=True,
        )
    else:
        terminalreporter.write_line(f"PostgreSQL: tests ran on SQLite and on {PG_ADMIN_URL}")
    if asked:
        terminalreporter.write_line(
            f"partial run: {asked} tests left out by CANGYUN_SKIP={os.environ.get('CANGYUN_SKIP')}",
            yellow=True,
        )
