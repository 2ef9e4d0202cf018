"""`cangyun cloud token create`: an API key like any other, so it expires and it is behind the
edition's secondary_development (二次开发) gate, as keys made through POST /api/v1/api-keys."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from click.testing import CliRunner

from cangyun.cli import main
from cangyun.settings import dump_settings
from cangyun.timeutil import utcnow
from cloud_api.accounts import credentials
from cloud_api.platform.schema import api_tokens


def token_create(cloud, tmp_path, *args: str):
    config = tmp_path / "cloud.toml"
    config.write_text(dump_settings(cloud.settings), encoding="utf-8")
    tenant = cloud.call("GET", "/api/v1/auth/me", cloud.tokens["owner"]).get_json()["tenant"]
    return CliRunner().invoke(
        main, ["cloud", "token", "create", "--config", str(config), "--tenant", tenant, *args]
    )


def token_row(cloud, token: str):
    with cloud.engine.connect() as conn:
        return (
            conn.execute(
                sa.select(api_tokens).where(
                    api_tokens.c.token_hash == credentials.token_hash(token)
                )
            )
            .mappings()
            .one()
        )


def test_a_cli_token_expires_and_is_then_refused(cloud, tmp_path):
    cloud.tokens["owner"] = cloud.register("Acme", "owner@acme.cn")["token"]
    cloud.buy(cloud.tokens["owner"], "standard", add_ons=())
    made = token_create(cloud, tmp_path, "--role", "viewer", "--name", "BI export")
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)["token"]
    expires_at = token_row(cloud, token)["expires_at"]
    assert expires_at is not None
    assert (
        timedelta(days=89)
        < expires_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)
        <= timedelta(days=90)
    )
    assert cloud.call("GET", "/api/v1/movements", token).status_code == 200
    short = json.loads(token_create(cloud, tmp_path, "--days", "7").output)
    assert token_row(cloud, short["token"])["expires_at"] < expires_at - timedelta(days=80)

    with cloud.engine.begin() as conn:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.token_hash == credentials.token_hash(token))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    refused = cloud.call("GET", "/api/v1/movements", token)
    assert refused.status_code == 401, refused.get_json()


def test_a_cli_token_is_behind_the_edition_gate(cloud, tmp_path):
    cloud.tokens["owner"] = cloud.register("Acme", "owner@acme.cn")["token"]
    # Nothing bought, then 基础版: no secondary_development, so no API token either.
    for edition in (None, "basic"):
        if edition:
            cloud.buy(cloud.tokens["owner"], edition, add_ons=())
        refused = token_create(cloud, tmp_path)
        assert refused.exit_code != 0
        assert "feature_not_in_edition" in refused.output, refused.output
    with cloud.engine.connect() as conn:
        names = conn.execute(sa.select(api_tokens.c.name)).scalars().all()
    assert "cli" not in names

    # 标准版 has secondary_development but not task_management: the token is refused there
    # like any key, and works where the edition reaches.
    cloud.buy(cloud.tokens["owner"], "standard", add_ons=())
    made = token_create(cloud, tmp_path)
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)["token"]
    assert cloud.call("GET", "/api/v1/webhooks", token).status_code == 200
    tasks = cloud.call("GET", "/api/v1/tasks", token)
    assert (tasks.status_code, tasks.get_json()["error"]["code"]) == (
        403,
        "feature_not_in_edition",
    )
