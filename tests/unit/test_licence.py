"""The offline licence token (cangyun.licence): signing, tampering, clocks, grace."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given
from hypothesis import strategies as st

from cangyun import licence as lic
from cangyun.licence import Licence, LicenceError
from cangyun.wire import DeviceAddress

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = lic.public_key_b64(KEY)
ISSUED = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
LICENCE = Licence(
    serial="LIC-2026-000017",
    tenant="acme",
    warehouse="sh-01",
    device="sh-01-edge1",
    edition="professional",
    features=("inbound", "outbound", "task_management"),
    add_ons=("ocr_scanning",),
    inbound_allowed=True,
    valid_until=ISSUED + timedelta(days=30),
    issued_at=ISSUED,
    grace_days=7,
)
TOKEN = lic.issue(LICENCE, KEY)
NOW = ISSUED + timedelta(hours=1)


def code_of(token: object, **kwargs) -> str:
    with pytest.raises(LicenceError) as info:
        lic.verify(token, PUBLIC, now=kwargs.pop("now", NOW), **kwargs)
    return info.value.code


def parts(token: str) -> tuple[str, str, str]:
    head, payload, signature = token.split(".")
    return head, payload, signature


def resign(payload: dict, key: Ed25519PrivateKey = KEY, version: str = "cylic1") -> str:
    """A token over an arbitrary payload, signed the way issue() signs."""
    body = base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")
    signature = key.sign(lic.SIGNING_CONTEXT + body.encode())
    return f"{version}.{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def test_round_trip_gives_back_the_same_licence():
    assert TOKEN.startswith("cylic1.") and TOKEN.count(".") == 2
    assert lic.verify(TOKEN, PUBLIC, now=NOW) == LICENCE
    # The key may also be passed loaded, and the device binding holds for the right box.
    device = DeviceAddress("acme", "sh-01", "sh-01-edge1")
    assert lic.verify(TOKEN, lic.load_public_key(PUBLIC), now=NOW, device=device) == LICENCE


def test_a_licence_without_edition_or_add_ons_round_trips():
    bare = replace(LICENCE, edition=None, features=(), add_ons=(), inbound_allowed=False)
    assert lic.verify(lic.issue(bare, KEY), PUBLIC, now=NOW) == bare


def test_the_cloud_cannot_sign_a_licence_the_edge_would_refuse():
    with pytest.raises(LicenceError) as info:
        lic.issue(replace(LICENCE, warehouse="sh/01"), KEY)
    assert info.value.code == "bad_format"


def test_the_payload_is_plain_json_a_support_engineer_can_read():
    payload = orjson.loads(base64.urlsafe_b64decode(parts(TOKEN)[1] + "=="))
    assert payload["valid_until"] == "2026-12-26T01:00:00.000+00:00"
    assert payload["add_ons"] == ["ocr_scanning"] and payload["grace_days"] == 7


def _alter(token: str, index: int, char: str) -> str:
    return token[:index] + char + token[index + 1 :]


@given(data=st.data())
def test_every_single_character_change_of_payload_or_signature_is_a_bad_signature(data):
    head, payload, signature = parts(TOKEN)
    start = len(head) + 1  # first character after "cylic1."
    index = data.draw(st.integers(start, len(TOKEN) - 1).filter(lambda i: TOKEN[i] != "."))
    char = data.draw(st.characters(codec="utf-8"))
    assume(char != TOKEN[index])
    assert code_of(_alter(TOKEN, index, char)) == "bad_signature"


def test_every_change_of_the_last_signature_character_is_caught():
    """base64 leaves spare bits in the last character; they must not be a free edit."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for char in alphabet.replace(TOKEN[-1], ""):
        assert code_of(TOKEN[:-1] + char) == "bad_signature", char


@given(index=st.integers(0, 6), char=st.characters(codec="utf-8"))
def test_changing_the_version_or_separator_is_refused_too(index, char):
    assume(char != TOKEN[index])
    assert code_of(_alter(TOKEN, index, char)) in {
        "bad_format",
        "unsupported_version",
        "bad_signature",
    }


def test_swapping_payloads_between_two_genuine_tokens_is_a_bad_signature():
    other = lic.issue(replace(LICENCE, add_ons=()), KEY)
    head, payload, _ = parts(TOKEN)
    assert code_of(f"{head}.{payload}.{parts(other)[2]}") == "bad_signature"


def test_a_token_signed_by_another_key_is_a_bad_signature():
    forged = lic.issue(LICENCE, Ed25519PrivateKey.generate())
    assert code_of(forged) == "bad_signature"


def test_the_signature_is_domain_separated():
    """A signature over the bare payload (no "cangyun-licence/v1." prefix) is worthless."""
    head, payload, _ = parts(TOKEN)
    bare = base64.urlsafe_b64encode(KEY.sign(payload.encode())).decode().rstrip("=")
    assert code_of(f"{head}.{payload}.{bare}") == "bad_signature"


def test_another_box_cannot_use_this_boxs_licence():
    with pytest.raises(LicenceError) as info:
        lic.verify(TOKEN, PUBLIC, now=NOW, device=DeviceAddress("acme", "sh-01", "sh-01-edge2"))
    assert info.value.code == "wrong_device"


def test_issued_more_than_five_minutes_ahead_of_the_clock_is_issued_in_future():
    assert lic.verify(TOKEN, PUBLIC, now=ISSUED - timedelta(minutes=5)) == LICENCE
    assert code_of(TOKEN, now=ISSUED - timedelta(minutes=5, seconds=1)) == "issued_in_future"


def test_clock_rollback_against_a_last_seen_a_day_ahead():
    assert code_of(TOKEN, last_seen=NOW + timedelta(days=1)) == "clock_rollback"


def test_clock_rollback_tolerates_an_hour_and_forward_jumps():
    assert lic.verify(TOKEN, PUBLIC, now=NOW, last_seen=NOW + timedelta(hours=1)) == LICENCE
    assert code_of(TOKEN, last_seen=NOW + timedelta(hours=1, seconds=1)) == "clock_rollback"
    assert lic.verify(TOKEN, PUBLIC, now=NOW, last_seen=NOW - timedelta(days=300)) == LICENCE
    tight = lic.verify(
        TOKEN,
        PUBLIC,
        now=NOW,
        last_seen=NOW + timedelta(minutes=10),
        rollback_tolerance=timedelta(minutes=15),
    )
    assert tight == LICENCE


def test_status_boundaries_valid_grace_expired():
    until, grace_end = LICENCE.valid_until, LICENCE.valid_until + timedelta(days=7)
    assert LICENCE.grace_until == grace_end
    tick = timedelta(microseconds=1)
    assert lic.status(LICENCE, ISSUED) == "valid"
    assert lic.status(LICENCE, until) == "valid"
    assert lic.status(LICENCE, until + tick) == "grace"
    assert lic.status(LICENCE, grace_end) == "grace"
    assert lic.status(LICENCE, grace_end + tick) == "expired"
    no_grace = replace(LICENCE, grace_days=0)
    assert lic.status(no_grace, until + tick) == "expired"


def test_whole_days_until():
    assert lic.whole_days_until(NOW + timedelta(days=2, hours=23), NOW) == 2
    assert lic.whole_days_until(NOW - timedelta(days=1), NOW) == 0


def test_an_unknown_token_version_is_unsupported_even_if_well_signed():
    assert code_of(resign(LICENCE.to_payload(), version="cylic2")) == "unsupported_version"
    head, payload, signature = parts(TOKEN)
    assert code_of(f"cylic9.{payload}.{signature}") == "unsupported_version"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"serial": ""}, "empty serial"),
        ({"tenant": "a/b"}, "tenant with a topic separator"),
        ({"device": None}, "missing device"),
        ({"edition": 5}, "edition not a code"),
        ({"features": "inbound"}, "features not a list"),
        ({"add_ons": ["ocr scanning"]}, "add-on not a code"),
        ({"inbound_allowed": "yes"}, "inbound_allowed not a bool"),
        ({"grace_days": -1}, "negative grace"),
        ({"grace_days": True}, "bool grace"),
        ({"valid_until": "tomorrow"}, "timestamp not RFC 3339"),
        ({"issued_at": "2026-11-26T01:00:00"}, "timestamp without offset"),
    ],
)
def test_a_well_signed_but_malformed_payload_is_bad_format(change, why):
    assert code_of(resign(LICENCE.to_payload() | change)) == "bad_format", why


def test_a_well_signed_payload_that_is_not_a_json_object_is_bad_format():
    assert code_of(resign([1, 2])) == "bad_format"  # type: ignore[arg-type]


def test_unknown_payload_keys_are_ignored_so_v1_can_grow():
    token = resign(LICENCE.to_payload() | {"max_pdas": 20})
    assert lic.verify(token, PUBLIC, now=NOW) == LICENCE


@pytest.mark.parametrize(
    "token",
    ["", "cylic1", "cylic1.", "cylic1..", "cylic1.abc", "x.y.z", "cylic1.a.b.c", None, 42,
     b"cylic1.a.b", "cylic1." + "A" * 20_000],
)  # fmt: skip
def test_garbage_tokens_raise_licence_error(token):
    assert code_of(token) in {"bad_format", "bad_signature"}


@given(st.text(max_size=300))
def test_any_text_raises_only_licence_error(text):
    with pytest.raises(LicenceError):
        lic.verify(text, PUBLIC, now=NOW)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
def test_any_base64url_looking_text_after_the_prefix_raises_only_licence_error(text):
    with pytest.raises(LicenceError):
        lic.verify("cylic1." + text, PUBLIC, now=NOW)


@pytest.mark.parametrize("key", ["", "   ", "not base64!", base64.b64encode(b"short").decode()])
def test_a_missing_or_broken_public_key_says_so(key):
    with pytest.raises(LicenceError) as info:
        lic.verify(TOKEN, key, now=NOW)
    assert info.value.code == "bad_public_key"
    assert "public_key" in info.value.message
