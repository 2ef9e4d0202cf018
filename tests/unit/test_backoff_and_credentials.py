import random

import pytest

from cangyun import retry
from cangyun.mqtt import Backoff, parse_broker_url
from cloud_api.accounts.credentials import (
    check_mosquitto_hash,
    hash_password,
    mosquitto_hash,
    token_hash,
    verify_password,
)


def test_backoff_is_full_jitter_under_a_growing_capped_ceiling():
    backoff = Backoff(0.5, 8.0, random.Random(1))
    ceilings = [0.5, 1, 2, 4, 8, 8, 8]
    delays = [backoff.next_delay() for _ in ceilings]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    # Full jitter: over many draws the delays spread across the whole window.
    samples = [Backoff(1, 1, random.Random(i)).next_delay() for i in range(500)]
    assert min(samples) < 0.1 and max(samples) > 0.9
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_retry_delay_stays_inside_the_full_jitter_window():
    rng = random.Random(7)
    for attempts in range(12):
        window = min(60.0, 0.5 * 2**attempts)
        draws = [retry.delay(attempts, 0.5, 60.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= window for d in draws), attempts
        # Full jitter, not equal jitter: the lower half of the window is drawn too.
        assert min(draws) < window / 4 and max(draws) > window * 3 / 4, attempts


def test_retry_delay_ceiling_grows_by_doubling_up_to_the_cap():
    assert [retry.ceiling(n, 10.0, 3600.0) for n in range(10)] == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        2560,
        3600,
    ]
    assert retry.ceiling(10_000, 10.0, 3600.0) == 3600.0  # no overflow for absurd counts
    assert retry.ceiling(-3, 10.0, 3600.0) == 10.0
    # The mean of the draws grows with the attempts until the cap holds it.
    means = [
        sum(retry.delay(n, 1.0, 16.0, rng=random.Random(n * 1000 + i)) for i in range(400)) / 400
        for n in range(7)
    ]
    assert means[0] < means[1] < means[2] < means[3] < means[4]
    assert means[4] == pytest.approx(means[6], rel=0.15)  # both capped at 16: mean ~8


def test_retry_delay_floor_lifts_short_draws_only():
    rng = random.Random(3)
    draws = [retry.delay(0, 30.0, 3600.0, floor=5.0, rng=rng) for _ in range(500)]
    assert all(5.0 <= d <= 30.0 for d in draws)
    assert draws.count(5.0) > 50  # about a sixth of the window is lifted to the floor
    assert any(d > 25.0 for d in draws)


def test_retry_delay_is_reproducible_with_a_seeded_rng():
    first = [retry.delay(n, 2.0, 100.0, rng=random.Random(42)) for n in range(8)]
    again = [retry.delay(n, 2.0, 100.0, rng=random.Random(42)) for n in range(8)]
    assert first == again


def test_webhook_and_notification_retries_use_the_one_full_jitter_delay():
    from cloud_api.integrations import webhooks
    from cloud_api.messaging import store as messaging

    hook = [webhooks.retry_delay(1, random.Random(i)) for i in range(300)]
    assert all(0 <= d <= webhooks.BACKOFF_BASE_S for d in hook)
    assert min(hook) < webhooks.BACKOFF_BASE_S / 4  # full jitter (was equal jitter: >= 5 s)
    assert max(webhooks.retry_delay(50, random.Random(i)) for i in range(300)) <= 3600
    sms = [messaging.retry_delay(1, random.Random(i)) for i in range(300)]
    assert all(messaging.BACKOFF_FLOOR_S <= d <= messaging.BACKOFF_BASE_S for d in sms)
    assert min(sms) == messaging.BACKOFF_FLOOR_S


def test_broker_urls():
    assert parse_broker_url("mqtts://broker.example").port == 8883
    assert parse_broker_url("mqtt://10.0.0.2:1884").url == "mqtt://10.0.0.2:1884"


def test_mosquitto_hash_verifies_only_the_right_password():
    stored = mosquitto_hash("s3cret")
    assert stored.startswith("$7$101$")
    assert check_mosquitto_hash(stored, "s3cret")
    assert not check_mosquitto_hash(stored, "s3cret!")


def test_password_hash_is_argon2_and_salted():
    first, second = hash_password("pw"), hash_password("pw")
    assert first.startswith("$argon2id$") and first != second
    assert verify_password(first, "pw") and not verify_password(first, "pW")
    assert not verify_password("garbage", "pw")


def test_token_hash_is_stable_and_distinct():
    assert token_hash("a") == token_hash("a") != token_hash("b")
