import random

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
