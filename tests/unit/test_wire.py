import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cangyun import wire


def test_topics_round_trip():
    address = wire.DeviceAddress("acme", "sh-01", "edge-1")
    assert wire.parse_topic(address.topic(wire.UP_TX)) == (address, "up/tx")


@pytest.mark.parametrize(
    "topic",
    [
        "cangyun/v1/a/b",
        "other/v1/a/b/c/up/tx",
        "cangyun/v1/a/b/c/up/nope",
        "cangyun/v1/a/+/c/up/tx",
        "cangyun/v1/a/b/c#/up/tx",
        "cangyun/v1/a/b/" + "x" * 70 + "/up/tx",
    ],
)
def test_bad_topics(topic):
    with pytest.raises(wire.WireError):
        wire.parse_topic(topic)


def test_batch_assembled_from_stored_items_decodes():
    items = [
        wire.encode_item(s, f"id-{s}", "receive", "2026-11-26T01:00:00.000+00:00", {"qty": s})
        for s in (3, 1, 2, 2)
    ]
    payload = wire.encode_batch("edge-1", "e" * 32, 7, items, "2026-11-26T01:00:01.000+00:00")
    batch = wire.decode_batch(payload)
    assert [i.seq for i in batch.items] == [1, 2, 3]  # ordered, repeated seq kept once
    assert (batch.device, batch.batch, batch.first_seq, batch.last_seq) == ("edge-1", 7, 1, 3)
    assert batch.items[0].body == {"qty": 1}


def test_items_without_usable_seq_are_reported_not_fatal():
    payload = orjson.dumps(
        {
            "v": 1,
            "device": "d1",
            "epoch": "e" * 32,
            "items": [{"seq": "x"}, 5, {"seq": 2, "id": "a", "body": {}}],
        }
    )
    batch = wire.decode_batch(payload)
    assert [i.seq for i in batch.items] == [2]
    assert [index for index, _ in batch.malformed] == [0, 1]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"v": 2}',
        b'{"v":1,"device":"d","epoch":"short","items":[]}',
        b'{"v":1,"device":"a/b","epoch":"eeeeeeeeee","items":[{"seq":1}]}',
        b'{"v":1,"device":"d","epoch":"eeeeeeeeee","items":[]}',
        b"{" * 100000,
    ],
)
def test_malformed_batches_raise_wire_error(payload):
    with pytest.raises(wire.WireError):
        wire.decode_batch(payload)


def test_oversized_payload_is_refused_before_parsing():
    with pytest.raises(wire.WireError) as caught:
        wire.decode_batch(b" " * (wire.MAX_PAYLOAD_BYTES + 1))
    assert caught.value.code == "too_large"


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_escape_as_anything_but_wire_error(payload):
    for decode in (
        wire.decode_batch,
        wire.decode_hello,
        wire.decode_ack,
        wire.decode_status,
        wire.decode_command,
    ):
        try:
            decode(payload)
        except wire.WireError:
            pass


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats()
        | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_escapes_as_anything_but_wire_error(value):
    payload = orjson.dumps({"v": 1, "device": "d", "epoch": "e" * 10, "items": [value]})
    try:
        wire.decode_batch(payload)
    except wire.WireError:
        pass


def test_ack_round_trip_with_rejections_and_hello_flag():
    ack = wire.Ack("e" * 32, 42, ((7, "invalid_gtin"),), hello=True)
    assert wire.decode_ack(wire.encode_ack(ack)) == ack
