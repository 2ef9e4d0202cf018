"""The MQTT wire contract, version 1: topics, envelopes and their encoding.

Edge and cloud both import this module and nothing else to talk to each other. Every decode
raises ``WireError`` (one type) on anything malformed, so a hostile payload can only ever
become a dead letter, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

WIRE_VERSION = 1
TOPIC_ROOT = "cangyun/v1"
# One batch is at most this many bytes and items; the broker's message_size_limit matches.
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_BATCH_ITEMS = 5000
MAX_ID_LENGTH = 64

# Topic suffixes below cangyun/v1/{tenant}/{warehouse}/{device}/
UP_TX = "up/tx"
UP_HELLO = "up/hello"
UP_RECON = "up/recon"
STATUS = "status"
DOWN_ACK = "down/ack"
DOWN_CMD = "down/cmd"
UPLINK_SUFFIXES = (UP_TX, UP_HELLO, UP_RECON, STATUS)

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_EPOCH = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class WireError(ValueError):
    """A message or topic that does not follow the contract. ``code`` is stable for metrics."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_valid_code(text: object) -> bool:
    """Tenant, warehouse and device codes: ASCII letters, digits, ``_.-``; 1-63 characters.

    They become MQTT topic levels, so ``+``, ``#`` and ``/`` must never appear in them.
    """
    # fullmatch: with match, "$" would also accept a trailing newline, and a code ends up in
    # the broker's password and ACL files, one entry per line.
    return isinstance(text, str) and _CODE.fullmatch(text) is not None


def is_valid_epoch(text: object) -> bool:
    return isinstance(text, str) and _EPOCH.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    tenant: str
    warehouse: str
    device: str

    def topic(self, suffix: str) -> str:
        return f"{TOPIC_ROOT}/{self.tenant}/{self.warehouse}/{self.device}/{suffix}"

    @property
    def prefix(self) -> str:
        return f"{TOPIC_ROOT}/{self.tenant}/{self.warehouse}/{self.device}"


def parse_topic(topic: str) -> tuple[DeviceAddress, str]:
    """Split ``cangyun/v1/t/w/d/up/tx`` into its device address and suffix ``up/tx``."""
    parts = topic.split("/")
    if len(parts) < 6 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise WireError("bad_topic", f"topic {topic!r} is not under {TOPIC_ROOT}/")
    tenant, warehouse, device = parts[2:5]
    suffix = "/".join(parts[5:])
    if not all(is_valid_code(p) for p in (tenant, warehouse, device)):
        raise WireError("bad_topic", f"topic {topic!r} has an invalid tenant/warehouse/device")
    if suffix not in UPLINK_SUFFIXES and suffix not in (DOWN_ACK, DOWN_CMD):
        raise WireError("bad_topic", f"unknown topic suffix {suffix!r}")
    return DeviceAddress(tenant, warehouse, device), suffix


def ingest_subscription(share_group: str | None) -> list[str]:
    """Topic filters the cloud ingest subscribes to (shared when a group is given)."""
    filters = [f"{TOPIC_ROOT}/+/+/+/up/#", f"{TOPIC_ROOT}/+/+/+/{STATUS}"]
    if share_group:
        return [f"$share/{share_group}/{f}" for f in filters]
    return filters


# --- messages ----------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen __init__ costs twice as much, one per movement
class Item:
    """One movement inside a batch; ``body`` is left raw for the receiver to validate."""

    seq: int
    id: str
    type: Any
    occurred_at: Any
    body: Any


@dataclass(frozen=True, slots=True)
class Batch:
    device: str
    epoch: str
    batch: int
    sent_at: str | None
    items: tuple[Item, ...]
    # Items too broken to key by seq: (index in the batch, reason).
    malformed: tuple[tuple[int, str], ...] = ()

    @property
    def first_seq(self) -> int:
        return self.items[0].seq

    @property
    def last_seq(self) -> int:
        return self.items[-1].seq


@dataclass(frozen=True, slots=True)
class Hello:
    device: str
    epoch: str
    last_seq: int
    acked_through: int
    sent_at: str | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    epoch: str
    acked_through: int
    # Items the cloud dead-lettered: (seq, reason code). They count as delivered.
    rejected: tuple[tuple[int, str], ...] = ()
    # True when this ack answers a hello: only then may it be lower than an earlier ack
    # (several ingest workers may otherwise deliver acks out of order).
    hello: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    state: str  # "online" | "offline"
    epoch: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A downlink command: ``kind`` selects the handler, ``data`` is its argument."""

    kind: str
    data: dict[str, Any]
    id: str | None = None


# --- encoding ----------------------------------------------------------------------------


def encode_item(seq: int, item_id: str, kind: str, occurred_at: str, body: dict[str, Any]) -> bytes:
    """One item as JSON bytes; the edge stores this in its outbox so a batch is a join."""
    return orjson.dumps(
        {"seq": seq, "id": item_id, "type": kind, "occurred_at": occurred_at, "body": body}
    )


def encode_batch(device: str, epoch: str, batch: int, items: list[bytes], sent_at: str) -> bytes:
    """Assemble a batch from already-encoded items without re-serialising them."""
    head = orjson.dumps({"v": WIRE_VERSION, "device": device, "epoch": epoch, "batch": batch})
    tail = orjson.dumps(sent_at)
    return b"".join((head[:-1], b',"sent_at":', tail, b',"items":[', b",".join(items), b"]}"))


def encode_hello(hello: Hello) -> bytes:
    return orjson.dumps(
        {
            "v": WIRE_VERSION,
            "device": hello.device,
            "epoch": hello.epoch,
            "last_seq": hello.last_seq,
            "acked_through": hello.acked_through,
            "sent_at": hello.sent_at,
        }
    )


def encode_ack(ack: Ack) -> bytes:
    message: dict[str, Any] = {
        "v": WIRE_VERSION,
        "epoch": ack.epoch,
        "acked_through": ack.acked_through,
    }
    if ack.rejected:
        message["rejected"] = [{"seq": s, "code": c} for s, c in ack.rejected]
    if ack.hello:
        message["hello"] = True
    return orjson.dumps(message)


def encode_status(status: Status) -> bytes:
    message: dict[str, Any] = {"v": WIRE_VERSION, "state": status.state}
    if status.epoch:
        message["epoch"] = status.epoch
    if status.at:
        message["at"] = status.at
    return orjson.dumps(message)


def encode_command(command: Command) -> bytes:
    message: dict[str, Any] = {"v": WIRE_VERSION, "kind": command.kind, "data": command.data}
    if command.id:
        message["id"] = command.id
    return orjson.dumps(message)


# --- decoding ----------------------------------------------------------------------------


def _load(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError("bad_json", f"payload is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise WireError("bad_envelope", "payload must be a JSON object")
    version = message.get("v")
    if version != WIRE_VERSION:
        raise WireError("bad_version", f"unsupported envelope version {version!r}")
    return message


def _seq(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**62:
        raise WireError("bad_envelope", f"{name} must be an integer >= {minimum}")
    return value


def _epoch(message: dict[str, Any]) -> str:
    epoch = message.get("epoch")
    if not is_valid_epoch(epoch):
        raise WireError("bad_envelope", "epoch must be 8-64 letters, digits or '-'")
    return epoch


def _device(message: dict[str, Any]) -> str:
    device = message.get("device")
    if not is_valid_code(device):
        raise WireError("bad_envelope", "device must be a valid device code")
    return device


def _sent_at(message: dict[str, Any]) -> str | None:
    sent_at = message.get("sent_at")
    return sent_at if isinstance(sent_at, str) and len(sent_at) <= 40 else None


def decode_batch(payload: bytes) -> Batch:
    message = _load(payload)
    device = _device(message)
    epoch = _epoch(message)
    batch_no = message.get("batch", 0)
    if isinstance(batch_no, bool) or not isinstance(batch_no, int):
        batch_no = 0
    raw_items = message.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise WireError("bad_envelope", "items must be a non-empty list")
    if len(raw_items) > MAX_BATCH_ITEMS:
        raise WireError("too_large", f"a batch holds at most {MAX_BATCH_ITEMS} items")
    items: dict[int, Item] = {}
    malformed: list[tuple[int, str]] = []
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            malformed.append((index, "item is not an object"))
            continue
        seq = raw.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**62:
            malformed.append((index, "item seq is not a positive integer"))
            continue
        item_id = raw.get("id")
        if not isinstance(item_id, str) or not 0 < len(item_id) <= MAX_ID_LENGTH:
            item_id = ""
        # A repeated seq inside one batch keeps the first occurrence; the store compares
        # bodies of repeats across batches.
        items.setdefault(
            seq, Item(seq, item_id, raw.get("type"), raw.get("occurred_at"), raw.get("body"))
        )
    ordered = tuple(items[s] for s in sorted(items))
    if not ordered:
        raise WireError("bad_envelope", "no item in the batch has a valid seq")
    return Batch(device, epoch, batch_no, _sent_at(message), ordered, tuple(malformed))


def decode_hello(payload: bytes) -> Hello:
    message = _load(payload)
    return Hello(
        device=_device(message),
        epoch=_epoch(message),
        last_seq=_seq(message.get("last_seq", 0), "last_seq", minimum=0),
        acked_through=_seq(message.get("acked_through", 0), "acked_through", minimum=0),
        sent_at=_sent_at(message),
    )


def decode_ack(payload: bytes) -> Ack:
    message = _load(payload)
    rejected: list[tuple[int, str]] = []
    for entry in message.get("rejected") or []:
        if isinstance(entry, dict):
            seq = entry.get("seq")
            code = entry.get("code")
            if isinstance(seq, int) and not isinstance(seq, bool) and isinstance(code, str):
                rejected.append((seq, code[:64]))
    return Ack(
        epoch=_epoch(message),
        acked_through=_seq(message.get("acked_through"), "acked_through", minimum=0),
        rejected=tuple(rejected),
        hello=message.get("hello") is True,
    )


def decode_status(payload: bytes) -> Status:
    message = _load(payload)
    state = message.get("state")
    if state not in ("online", "offline"):
        raise WireError("bad_envelope", "status state must be online or offline")
    epoch = message.get("epoch")
    return Status(state=state, epoch=epoch if is_valid_epoch(epoch) else None, at=_sent_at(message))


def decode_command(payload: bytes) -> Command:
    message = _load(payload)
    kind = message.get("kind")
    data = message.get("data")
    if not isinstance(kind, str) or not kind or not isinstance(data, dict):
        raise WireError("bad_envelope", "a command needs a kind and a data object")
    command_id = message.get("id")
    return Command(kind=kind, data=data, id=command_id if isinstance(command_id, str) else None)
