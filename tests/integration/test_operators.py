"""PDA operators on a real edge SQLite file: accounts, hashing, lockout, sessions, the CLI,
and the edge API with a session cookie (CSRF header, operator on the movement, undo)."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from cangyun.cli import main
from cangyun.settings import dump_settings
from edge.api import SESSION_COOKIE
from edge.operators import (
    AccountDisabled,
    AccountLocked,
    InvalidOperator,
    LockoutPolicy,
    LoginFailed,
    OperatorExists,
    OperatorStore,
    ensure_operator,
)

PDA = {"X-Requested-With": "cangyun-pda"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def operators(edge_settings, clock):
    store = OperatorStore(
        edge_settings.database_path, session_s=3600, policy=LockoutPolicy(5, 900), clock=clock
    )
    yield store
    store.close()


def test_passwords_are_stored_as_argon2id_hashes_only(operators, edge_settings):
    operators.add("Zhang.San", "pw-Secret-1", "张三")
    with sqlite3.connect(edge_settings.database_path) as conn:
        username, stored = conn.execute("SELECT username, password_hash FROM operators").fetchone()
    assert username == "zhang.san"  # usernames are case-insensitive
    assert stored.startswith("$argon2id$") and "pw-Secret-1" not in stored
    assert operators.login("ZHANG.SAN", "pw-Secret-1").operator.name == "张三"


@pytest.mark.parametrize(
    ("username", "password", "name", "code"),
    [
        ("", "pw-Secret-1", "A", "invalid_username"),
        ("has space", "pw-Secret-1", "A", "invalid_username"),
        ("x" * 33, "pw-Secret-1", "A", "invalid_username"),
        ("ok", "short", "A", "weak_password"),
        ("ok", " " * 10, "A", "weak_password"),
        ("ok", "x" * 129, "A", "weak_password"),
        ("ok", "pw-Secret-1", "", "invalid_name"),
        ("ok", "pw-Secret-1", "bad\x00name", "invalid_name"),
    ],
)
def test_bad_accounts_are_refused_and_nothing_is_stored(operators, username, password, name, code):
    with pytest.raises(InvalidOperator) as refused:
        operators.add(username, password, name)
    assert refused.value.code == code
    assert operators.all() == []


def test_a_username_is_taken_once(operators):
    operators.add("op1", "pw-Secret-1", "A")
    with pytest.raises(OperatorExists):
        operators.add("OP1", "pw-Secret-2", "B")


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(operators, clock):
    operators.add("op1", "pw-Secret-1", "A")
    for _ in range(4):
        with pytest.raises(LoginFailed):
            operators.login("op1", "wrong-password")
    with pytest.raises(AccountLocked) as locked:
        operators.login("op1", "wrong-password")
    assert locked.value.details["retry_after_s"] == 900
    # Locked: even the right password is refused, and says so.
    with pytest.raises(AccountLocked):
        operators.login("op1", "pw-Secret-1")
    clock.now += 899
    with pytest.raises(AccountLocked):
        operators.login("op1", "pw-Secret-1")
    clock.now += 2
    assert operators.login("op1", "pw-Secret-1").operator.username == "op1"
    assert operators.get("op1").failed_logins == 0


def test_a_success_resets_the_failure_count(operators):
    operators.add("op1", "pw-Secret-1", "A")
    for _ in range(4):
        with pytest.raises(LoginFailed):
            operators.login("op1", "wrong-password")
    operators.login("op1", "pw-Secret-1")
    for _ in range(4):
        with pytest.raises(LoginFailed):
            operators.login("op1", "wrong-password")
    assert operators.get("op1").locked_until is None


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(operators):
    with pytest.raises(LoginFailed) as unknown:
        operators.login("nobody", "pw-Secret-1")
    assert (unknown.value.code, unknown.value.message) == (
        "invalid_credentials",
        "wrong username or password",
    )


def test_sessions_expire_and_end_on_logout_password_change_and_disable(operators, clock):
    operators.add("op1", "pw-Secret-1", "A")
    session = operators.login("op1", "pw-Secret-1")
    assert operators.session(session.token)[0].username == "op1"
    clock.now += 3599
    assert operators.session(session.token) is not None
    clock.now += 1
    assert operators.session(session.token) is None  # expired

    session = operators.login("op1", "pw-Secret-1")
    operators.logout(session.token)
    assert operators.session(session.token) is None

    session = operators.login("op1", "pw-Secret-1")
    operators.set_password("op1", "pw-Secret-2")
    assert operators.session(session.token) is None

    session = operators.login("op1", "pw-Secret-2")
    operators.set_enabled("op1", False)
    assert operators.session(session.token) is None
    with pytest.raises(AccountDisabled):
        operators.login("op1", "pw-Secret-2")
    operators.set_enabled("op1", True)
    assert operators.login("op1", "pw-Secret-2")


def test_the_database_holds_no_usable_session_token(operators, edge_settings):
    operators.add("op1", "pw-Secret-1", "A")
    session = operators.login("op1", "pw-Secret-1")
    with sqlite3.connect(edge_settings.database_path) as conn:
        [(stored,)] = conn.execute("SELECT token_hash FROM operator_sessions").fetchall()
    assert stored != session.token and operators.session(stored) is None


def test_ensure_operator_creates_then_converges(edge_settings):
    first = ensure_operator(edge_settings, "op1", "pw-Secret-1", "张三")
    assert (first.username, first.name, first.enabled) == ("op1", "张三", True)
    store = OperatorStore(edge_settings.database_path)
    session = store.login("op1", "pw-Secret-1")
    # Same arguments again: nothing changes, the session survives.
    assert ensure_operator(edge_settings.database_path, "op1", "pw-Secret-1", "张三") == first
    assert store.session(session.token) is not None
    store.set_enabled("op1", False)
    again = ensure_operator(edge_settings, "op1", "pw-Secret-9", "李四")
    assert (again.name, again.enabled) == ("李四", True)
    assert store.login("op1", "pw-Secret-9")
    store.close()


# --- the CLI -------------------------------------------------------------------------


def test_cli_adds_lists_changes_and_disables_operators(edge_settings, tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text(dump_settings(edge_settings))
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None):
        return runner.invoke(main, ["edge", "operator", *args], input=stdin)

    added = run("add", "--config", str(config), "op1", "--name", "张三", stdin="pw-Secret-1\n" * 2)
    assert added.exit_code == 0, added.output
    assert "added operator op1" in added.output
    duplicate = run("add", "--config", str(config), "op1", "--name", "X", "--password", "pw-xxxxx1")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    weak = run("add", "--config", str(config), "op2", "--name", "X", "--password", "short")
    assert weak.exit_code == 1 and "8 to 128 characters" in weak.output
    listed = run("list", "--config", str(config))
    assert "op1" in listed.output and "active" in listed.output and "张三" in listed.output
    assert run("passwd", "--config", str(config), "op1", "--password", "pw-Secret-2").exit_code == 0
    assert run("disable", "--config", str(config), "op1").exit_code == 0
    assert "disabled" in run("list", "--config", str(config)).output
    missing = run("disable", "--config", str(config), "ghost")
    assert missing.exit_code == 1 and "no operator" in missing.output
    store = OperatorStore(edge_settings.database_path)
    with pytest.raises(AccountDisabled):
        store.login("op1", "pw-Secret-2")
    assert run("enable", "--config", str(config), "op1").exit_code == 0
    assert store.login("op1", "pw-Secret-2").operator.name == "张三"
    store.close()


@pytest.mark.parametrize("command", ["add", "list", "passwd", "disable", "enable"])
def test_every_operator_command_has_help_with_an_example(command):
    result = CliRunner().invoke(main, ["edge", "operator", command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_cli_reports_a_bad_settings_file(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text("[edge]\nno_such_key = 1\n")
    result = CliRunner().invoke(main, ["edge", "operator", "list", "--config", str(config)])
    assert result.exit_code == 2 and "unknown setting" in result.output


# --- the edge API with a session cookie ------------------------------------------------


@pytest.fixture
def client(edge_settings, make_edge_app):
    """A PDA's client: no device token, a session cookie once logged in."""
    ensure_operator(edge_settings, "op1", "pw-Secret-1", "张三")
    ensure_operator(edge_settings, "op2", "pw-Secret-2", "李四")
    with make_edge_app().test_client() as client:
        yield client


def login(client, username="op1", password="pw-Secret-1"):
    return client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, headers=PDA
    )


def test_login_sets_an_httponly_strict_cookie(client):
    response = login(client)
    assert response.status_code == 200
    assert response.get_json()["operator"] == {"username": "op1", "name": "张三"}
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie
    assert client.get("/api/v1/auth/session").get_json()["operator"]["username"] == "op1"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "op1", "password": "wrong-pass"}, 401, "invalid_credentials"),
        ({"username": "ghost", "password": "pw-Secret-1"}, 401, "invalid_credentials"),
        ({"username": "op1"}, 422, "missing_credentials"),
        ({"username": 5, "password": []}, 422, "missing_credentials"),
        ([1, 2], 422, "missing_credentials"),
    ],
)
def test_bad_logins_get_a_clear_error_and_no_cookie(client, body, status, code):
    response = client.post("/api/v1/auth/login", json=body, headers=PDA)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    assert "Set-Cookie" not in response.headers


def test_a_locked_account_answers_423_with_retry_after(client):
    for _ in range(5):
        response = login(client, password="wrong-pass")
    assert response.status_code == 423
    assert response.get_json()["error"]["code"] == "account_locked"
    assert int(response.headers["Retry-After"]) == 900
    assert login(client).status_code == 423


def test_login_without_the_pda_header_is_refused(client):
    response = client.post("/api/v1/auth/login", json={"username": "op1", "password": "x"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "csrf_header_missing"


def test_cookie_writes_need_the_header_and_record_the_operator(client, edge_settings):
    login(client)
    receipt = {"type": "receive", "gtin": "06901234567892", "qty": 4, "lot": "L1"}
    refused = client.post("/api/v1/movements", json=receipt)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "csrf_header_missing"
    assert client.get("/api/v1/movements").get_json()["total"] == 0  # reads need no header
    recorded = client.post("/api/v1/movements", json=receipt, headers=PDA)
    assert recorded.status_code == 201 and recorded.get_json()["operator"] == "op1"
    with sqlite3.connect(edge_settings.database_path) as conn:
        [(item,)] = conn.execute("SELECT item FROM outbox").fetchall()
    assert b'"operator":"op1"' in item
    # Clients cannot claim another operator.
    spoofed = client.post("/api/v1/movements", json=receipt | {"operator": "op2"}, headers=PDA)
    assert spoofed.status_code == 422


def test_an_expired_or_logged_out_session_is_401_session_expired(client, edge_settings):
    login(client)
    with sqlite3.connect(edge_settings.database_path) as conn:
        conn.execute("UPDATE operator_sessions SET expires_at = 0")
    response = client.get("/api/v1/stock")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "session_expired"
    login(client)
    assert client.post("/api/v1/auth/logout", headers=PDA).status_code == 204
    assert client.get("/api/v1/stock").get_json()["error"]["code"] in (
        "session_expired",
        "unauthorized",
    )


def test_the_device_token_still_works_and_wins_over_a_cookie(client, edge_settings):
    login(client)
    response = client.post(
        "/api/v1/movements",
        json={"type": "receive", "sku": "A", "qty": 1},
        headers={"Authorization": f"Bearer {edge_settings.edge.api_token}"},
    )
    assert response.status_code == 201 and response.get_json()["operator"] is None


def test_undo_compensates_once_and_only_for_the_same_operator(client):
    login(client)
    receipt = {"type": "receive", "gtin": "06901234567892", "qty": 4, "lot": "L9", "weight_kg": 8}
    movement = client.post("/api/v1/movements", json=receipt, headers=PDA).get_json()
    login(client, "op2", "pw-Secret-2")
    other = client.post(f"/api/v1/movements/{movement['id']}/undo", headers=PDA)
    assert (other.status_code, other.get_json()["error"]["code"]) == (403, "not_your_movement")
    login(client)
    first = client.post(f"/api/v1/movements/{movement['id']}/undo", headers=PDA)
    again = client.post(f"/api/v1/movements/{movement['id']}/undo", headers=PDA)
    assert (first.status_code, again.status_code) == (201, 200)
    [reversal] = first.get_json()["items"]
    assert again.get_json()["items"] == [reversal]
    assert (reversal["type"], reversal["qty"], reversal["weight_kg"]) == ("adjust", -4, -8.0)
    assert (reversal["reverses"], reversal["operator"]) == (movement["id"], "op1")
    assert client.get("/api/v1/stock?lot=L9").get_json()["items"] == []
    assert client.get("/api/v1/movements").get_json()["total"] == 2  # nothing deleted
    undo_of_undo = client.post(f"/api/v1/movements/{reversal['id']}/undo", headers=PDA)
    assert (undo_of_undo.status_code, undo_of_undo.get_json()["error"]["code"]) == (
        409,
        "cannot_undo",
    )
    assert undo_of_undo.get_json()["error"]["details"] == {"reason": "is_undo"}
    missing = client.post("/api/v1/movements/nope/undo", headers=PDA)
    assert missing.status_code == 404


def test_undo_after_the_goods_moved_on_is_refused_and_changes_nothing(client):
    login(client)
    receipt = {"type": "receive", "gtin": "06901234567892", "qty": 4, "lot": "L7"}
    movement = client.post("/api/v1/movements", json=receipt, headers=PDA).get_json()
    ship = {"type": "ship", "gtin": "06901234567892", "qty": 4, "lot": "L7"}
    assert client.post("/api/v1/movements", json=ship, headers=PDA).status_code == 201
    refused = client.post(f"/api/v1/movements/{movement['id']}/undo", headers=PDA)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (
        409,
        "insufficient_stock",
    )
    assert refused.get_json()["error"]["details"] == {
        "available": 0,
        "requested": 4,
        "location": "",  # the dock, where the receipt put them
    }
    assert client.get("/api/v1/movements").get_json()["total"] == 2


def test_a_bare_gs1_string_from_a_scanner_without_aim_prefix_is_read(client):
    login(client)
    body = client.post(
        "/api/v1/scans", json={"code": "010690123456789210LOT-A"}, headers=PDA
    ).get_json()
    assert body["fields"] == {"gtin": "06901234567892", "lot": "LOT-A"}
    text = client.post("/api/v1/scans", json={"code": "A-01-01"}, headers=PDA).get_json()
    assert text["code"]["kind"] == "text"


def test_customers_lists_recent_cargo_owners(client):
    login(client)
    for owner in ("ACME", "BETA", "ACME"):
        client.post(
            "/api/v1/movements",
            json={"type": "receive", "sku": "S", "qty": 1, "customer": owner},
            headers=PDA,
        )
    assert [c["customer"] for c in client.get("/api/v1/customers").get_json()["items"]] == [
        "ACME",
        "BETA",
    ]


def test_the_pda_page_and_its_assets_are_served(client):
    assert client.get("/").headers["Location"].endswith("/pda/")
    page = client.get("/pda/")
    html = page.get_data(as_text=True)
    assert (
        page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    )
    contract = "login-user login-password login-submit menu-receive scan-input camera-start"
    contract += " result-card qty-input confirm sync-status"
    for testid in contract.split():
        assert f'data-testid="{testid}"' in html
    for asset in ("pda.css", "app.js", "i18n.js"):
        assert client.get(f"/pda/static/pda/{asset}").status_code == 200
