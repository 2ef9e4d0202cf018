"""Webhook deliveries go only to the address checked at delivery time, and never follow a
redirect: real HTTP(S) receivers on free local ports, the real delivery code."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cloud_api.app import create_app
from cloud_api.integrations import webhooks
from edge.tls import ensure_certificate

PUBLIC = "93.184.215.14"  # any public address: never contacted, only checked


class Receiver:
    """A local HTTP server answering ``status`` (and ``location``), keeping every request."""

    def __init__(self, status: int = 200, location: str = "", tls: ssl.SSLContext | None = None):
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def api(cloud: Any, *, allow_private: bool) -> Iterator[Any]:
    """The cloud's API with ``cloud.webhooks_allow_private`` as given, on the same database."""
    settings = replace(
        cloud.settings, cloud=replace(cloud.settings.cloud, webhooks_allow_private=allow_private)
    )
    with create_app(settings, {"CHECK_RESPONSES": True}, engine=cloud.engine).test_client() as c:
        yield c


def subscribe(cloud: Any, url: str, *, allow_private: bool = True) -> tuple[str, int]:
    owner = cloud.register("Acme", "owner@acme.cn")["token"]
    cloud.buy(owner, add_ons=())
    auth = {"Authorization": f"Bearer {owner}"}
    with api(cloud, allow_private=allow_private) as client:
        made = client.post(
            "/api/v1/webhooks", headers=auth, json={"url": url, "events": ["movements.created"]}
        )
        assert made.status_code == 201, made.get_json()
        hook = made.get_json()["id"]
        assert client.post(f"/api/v1/webhooks/{hook}/ping", headers=auth).status_code == 202
    return owner, hook


def deliveries(cloud: Any, owner: str, hook: int) -> list[dict[str, Any]]:
    found = cloud.call("GET", f"/api/v1/webhooks/{hook}/deliveries", owner)
    return found.get_json()["items"]


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(cloud, monkeypatch):
    monkeypatch.setattr(webhooks, "retry_delay", lambda attempts: 0.0)
    with Receiver() as elsewhere:
        target = f"http://127.0.0.1:{elsewhere.port}/stolen"
        with Receiver(status=302, location=target) as hook_server:
            owner, hook = subscribe(cloud, f"http://127.0.0.1:{hook_server.port}/hook")
            assert webhooks.deliver_due(cloud.engine, allow_private=True) == 1
            [first] = deliveries(cloud, owner, hook)
            assert (first["status"], first["attempts"]) == ("pending", 1)
            assert "HTTP 302" in first["last_error"]
            # Retried per the policy like any failure, and still not followed.
            assert webhooks.deliver_due(cloud.engine, allow_private=True) == 1
            assert [r["method"] for r in hook_server.requests] == ["POST", "POST"]
    assert elsewhere.requests == []


def test_an_address_that_turned_private_after_creation_is_not_contacted(cloud, monkeypatch):
    with Receiver() as inside:
        url = f"http://localhost:{inside.port}/hook"
        # At creation the name answered a public address, so the webhook was accepted...
        with monkeypatch.context() as creation:
            creation.setattr(webhooks, "resolve_host", lambda host, port: [PUBLIC])
            owner, hook = subscribe(cloud, url, allow_private=False)
        # ...at delivery it is resolved again (for real: loopback) and refused.
        assert webhooks.deliver_due(cloud.engine, allow_private=False) == 1
    assert inside.requests == []
    [attempt] = deliveries(cloud, owner, hook)
    assert attempt["status"] == "pending" and "private address" in attempt["last_error"]


def test_the_delivery_connects_to_the_address_it_checked(cloud, monkeypatch):
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]  # the name itself resolves nowhere (.test)

    with Receiver() as receiver:
        url = f"http://hooks.example.test:{receiver.port}/in?source=cangyun"
        owner, hook = subscribe(cloud, url)
        monkeypatch.setattr(webhooks, "resolve_host", resolve)
        assert webhooks.deliver_due(cloud.engine, allow_private=True) == 1
    assert asked == ["hooks.example.test"]  # once per delivery: no second lookup to race
    [request] = receiver.requests
    assert request["path"] == "/in?source=cangyun"
    assert request["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    assert [d["status"] for d in deliveries(cloud, owner, hook)] == ["delivered"]


def test_https_sends_the_name_for_sni_and_checks_the_certificate_against_it(
    cloud, monkeypatch, tmp_path
):
    files = ensure_certificate(tmp_path / "tls", names=["hooks.example.test"], addresses=[])
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(files.cert, files.key)
    names: list[str | None] = []
    served.sni_callback = lambda sock, name, context: names.append(name)
    trusting = ssl.create_default_context(cafile=str(files.ca_cert))
    monkeypatch.setattr(webhooks, "tls_context", lambda: trusting)
    monkeypatch.setattr(webhooks, "resolve_host", lambda host, port: ["127.0.0.1"])
    with Receiver(tls=served) as receiver:
        owner, hook = subscribe(cloud, f"https://hooks.example.test:{receiver.port}/in")
        assert webhooks.deliver_due(cloud.engine, allow_private=True) == 1
    assert names == ["hooks.example.test"]
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    assert [d["status"] for d in deliveries(cloud, owner, hook)] == ["delivered"]


def test_creation_and_delivery_share_one_rule_for_forbidden_addresses(monkeypatch):
    for url in (
        "http://127.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",  # loopback dressed as IPv6
        "http://0.0.0.0/hook",
        "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata services
        "http://10.1.2.3/hook",
    ):
        with pytest.raises(webhooks.WebhookUrlError):
            webhooks.check_url(url, allow_private=False)
    monkeypatch.setattr(webhooks, "resolve_host", lambda host, port: [PUBLIC, "10.0.0.8"])
    with pytest.raises(webhooks.WebhookUrlError):  # one private answer among public ones
        webhooks.resolve_target("https://hooks.example.test/in", allow_private=False)
    monkeypatch.setattr(webhooks, "resolve_host", lambda host, port: [PUBLIC])
    target = webhooks.resolve_target("https://hooks.example.test/in?a=1", allow_private=False)
    assert (target.address, target.host, target.port, target.path) == (
        PUBLIC,
        "hooks.example.test",
        443,
        "/in?a=1",
    )
