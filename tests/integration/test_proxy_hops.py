"""Behind a reverse proxy: which address the IP allow-list and the audit log see.

A real cheroot server on a free port and real HTTP requests, so remote_addr is the socket's
peer (127.0.0.1) and X-Forwarded-For is an ordinary header a client may forge.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from cloud_api.app import create_app
from tests.support.cloud import STRONG
from tests.support.serving import serving


@contextmanager
def served(cloud: Any, trusted_proxies: int) -> Iterator[str]:
    settings = replace(
        cloud.settings, cloud=replace(cloud.settings.cloud, trusted_proxies=trusted_proxies)
    )
    with serving(create_app(settings, {"CHECK_RESPONSES": True}, engine=cloud.engine)) as base:
        yield base


def call(
    base: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    forwarded: str | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def login_ips(base: str, token: str) -> list[str]:
    status, found = call(base, "GET", "/api/v1/audit?action=login.succeeded", token=token)
    assert status == 200, found
    return [entry["ip"] for entry in found["items"]]


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(cloud):
    cloud.register("Acme", "owner@acme.cn")
    with served(cloud, trusted_proxies=0) as base:
        status, session = call(
            base,
            "POST",
            "/api/v1/auth/login",
            body={"email": "owner@acme.cn", "password": STRONG},
            forwarded="203.0.113.9",
        )
        assert status == 200, session
        token = session["token"]
        assert login_ips(base, token)[0] == "127.0.0.1"
        # The allow-list decides on the socket's address: claiming an outside address does
        # not lock the owner out, and claiming an allowed one would not let anyone in.
        status, found = call(
            base,
            "PUT",
            "/api/v1/security-policy",
            token=token,
            body={"ip_allowlist": ["203.0.113.9/32"]},
            forwarded="203.0.113.9",
        )
        assert (status, found["error"]["code"]) == (422, "would_lock_out")
        status, _ = call(
            base,
            "PUT",
            "/api/v1/security-policy",
            token=token,
            body={"ip_allowlist": ["127.0.0.1/32"]},
        )
        assert status == 200
        status, _ = call(base, "GET", "/api/v1/users", token=token, forwarded="198.51.100.7")
        assert status == 200


def test_with_one_trusted_proxy_the_last_forwarded_address_counts(cloud):
    cloud.register("Acme", "owner@acme.cn")
    with served(cloud, trusted_proxies=1) as base:
        # What nginx sends: the client's own (possibly forged) header, then the peer it saw.
        status, session = call(
            base,
            "POST",
            "/api/v1/auth/login",
            body={"email": "owner@acme.cn", "password": STRONG},
            forwarded="10.0.0.1, 203.0.113.9",
        )
        assert status == 200, session
        token = session["token"]
        assert login_ips(base, token)[0] == "203.0.113.9"
        status, _ = call(
            base,
            "PUT",
            "/api/v1/security-policy",
            token=token,
            body={"ip_allowlist": ["203.0.113.0/24"]},
            forwarded="203.0.113.9",
        )
        assert status == 200
        status, _ = call(base, "GET", "/api/v1/users", token=token, forwarded="203.0.113.20")
        assert status == 200
        # Only the proxy's entry counts: an allowed address put in front of it does not help.
        status, found = call(
            base, "GET", "/api/v1/users", token=token, forwarded="203.0.113.20, 198.51.100.7"
        )
        assert (status, found["error"]["code"]) == (403, "ip_not_allowed")
        # Without the header the proxy itself (127.0.0.1) is the caller, and it is not allowed.
        status, found = call(base, "GET", "/api/v1/users", token=token)
        assert (status, found["error"]["code"]) == (403, "ip_not_allowed")
