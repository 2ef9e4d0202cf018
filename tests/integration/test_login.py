"""One sign-in for the JSON API and the console (``accounts.service.authenticate``): the same
password-hash work whatever the email, the IP allow-list before any session, an expired
password forced to change, and owners made by provisioning under the same rotation.

Hash work is counted, not timed: a counting wrapper around the two argon2 entry points."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cangyun.timeutil import utcnow
from cloud_api import provisioning
from cloud_api.accounts import credentials
from cloud_api.platform.schema import api_tokens, users
from tests.support.cloud import STRONG

OWNER = "owner@acme.test"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}
NEW = "Brand-new-pass-2027"


@pytest.fixture
def cloud(cloud):
    """The shared cloud with tenant Acme 仓储 registered by OWNER (tokens["owner"])."""
    cloud.tokens["owner"] = cloud.register("Acme 仓储", OWNER)["token"]
    return cloud


@pytest.fixture
def hash_work(monkeypatch):
    """Counts argon2 computations: hashing a password and verifying one cost the same."""
    calls: Counter[str] = Counter()
    for name in ("hash_password", "verify_password"):
        real = getattr(credentials, name)

        def counted(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(credentials, name, counted)
    return calls


def sessions(cloud) -> int:
    with cloud.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(api_tokens).where(api_tokens.c.kind == "session")
        ).scalar_one()


def console_login(cloud, email, password, **environ):
    client = cloud.app.test_client()
    response = client.post(
        "/console/login", data={"email": email, "password": password}, environ_base=environ
    )
    return client, response


def set_policy(cloud, **policy):
    response = cloud.call("PUT", "/api/v1/security-policy", cloud.tokens["owner"], json=policy)
    assert response.status_code == 200, response.get_json()


def expire_password(cloud, email):
    with cloud.engine.begin() as conn:
        conn.execute(
            users.update()
            .where(users.c.email == email)
            .values(password_changed_at=utcnow() - timedelta(days=31))
        )


@pytest.mark.parametrize("surface", ["api", "console"])
def test_unknown_and_known_emails_cost_the_same_hash_work(cloud, hash_work, surface):
    cloud.call("POST", "/api/v1/users", cloud.tokens["owner"],
               json={"email": "gone@acme.test", "password": STRONG, "role": "viewer"})  # fmt: skip
    with cloud.engine.begin() as conn:
        conn.execute(users.update().where(users.c.email == "gone@acme.test").values(active=False))

    def attempt(email: str, password: str) -> int:
        hash_work.clear()
        if surface == "api":
            status = cloud.login(email, password).status_code
        else:
            status = console_login(cloud, email, password)[1].status_code
        assert sum(hash_work.values()) == 1, (email, dict(hash_work))
        return status

    assert attempt("nobody@acme.test", "Wrong-pass-2026") == 401
    assert attempt("gone@acme.test", STRONG) == 401
    assert attempt(OWNER, "Wrong-pass-2026") == 401
    assert attempt(OWNER, STRONG) in (200, 302)
    # A locked account still costs one hash, and the right password does not open it.
    set_policy(cloud, lockout_threshold=1, lockout_minutes=5)
    assert attempt(OWNER, "Wrong-pass-2026") == 429
    assert attempt(OWNER, STRONG) == 429


@pytest.mark.parametrize("surface", ["api", "console"])
def test_a_login_from_outside_the_allow_list_writes_no_session(cloud, surface):
    set_policy(cloud, ip_allowlist=["127.0.0.1/32"])
    before = sessions(cloud)
    if surface == "api":
        refused = cloud.login(OWNER, STRONG, environ_base=OUTSIDE)
        assert (refused.status_code, refused.get_json()["error"]["code"]) == (
            403,
            "ip_not_allowed",
        )
        assert "token" not in refused.get_json()
    else:
        client, refused = console_login(cloud, OWNER, STRONG, **OUTSIDE)
        assert refused.status_code == 403
        assert "203.0.113.9" in refused.get_data(as_text=True)
        assert client.get_cookie("cy_session") is None
    assert sessions(cloud) == before
    # A wrong password from outside neither opens a session nor counts towards a lockout.
    for _ in range(6):
        assert cloud.login(OWNER, "Wrong-pass-2026", environ_base=OUTSIDE).status_code == 403
    assert cloud.login(OWNER, STRONG).status_code == 200
    assert sessions(cloud) == before + 1


def test_the_console_forces_an_expired_password_to_be_changed(cloud):
    set_policy(cloud, rotation_days=30)
    expire_password(cloud, OWNER)
    client, signed_in = console_login(cloud, OWNER, STRONG)
    assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/console/password")
    for page in ("/console/", "/console/users", "/console/customers"):
        blocked = client.get(page)
        location = blocked.headers["Location"].partition("?")[0]
        assert (blocked.status_code, location) == (302, "/console/password")
    form = client.get("/console/password").get_data(as_text=True)
    assert "您的密码已过期" in form
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)

    def change(current: str, new: str, confirm: str | None = None):
        return client.post(
            "/console/password",
            data={"csrf": csrf, "current_password": current, "new_password": new,
                  "confirm_password": new if confirm is None else confirm},
        )  # fmt: skip

    wrong = change("Not-my-password-1", NEW)
    assert wrong.status_code == 403 and "当前密码错误" in wrong.get_data(as_text=True)
    assert change(STRONG, STRONG).status_code == 422  # the same password again
    assert change(STRONG, NEW, "Something-else-2027").status_code == 422
    weak = change(STRONG, "short")
    assert weak.status_code == 422 and "安全策略" in weak.get_data(as_text=True)
    assert client.get("/console/").status_code == 302  # still expired
    done = change(STRONG, NEW)
    assert (done.status_code, done.headers["Location"]) == (302, "/console/")
    assert client.get("/console/").status_code == 200  # the fresh session works
    assert cloud.login(OWNER, STRONG).status_code == 401
    assert cloud.login(OWNER, NEW).get_json()["password_expired"] is False


def test_an_unexpired_console_session_may_change_its_password_too(cloud):
    client, _ = console_login(cloud, OWNER, STRONG)
    page = client.get("/console/password?lang=en").get_data(as_text=True)
    assert "Change password" in page and "has expired" not in page
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    done = client.post(
        "/console/password",
        data={"csrf": csrf, "current_password": STRONG, "new_password": NEW,
              "confirm_password": NEW},
    )  # fmt: skip
    assert done.status_code == 302
    assert client.get("/console/").status_code == 200
    assert cloud.login(OWNER, NEW).status_code == 200


def test_owners_made_by_provisioning_rotate_their_password_like_everyone(cloud):
    provisioning.create_tenant(
        cloud.engine, "north", "North", admin_email="boss@north.test", admin_password=STRONG
    )
    with cloud.engine.connect() as conn:
        changed = conn.execute(
            sa.select(users.c.password_changed_at).where(users.c.email == "boss@north.test")
        ).scalar_one()
    assert changed is not None
    session = cloud.login("boss@north.test").get_json()
    assert session["password_expired"] is False
    token = session["token"]
    policy = cloud.call("PUT", "/api/v1/security-policy", token, json={"rotation_days": 30})
    assert policy.status_code == 200
    expire_password(cloud, "boss@north.test")
    expired = cloud.login("boss@north.test").get_json()
    assert expired["password_expired"] is True
    blocked = cloud.call("GET", "/api/v1/users", expired["token"])
    assert blocked.get_json()["error"]["code"] == "password_expired"


def test_a_provisioning_token_is_an_api_key_not_a_console_session(cloud):
    created = provisioning.create_tenant(cloud.engine, "south", "South")
    me = cloud.call("GET", "/api/v1/auth/me", created.token).get_json()
    assert (me["kind"], me["role"]) == ("api_key", "admin")
    client = cloud.app.test_client()
    client.set_cookie("cy_session", created.token)
    assert client.get("/console/").headers["Location"].startswith("/console/login")
