"""The cloud's side of offline licences, on real databases: what a box is granted, when it
gets a licence (hello, daily sweep, right after a payment), and that the token it gets is one
the edge verifies with the public key provisioning gave it."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from cangyun import licence as tokens
from cangyun import wire
from cangyun.timeutil import format_ts, utcnow
from cloud_api.billing import licensing, signing
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.schema import licences, packages
from tests.support.cloud import make_cloud

EPOCH = "e" * 32


@pytest.fixture
def site(database_url, tmp_path):
    cloud = make_cloud(tmp_path, database_url)
    owner = cloud.register("冷链仓储", "owner@lic.test")
    token = owner["token"]
    for path, body in [
        ("/api/v1/warehouses", {"code": "sh-01", "name": "嘉定一号库"}),
        ("/api/v1/devices", {"warehouse": "sh-01", "code": "sh-edge-1", "kind": "edge"}),
    ]:
        response = cloud.call("POST", path, token, json=body)
        assert response.status_code == 201, response.get_json()
        if path.endswith("devices"):
            edge_settings = tomllib.loads(response.get_json()["edge_settings"])
    key = signing.load_or_create(cloud.settings.signing_key_file)
    yield Site(
        cloud, token, owner["tenant"], IngestService(cloud.engine, licence_key=key), edge_settings
    )
    cloud.engine.dispose()


class Site:
    def __init__(self, cloud, token, tenant, service, edge_settings) -> None:
        self.cloud = cloud
        self.token = token
        self.tenant = tenant
        self.service = service
        self.edge_settings = edge_settings
        self.address = wire.DeviceAddress(tenant, "sh-01", "sh-edge-1")

    def hello(self, now=None) -> list:
        payload = wire.encode_hello(wire.Hello("sh-edge-1", EPOCH, 0, 0, format_ts(utcnow())))
        return self.service.handle(self.address.topic(wire.UP_HELLO), payload)

    def licence_of(self, replies) -> tokens.Licence | None:
        commands = [r for r in replies if r.topic == self.address.topic(wire.DOWN_CMD)]
        if not commands:
            return None
        (command,) = commands
        message = orjson.loads(command.payload)
        assert message["kind"] == "licence"
        return self.verify(message["data"]["token"])

    def verify(self, token: str, now=None) -> tokens.Licence:
        """As the box does: with the public key written into its settings at registration."""
        public_key = self.edge_settings["cloud"]["public_key"]
        return tokens.verify(token, public_key, now=now or utcnow(), device=self.address)

    def issued(self) -> int:
        with self.cloud.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(licences)).scalar_one()


def test_a_tenant_that_never_bought_gets_no_licence(site):
    replies = site.hello()
    assert [r.topic for r in replies] == [site.address.topic(wire.DOWN_ACK)]
    assert licensing.boxes_due(site.cloud.engine, utcnow()) == []
    assert site.issued() == 0


def test_hello_hands_the_box_a_licence_of_what_was_bought(site):
    site.cloud.buy(site.token, "professional", add_ons=("ocr_scanning",))
    granted = site.licence_of(site.hello())
    assert granted is not None
    assert (granted.tenant, granted.warehouse, granted.device) == (
        site.tenant,
        "sh-01",
        "sh-edge-1",
    )
    assert granted.edition == "professional" and granted.add_ons == ("ocr_scanning",)
    assert "task_management" in granted.features and granted.inbound_allowed
    lease = granted.valid_until - granted.issued_at
    assert lease == licensing.Terms().lease and granted.grace_days == licensing.Terms().grace_days

    # A box reconnecting is sent the same licence, not a new one each time.
    again = site.licence_of(site.hello())
    assert again is not None and again.serial == granted.serial and site.issued() == 1

    shown = site.cloud.call("GET", "/api/v1/licence", site.token).get_json()["devices"]
    assert [(d["device"], d["serial"], d["inbound_allowed"]) for d in shown] == [
        ("sh-edge-1", granted.serial, True)
    ]


def test_a_payment_makes_the_box_due_and_the_sweep_sends_it_once(site):
    site.cloud.buy(site.token, "basic", add_ons=())
    first = site.licence_of(site.hello())
    assert first is not None and first.add_ons == ()
    assert site.service.licence_sweep() == []  # fresh, nothing paid since

    site.cloud.buy(site.token, "professional", add_ons=("ocr_scanning",))  # the upgrade
    (reply,) = site.service.licence_sweep()
    assert reply.topic == site.address.topic(wire.DOWN_CMD)
    upgraded = site.verify(orjson.loads(reply.payload)["data"]["token"])
    assert upgraded.serial != first.serial and upgraded.edition == "professional"
    assert upgraded.add_ons == ("ocr_scanning",)
    assert site.service.licence_sweep() == []

    # A day later every box gets a fresh lease, whether or not it said hello.
    tomorrow = utcnow() + licensing.RENEW_AFTER + timedelta(minutes=1)
    (renewal,) = site.service.licence_sweep(tomorrow)
    renewed = site.verify(orjson.loads(renewal.payload)["data"]["token"], tomorrow)
    assert renewed.serial != upgraded.serial and renewed.valid_until > upgraded.valid_until


def test_a_used_up_quota_is_granted_without_receipts(site):
    site.cloud.buy(site.token, "professional", add_ons=())
    with site.cloud.engine.begin() as conn:
        conn.execute(packages.update().values(consumed=packages.c.total))
    later = utcnow() + licensing.RENEW_AFTER + timedelta(minutes=1)
    (reply,) = site.service.licence_sweep(later)
    token = orjson.loads(reply.payload)["data"]["token"]
    granted = tokens.decode(token, site.edge_settings["cloud"]["public_key"], device=site.address)
    assert granted.edition == "professional" and not granted.inbound_allowed


def test_a_revoked_box_is_never_due(site):
    site.cloud.buy(site.token, "basic", add_ons=())
    assert site.cloud.call("DELETE", "/api/v1/devices/sh-edge-1", site.token).status_code in (
        200,
        204,
    )
    assert licensing.boxes_due(site.cloud.engine, utcnow()) == []


def test_a_year_package_licence_ends_with_the_period(site):
    site.cloud.buy(
        site.token, "traceability", billing_mode="period", add_ons=(), business_area_m2=80
    )
    held = site.cloud.call("GET", "/api/v1/licence", site.token).get_json()
    period_end = datetime.fromisoformat(held["period_ends_at"])
    (box,) = licensing.boxes_due(site.cloud.engine, utcnow())
    mid_year = licensing.grant(box, site.cloud.engine, utcnow())
    assert (
        mid_year is not None
        and mid_year.valid_until - mid_year.issued_at == licensing.Terms().lease
    )
    near_end = licensing.grant(box, site.cloud.engine, period_end - timedelta(days=5))
    assert near_end is not None and near_end.valid_until == period_end
