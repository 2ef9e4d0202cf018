"""Editions, packages and metering on real databases: the SQL tonne-day path against a
brute-force integration, late movements as adjustments, oldest-first consumption,
exhaustion, and the edition gates."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cangyun import wire
from cangyun.timeutil import format_ts, utcnow
from cloud_api import provisioning
from cloud_api.billing.metering import epoch_ms, integrate_stepwise, windows
from cloud_api.billing.store import TenantBilling
from cloud_api.ledger.ingest import IngestService
from cloud_api.platform.schema import packages, tenants, usage_days, usage_postings
from tests.support.cloud import body_text, make_cloud

EPOCH = "b" * 32


class Site:
    """A tenant with one warehouse and edge, fed through the real ingest path."""

    counter = 0

    def __init__(self, cloud, zone: str = "Asia/Shanghai") -> None:
        Site.counter += 1
        self.cloud = cloud
        self.code = f"t{Site.counter}"
        provisioning.create_tenant(cloud.engine, self.code, self.code, timezone=zone)
        provisioning.create_warehouse(cloud.engine, self.code, "wh", "wh")
        self.device = f"{self.code}-edge"
        provisioning.create_device(
            cloud.settings, cloud.engine, tenant=self.code, warehouse="wh", code=self.device
        )
        with cloud.engine.connect() as conn:
            self.tenant_id = conn.execute(
                sa.select(tenants.c.id).where(tenants.c.code == self.code)
            ).scalar_one()
        self.billing = TenantBilling(cloud.engine, self.tenant_id)
        self.service = IngestService(cloud.engine)
        self.seq = 0

    def file(self, movements: list[tuple[datetime, int]], *, repeat: bool = False) -> None:
        """Adjustments of signed grams at given times (any order), optionally sent twice."""
        items = []
        for moment, grams in movements:
            self.seq += 1
            items.append(
                wire.encode_item(
                    self.seq,
                    f"{self.code}-{self.seq}",
                    "adjust",
                    format_ts(moment),
                    {"sku": "S", "qty": 1 if grams >= 0 else -1, "weight_kg": grams / 1000},
                )
            )
        batches = [items[i : i + 50] for i in range(0, len(items), 50)] or []
        if repeat:
            batches = batches + batches
        random.Random(self.seq).shuffle(batches)
        topic = wire.DeviceAddress(self.code, "wh", self.device).topic(wire.UP_TX)
        for batch in batches:
            self.service.handle(
                topic, wire.encode_batch(self.device, EPOCH, 1, batch, format_ts(utcnow()))
            )

    def closed(self) -> dict:
        with self.cloud.engine.connect() as conn:
            return {
                r.day: r
                for r in conn.execute(
                    sa.select(usage_days).where(usage_days.c.tenant_id == self.tenant_id)
                )
            }


LATER = timedelta(minutes=5)  # close after the late-arrival safety margin


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(0, 6 * 86_400_000), st.integers(-500_000, 3_000_000)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York"]),
)
def test_closed_days_equal_brute_force_for_shuffled_duplicated_histories(cloud, history, zone):
    site = Site(cloud, zone)
    base = datetime(2026, 3, 26, 5, tzinfo=UTC)
    moments = [(base + timedelta(milliseconds=ms), grams) for ms, grams in history]
    site.file(moments, repeat=True)
    site.billing.close_days(utcnow() + LATER)
    closed = site.closed()
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    first = (base.astimezone(tz)).date()
    events = [(epoch_ms(m), g) for m, g in moments]
    for window in windows(tz, first, first + timedelta(days=6)):
        expected = integrate_stepwise(events, window.start_ms, window.end_ms)
        if window.day not in closed:  # before the first movement nothing is stored or owed
            assert expected == 0 and window.end_ms <= min(t for t, _ in events), window.day
            continue
        assert int(closed[window.day].gram_ms) == expected, window.day


def test_a_late_movement_into_a_closed_day_posts_an_adjustment(cloud):
    site = Site(cloud)
    day = datetime(2026, 5, 1, 0, tzinfo=UTC)  # 08:00 in Shanghai
    site.file([(day, 2_000_000)])  # 2 t from 08:00 local
    site.billing.close_days(utcnow() + LATER)
    local_day = day.date()
    first = site.closed()[local_day]
    assert first.revision == 1
    site.file([(day + timedelta(hours=4), -1_000_000)])  # arrives late: 1 t left at 12:00
    assert site.billing.close_days(utcnow() + LATER)["adjusted"] >= 1
    second = site.closed()[local_day]
    assert second.revision == 2
    with cloud.engine.connect() as conn:
        postings = conn.execute(
            sa.select(usage_postings.c.kind, usage_postings.c.amount, usage_postings.c.revision)
            .where(
                usage_postings.c.tenant_id == site.tenant_id,
                usage_postings.c.day == local_day,
                usage_postings.c.unit == "tonne_day",
            )
            .order_by(usage_postings.c.id)
        ).all()
    # The first posting stays; the adjustment is the difference (−1 t for 12 h = −0.5 t·d).
    assert [(k, r) for k, _, r in postings] == [("usage", 1), ("adjustment", 2)]
    assert Decimal(postings[0][1]) == Decimal("1.333333")  # 2 t × 16 h
    assert Decimal(postings[1][1]) == Decimal("-0.5")
    # Closing again changes nothing.
    assert site.billing.close_days(utcnow() + LATER) == {"closed": 0, "adjusted": 0}


def test_consumption_draws_on_the_oldest_package_first_and_exhaustion_stops_inbound(cloud):
    tenant = cloud.register("Acme", "owner@acme.cn")
    token = tenant["token"]
    cloud.buy(token, "basic", add_ons=())  # 100,000 t·d
    cloud.buy(token, "basic", add_ons=())  # another 100,000 t·d
    with cloud.engine.connect() as conn:
        tenant_id = conn.execute(
            sa.select(tenants.c.id).where(tenants.c.code == tenant["tenant"])
        ).scalar_one()
    provisioning.create_warehouse(cloud.engine, tenant["tenant"], "wh", "wh")
    provisioning.create_device(
        cloud.settings, cloud.engine, tenant=tenant["tenant"], warehouse="wh", code="acme-edge"
    )
    service = IngestService(cloud.engine)
    topic = wire.DeviceAddress(tenant["tenant"], "wh", "acme-edge").topic(wire.UP_TX)
    # 1,000 t stored for 150 days: 150,000 t·d.
    start = utcnow() - timedelta(days=151)
    items = [
        wire.encode_item(
            n, f"m{n}", "receive", format_ts(start), {"sku": "S", "qty": 100, "weight_kg": 100_000}
        )
        for n in range(1, 11)
    ]
    service.handle(topic, wire.encode_batch("acme-edge", EPOCH, 1, items, format_ts(utcnow())))
    billing = TenantBilling(cloud.engine, tenant_id)
    billing.close_days(utcnow() + LATER)
    first, second = sorted(billing.packages(), key=lambda p: p["id"])
    assert first["consumed"] == 100_000 and first["status"] == "exhausted"
    assert 49_000 < second["consumed"] < 51_000 and second["status"] == "active"
    licence = cloud.call("GET", "/api/v1/licence", token).get_json()
    assert licence["inbound_allowed"] is True and licence["days_left_estimate"] > 0
    # Another 200 days at 1,000 t exhaust the second package: inbound stops, the overage
    # waits and is charged to the next package bought.
    with cloud.engine.begin() as conn:
        conn.execute(
            packages.update().where(packages.c.id == second["id"]).values(consumed=packages.c.total)
        )
    held = billing.entitlement()
    assert held.inbound_allowed is False and held.edition == "basic"
    cloud.buy(token, "standard", add_ons=())
    held = billing.entitlement()
    assert held.inbound_allowed is True and held.edition == "standard"
    assert "secondary_development" in held.features


def test_order_lifecycle_and_no_refunds(cloud):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    order = cloud.call(
        "POST",
        "/api/v1/orders",
        token,
        json={
            "edition": "traceability",
            "billing_mode": "period",
            "quantity": 1,
            "business_area_m2": 80,
        },
    ).get_json()
    assert (order["total_yuan"], order["area"], order["status"]) == (
        2000,
        "le_100",
        "pending_payment",
    )
    refund = cloud.call("POST", f"/api/v1/orders/{order['id']}/refund", token)
    assert (refund.status_code, refund.get_json()["error"]["code"]) == (
        409,
        "refunds_not_supported",
    )
    paid = cloud.confirm(order, bank_reference="CMB-20261126-0001")  # staff saw it arrive
    assert paid.get_json()["status"] == "paid"
    assert (
        cloud.confirm(order, bank_reference="CMB-20261126-0001").status_code == 200
    )  # same transfer: idempotent
    assert cloud.call("POST", f"/api/v1/orders/{order['id']}/cancel", token).status_code == 409
    licence = cloud.call("GET", "/api/v1/licence", token).get_json()
    assert licence["edition"] == "traceability"
    (package,) = licence["packages"]
    assert package["unit"] == "year" and 364 <= package["remaining"] <= 366
    assert 364 <= licence["days_left_estimate"] <= 366
    # A renewal bought early extends coverage instead of overlapping it.
    renewal = cloud.buy(token, "traceability", "period", add_ons=(), business_area_m2=80)[0]
    assert renewal["status"] == "paid"
    ends = [
        p["expires_at"] for p in cloud.call("GET", "/api/v1/licence", token).get_json()["packages"]
    ]
    assert ends[1] > ends[0]
    unpaid = cloud.call(
        "POST",
        "/api/v1/orders",
        token,
        json={"edition": "basic", "billing_mode": "flow", "quantity": 1},
    ).get_json()
    cancelled = cloud.call("POST", f"/api/v1/orders/{unpaid['id']}/cancel", token).get_json()
    assert cancelled["status"] == "cancelled"
    assert cloud.confirm(unpaid, bank_reference="X-0002").status_code == 409
    actions = [e["action"] for e in cloud.call("GET", "/api/v1/audit", token).get_json()["items"]]
    assert {"order.created", "order.paid", "order.cancelled", "order.refund_refused"} <= set(
        actions
    )


@pytest.mark.parametrize(
    ("edition", "mode", "method", "path", "body", "feature"),
    [
        (
            "basic",
            "flow",
            "POST",
            "/api/v1/api-keys",
            {"name": "k", "scopes": ["stock:read"]},
            "secondary_development",
        ),
        (
            "basic",
            "flow",
            "POST",
            "/api/v1/webhooks",
            {"url": "http://127.0.0.1:9/x", "events": ["movements.created"]},
            "secondary_development",
        ),
        (
            "standard",
            "flow",
            "POST",
            "/api/v1/tasks",
            {"title": "盘点", "kind": "count"},
            "task_management",
        ),
        ("basic", "item", "GET", "/api/v1/plugins", None, "industry_plugins"),
        (
            "traceability",
            "flow",
            "POST",
            "/api/v1/orders",
            {"add_on": "ocr_scanning", "quantity": 1},
            "value_added_services",
        ),
    ],
)
def test_gated_features_answer_403_feature_not_in_edition(
    cloud, edition, mode, method, path, body, feature
):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    cloud.buy(token, edition, mode, add_ons=())
    response = cloud.call(method, path, token, json=body)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "feature_not_in_edition" and error["details"]["feature"] == feature


def test_professional_has_everything(cloud):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    cloud.buy(token, "professional", add_ons=("ocr_scanning",))
    assert (
        cloud.call(
            "POST", "/api/v1/tasks", token, json={"title": "收货 ASN-7", "kind": "receive"}
        ).status_code
        == 201
    )
    assert cloud.call("POST", "/api/v1/plugins/cold_chain/enable", token).get_json()["enabled"]
    assert (
        cloud.call(
            "POST", "/api/v1/api-keys", token, json={"name": "erp", "scopes": ["movements:read"]}
        ).status_code
        == 201
    )
    licence = cloud.call("GET", "/api/v1/licence", token).get_json()
    assert licence["add_ons"] == ["ocr_scanning"]


def test_usage_endpoint_reports_days(cloud):
    token = cloud.register("Acme", "owner@acme.cn")["token"]
    response = cloud.call("GET", "/api/v1/usage?from=2026-11-01&to=2026-11-03", token)
    body = response.get_json()
    assert [d["day"] for d in body["by_day"]][:3] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert body["timezone"] == "Asia/Shanghai"
    assert (
        cloud.call("GET", "/api/v1/usage?from=2026-11-05&to=2026-11-01", token).status_code == 400
    )


def test_scheduler_meters_and_sends_each_reminder_once_rearmed_by_renewal(
    tmp_path, database_url, smtp
):
    from cloud_api.billing import scheduler
    from cloud_api.messaging import notify

    cloud = make_cloud(tmp_path, database_url, smtp_port=smtp.port)  # its mail goes to smtp
    try:
        tenant = cloud.register("Acme", "owner@acme.cn")
        token = tenant["token"]
        cloud.buy(token, "basic", add_ons=())  # 100,000 t·d
        provisioning.create_warehouse(cloud.engine, tenant["tenant"], "wh", "wh")
        provisioning.create_device(
            cloud.settings,
            cloud.engine,
            tenant=tenant["tenant"],
            warehouse="wh",
            code="acme-edge",
        )
        topic = wire.DeviceAddress(tenant["tenant"], "wh", "acme-edge").topic(wire.UP_TX)
        start = utcnow() - timedelta(days=86)  # 1,000 t for 85 days: 85% used
        items = [
            wire.encode_item(
                n,
                f"m{n}",
                "receive",
                format_ts(start),
                {"sku": "S", "qty": 10, "weight_kg": 100_000},
            )
            for n in range(1, 11)
        ]
        IngestService(cloud.engine).handle(
            topic, wire.encode_batch("acme-edge", EPOCH, 1, items, format_ts(utcnow()))
        )
        later = utcnow() + LATER
        assert scheduler.run_once(cloud.engine, cloud.settings, later)["reminders"] == 1
        assert scheduler.run_once(cloud.engine, cloud.settings, later)["reminders"] == 0
        notify.deliver_due(cloud.engine, cloud.settings, now=later)
        (mail,) = smtp.inbox.wait_for("owner@acme.cn")
        text = body_text(mail)
        # 85-86 days of 1,000 t out of 100,000 t·d: about 14-15% left, below the 20% mark.
        assert re.search(r"剩余 1[3-6](\.\d)?%", text), text
        assert "手动续费" in text and "no auto-renewal" in text
        inbox = cloud.call("GET", "/api/v1/messages", token).get_json()
        assert inbox["total"] == 1
        # Renewal raises the remaining share above 20%: the threshold is armed again.
        cloud.buy(token, "basic", add_ons=())
        assert scheduler.run_once(cloud.engine, cloud.settings, later)["reminders"] == 0
        with cloud.engine.begin() as conn:  # burn the new package down too
            conn.execute(packages.update().values(consumed=packages.c.total * Decimal("0.9")))
        assert scheduler.run_once(cloud.engine, cloud.settings, later)["reminders"] == 1
    finally:
        cloud.engine.dispose()
