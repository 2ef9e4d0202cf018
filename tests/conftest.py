"""Shared fixtures: real SQLite files, a temporary PostgreSQL database, a cloud app, an edge
box's app and sync agent."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from flask import Flask

    from cangyun.box_settings import EdgeSettings
    from sync_agent.agent import SyncAgent
    from tests.support.cloud import Cloud, SmtpServer

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


# --- the cloud -------------------------------------------------------------------------------


@pytest.fixture
def cloud(tmp_path: Path, database_url: str) -> Iterator[Cloud]:
    """A cloud app with no tenant yet, once on SQLite and once on PostgreSQL, every answer
    checked against its declared model (tests.support.cloud.make_cloud)."""
    from tests.support.cloud import make_cloud

    made = make_cloud(tmp_path, database_url)
    yield made
    made.engine.dispose()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives in ``.inbox``;
    a cloud sends it mail when made with ``make_cloud(..., smtp_port=smtp.port)``."""
    from tests.support.cloud import SmtpServer

    with SmtpServer() as server:
        yield server


# --- an edge box -----------------------------------------------------------------------------

EDGE_TOKEN = "cy_test-token"


@pytest.fixture
def edge_settings(tmp_path: Path) -> EdgeSettings:
    """An edge box of tenant acme, warehouse sh-01, device edge-1, its files under
    tmp_path/edge, its API token EDGE_TOKEN. A test module wanting another box overrides this
    fixture (taking it as an argument and replace()-ing what differs)."""
    from cangyun.box_settings import EdgeSettings

    base = EdgeSettings()
    return replace(
        base,
        device=replace(base.device, tenant="acme", warehouse="sh-01", device="edge-1"),
        edge=replace(base.edge, data_dir=tmp_path / "edge", api_token=EDGE_TOKEN),
    )


@pytest.fixture
def make_edge_app(edge_settings: EdgeSettings) -> Iterator[Callable[..., Flask]]:
    """Makes edge apps on real SQLite files, every answer checked against its declared model;
    each is closed after the test (gate worker and sources, stores). ``make_edge_app()`` is
    the box of ``edge_settings``."""
    from edge import gates
    from edge.app import create_app

    made: list[Flask] = []

    def make(box: EdgeSettings | None = None) -> Flask:
        app = create_app(box or edge_settings, {"CHECK_RESPONSES": True})
        made.append(app)
        return app

    yield make
    for app in made:
        gates.close(app)
        app.extensions["cangyun.operators"].close()
        app.extensions["cangyun.edge_store"].close()


@pytest.fixture
def edge_app(make_edge_app: Callable[..., Flask]) -> Flask:
    return make_edge_app()


@pytest.fixture
def edge_client(edge_app: Flask) -> Iterator[object]:
    """The test client of ``edge_app``, sending the box's API token."""
    token = edge_app.extensions["cangyun.edge_settings"].edge.api_token
    with edge_app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        yield client


@pytest.fixture
def make_sync_agent(edge_settings: EdgeSettings) -> Iterator[Callable[..., SyncAgent]]:
    """Makes real sync agents on an edge box's database file that are on no broker (the test
    hands them downlink messages as paho would); each is closed after the test."""
    from sync_agent.agent import SyncAgent

    made: list[SyncAgent] = []

    def make(box: EdgeSettings | None = None) -> SyncAgent:
        agent = SyncAgent(box or edge_settings)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.outbox.close()
        if agent._gates is not None:
            agent._gates.close()
        agent._lock_file.close()


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
