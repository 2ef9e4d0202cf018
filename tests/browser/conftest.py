"""Real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real edge
process, at a 360×640 PDA viewport. Screenshots go to ``test-artifacts/pda/``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright import sync_api as playwright_api

from cangyun.box_settings import EdgeSettings
from cangyun.processes import ManagedProcess, cangyun_command, free_port, http_ok
from cangyun.settings import dump_settings
from edge.operators import ensure_operator
from tests.support import licences, requires

VIEWPORT = {"width": 360, "height": 640}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pda"
OPERATOR, PASSWORD, NAME = "op1", "pw-Operator-1", "张三"
TOKEN = "cy_browser-test-token"
# Chromium makes up a camera and says yes to the permission prompt.
FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def chromium_path() -> str:
    return requires.chromium()


@dataclass
class Edge:
    """One `cangyun edge serve` process with a settings file and a database of its own."""

    url: str
    https_url: str
    settings: EdgeSettings
    process: ManagedProcess

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def movements(self, **filters: str) -> list[dict[str, Any]]:
        return self.api("GET", "/api/v1/movements", params={"limit": 1000, **filters}).json()[
            "items"
        ]

    def sql(self, statement: str, args: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.settings.database_path) as conn:
            return conn.execute(statement, args).fetchall()

    def outbox_items(self) -> list[bytes]:
        return [row[0] for row in self.sql("SELECT item FROM outbox ORDER BY seq")]


def start_edge(root: Path, env: dict[str, str] | None = None) -> Edge:
    port, https_port = free_port(), free_port()
    base = EdgeSettings()
    settings = licences.trusting(
        replace(
            base,
            device=replace(base.device, tenant="acme", warehouse="sh-01", device="edge-pda"),
            edge=replace(
                base.edge,
                host="127.0.0.1",
                port=port,
                https_port=https_port,
                data_dir=root / "edge",
                api_token=TOKEN,
            ),
        )
    )
    config = root / "edge.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(dump_settings(settings))
    ensure_operator(settings, OPERATOR, PASSWORD, NAME)
    process = ManagedProcess(
        "edge",
        cangyun_command("edge", "serve", "--config", str(config)),
        log_path=root / "edge.log",
        env=env,
    ).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: http_ok(url + "/healthz"), timeout=60)
    return Edge(url, f"https://127.0.0.1:{https_port}", settings, process)


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> Iterator[Edge]:
    running = start_edge(tmp_path_factory.mktemp("pda-edge"))
    # Licensed with the OCR add-on, as a paying warehouse's box: the photo tests read label
    # text, which an unlicensed box on trial (溯源版) does not.
    licences.install(running.settings)
    yield running
    running.process.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=FAKE_MEDIA)
    yield browser
    browser.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh PDA: no cookies, no stored state."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def login(page: Any, edge: Edge, password: str = PASSWORD) -> None:
    page.goto(edge.url + "/")
    page.get_by_test_id("login-user").fill(OPERATOR)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    if password == PASSWORD:
        page.get_by_test_id("menu-receive").wait_for()


def wedge_scan(page: Any, code: str) -> None:
    """Type like a keyboard-wedge scanner: a burst of keys ending in Enter."""
    field = page.get_by_test_id("scan-input")
    field.focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
