"""`cangyun cloud staff add`: a platform staff account that signs in with the normal login and
may confirm payments; a tenant's email is refused, adding again changes nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cangyun.cli import main
from cangyun.settings import dump_settings
from tests.support.cloud import STRONG


def staff_add(cloud, tmp_path, *args: str):
    config = tmp_path / "cloud.toml"
    config.write_text(dump_settings(cloud.settings), encoding="utf-8")
    return CliRunner().invoke(main, ["cloud", "staff", "add", "--config", str(config), *args])


def test_staff_add_prints_a_generated_password_that_signs_in(cloud, tmp_path):
    made = staff_add(cloud, tmp_path, "--email", "Ops@Cangyun.cn")
    assert made.exit_code == 0, made.output
    shown = json.loads(made.output)
    assert shown["email"] == "ops@cangyun.cn" and len(shown["password"]) >= 12
    login = cloud.login("ops@cangyun.cn", shown["password"])
    assert login.status_code == 200 and login.get_json()["role"] == "platform_staff"
    token = login.get_json()["token"]
    assert cloud.call("GET", "/api/v1/platform/orders", token).status_code == 200

    again = staff_add(cloud, tmp_path, "--email", "ops@cangyun.cn", "--password", STRONG)
    assert again.exit_code == 0 and "password" not in json.loads(again.output)
    assert cloud.login("ops@cangyun.cn", STRONG).status_code == 401  # unchanged


def test_staff_add_with_a_password_and_its_refusals(cloud, tmp_path):
    given = staff_add(cloud, tmp_path, "--email", "finance@cangyun.cn", "--password", STRONG)
    assert given.exit_code == 0 and "password" not in json.loads(given.output)
    assert cloud.login("finance@cangyun.cn", STRONG).status_code == 200
    weak = staff_add(cloud, tmp_path, "--email", "weak@cangyun.cn", "--password", "short")
    assert weak.exit_code == 2 and "at least 10 characters" in weak.output
    cloud.register("Acme", "owner@acme.cn")
    taken = staff_add(cloud, tmp_path, "--email", "owner@acme.cn")
    assert taken.exit_code == 1 and "is a user of tenant" in taken.output
    assert cloud.login("owner@acme.cn").get_json()["role"] == "owner"
