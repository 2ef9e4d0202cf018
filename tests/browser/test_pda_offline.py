"""The PDA's status bar against a whole deployment (mosquitto, cloud, ingest, edge, sync
agent as real processes): offline when the sync agent stops, the backlog counts up while
receiving goes on, and drains to the cloud when the agent is back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from playwright.sync_api import expect

from cangyun.processes import free_port
from cangyun.settings import dump_settings
from edge.operators import ensure_operator
from tests.browser.conftest import NAME, OPERATOR, PASSWORD, shot, wedge_scan
from tests.support import requires
from tests.support.stack import Stack

GTIN = "06901234567892"


@pytest.fixture
def stack(tmp_path):
    requires.mosquitto()
    stack = Stack(tmp_path / "stack", f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    # Its own HTTPS port, so parallel runs and a running demo do not collide on 8443.
    settings = stack.edge_settings
    settings = replace(settings, edge=replace(settings.edge, https_port=free_port()))
    stack.edge_toml.write_text(dump_settings(settings))
    ensure_operator(settings, OPERATOR, PASSWORD, NAME)
    stack.start_all()
    yield stack
    stack.stop_all()


def test_offline_banner_then_the_backlog_drains_when_sync_returns(page, stack):
    page.goto(stack.edge_url + "/")
    page.get_by_test_id("login-user").fill(OPERATOR)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    status = page.get_by_test_id("sync-status")
    expect(status).to_have_attribute("data-online", "true", timeout=30_000)
    expect(status).to_contain_text("云端在线")

    stack.processes["sync"].stop()
    expect(status).to_have_attribute("data-online", "false", timeout=30_000)
    expect(status).to_contain_text("离线")

    page.get_by_test_id("menu-receive").click()
    for lot in ("OFF-1", "OFF-2"):
        wedge_scan(page, f"]C101{GTIN}10{lot}")
        page.get_by_test_id("qty-input").fill("6")
        page.get_by_test_id("confirm").click()
        expect(page.get_by_test_id("result-card")).to_contain_text("已收货")
        page.get_by_test_id("next").click()
    expect(status).to_have_attribute("data-backlog", "2", timeout=30_000)
    expect(status).to_contain_text("待同步 2 条")
    shot(page, "20-offline-backlog")
    assert stack.cloud_counts()["rows"] == 0

    stack.start("sync")
    expect(status).to_have_attribute("data-online", "true", timeout=60_000)
    expect(status).to_have_attribute("data-backlog", "0", timeout=60_000)
    expect(status).to_contain_text("已全部同步")
    shot(page, "21-back-online-synced")
    assert stack.wait_synced(2) == {"rows": 2, "distinct_seqs": 2, "watermark": 2}
