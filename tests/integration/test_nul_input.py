"""NUL characters, which PostgreSQL refuses in text, are turned away at the door with a clear
4xx on every app, whichever database is behind it (the fuzz test once found a 500 here)."""

from __future__ import annotations

import pytest


def error(response):
    return response.status_code, response.get_json()["error"]["code"]


def test_nul_in_a_json_body_is_422_and_changes_nothing(cloud):
    reset = cloud.call("POST", "/api/v1/auth/password-reset", json={"email": "\x00a@b.cn"})
    assert error(reset) == (422, "invalid_text")
    assert reset.get_json()["error"]["details"] == {"field": "email"}
    register = cloud.call(
        "POST",
        "/api/v1/auth/register",
        json={
            "tenant_name": "甲",
            "email": "o@a.cn",
            "password": "Strong-pass-2026",
            "phone": "1380000\x000000",
        },
    )
    assert error(register) == (422, "invalid_text")
    assert cloud.login("o@a.cn").status_code == 401  # no tenant, no user was made
    nested = cloud.call("POST", "/api/v1/auth/login", json={"email": "a@b.cn", "x": [{"\x00": 1}]})
    assert error(nested) == (422, "invalid_text")
    assert nested.get_json()["error"]["details"] == {"field": "x[0].\x00"}


def test_text_that_only_spells_a_nul_escape_is_fine(cloud):
    # The six characters \\u0000 typed by a person are text, not a NUL.
    response = cloud.call(
        "POST", "/api/v1/auth/login", json={"email": "\\u0000@b.cn", "password": "x"}
    )
    assert response.status_code in (400, 401, 422)
    assert response.get_json()["error"]["code"] != "invalid_text"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/customers/%00",
        "/api/v1/customers?q=%00",
        "/api/v1/movements?cursor=a%00",
        "/api/v1/stock?%00=1",
    ],
)
def test_nul_in_a_url_is_400(cloud, url):
    owner = cloud.register("乙仓储", "owner@b.cn")
    assert error(cloud.call("GET", url, owner["token"])) == (400, "invalid_parameter")
