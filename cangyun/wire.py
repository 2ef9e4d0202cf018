"""The MQTT wire contract, version 1: topics, envelopes, commands and their encoding.

Edge and cloud both import this module (and the grammar it uses, ``cangyun.expected``) to
talk to each other. Every decode raises ``WireError`` (one type) on anything malformed, so a
hostile payload can only ever become a dead letter, never a crash.

``down/cmd`` carries a ``Command`` envelope whose ``kind`` is one of ``COMMAND_KINDS``; each
kind's ``data`` is a typed message here (``Resend``, ``LicencePush``, ``ExpectedUpdate``)
with its own ``encode_*``/``decode_*``. A box ignores kinds it does not know, and fields of a
message it does not know, so the cloud may add either without a new ``WIRE_VERSION``; a
change an old box would misread needs a new version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from cangyun.errors import Invalid
from cangyun.expected import ORDERED_FIELDS as ORDERED_LINE_FIELDS
from cangyun.expected import STATUSES, ExpectedLine, parse_ordered_line
from cangyun.movement import grams_to_kg

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

# Kinds of down/cmd commands (Command.kind).
CMD_RESEND = "resend"  # Resend: send the outbox again from a seq
CMD_LICENCE = "licence"  # LicencePush: install this licence token
CMD_EXPECTED = "expected"  # ExpectedUpdate: expected goods of the box's warehouse
COMMAND_KINDS = (CMD_RESEND, CMD_LICENCE, CMD_EXPECTED)
# Lines in one expected command: the cloud sends 500; more is not from the cloud.
MAX_COMMAND_LINES = 5000
MAX_CLOUD_ID = 2**62

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


# Broker ACL grants: (access, topic filter), access being "read", "write" or "readwrite".
Grant = tuple[str, str]


def device_grants(address: DeviceAddress) -> tuple[Grant, ...]:
    """What one device's broker account may use: its own uplinks and status, its downlinks."""
    return (
        ("write", address.topic("up/#")),
        ("write", address.topic(STATUS)),
        ("read", address.topic("down/#")),
    )


def ingest_grants() -> tuple[Grant, ...]:
    """What the cloud's ingest account may use: every device's uplinks, status and downlinks."""
    return (
        ("read", f"{TOPIC_ROOT}/+/+/+/up/#"),
        ("read", f"{TOPIC_ROOT}/+/+/+/{STATUS}"),
        ("write", f"{TOPIC_ROOT}/+/+/+/down/#"),
    )


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


@dataclass(frozen=True, slots=True)
class Resend:
    """``resend``: the cloud asks the box to send its outbox again from ``from_seq``."""

    from_seq: int


@dataclass(frozen=True, slots=True)
class LicencePush:
    """``licence``: a signed licence token for the box (``cangyun.licence`` checks it)."""

    token: str


@dataclass(frozen=True, slots=True)
class CloudLine:
    """An expected line as the cloud sends it down: its id there, the warehouse's change
    stamp when it last changed, its status, and the gate it is meant for (None: any gate)."""

    id: int
    version: int
    status: str
    gate: str | None
    line: ExpectedLine


@dataclass(frozen=True, slots=True)
class ExpectedUpdate:
    """``expected``: lines of ``warehouse`` that changed (``span`` None), or the part of the
    full set of its open lines whose cloud ids lie in ``span`` = (after_id, through_id or
    None for open-ended). ``version`` is the warehouse's change stamp the update brings."""

    warehouse: str
    version: int
    span: tuple[int, int | None] | None
    lines: tuple[CloudLine, ...]


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


def encode_resend(resend: Resend, command_id: str | None = None) -> bytes:
    return encode_command(Command(CMD_RESEND, {"from_seq": resend.from_seq}, command_id))


def encode_licence(push: LicencePush, command_id: str | None = None) -> bytes:
    return encode_command(Command(CMD_LICENCE, {"token": push.token}, command_id))


def encode_expected(update: ExpectedUpdate, command_id: str | None = None) -> bytes:
    data: dict[str, Any] = {
        "warehouse": update.warehouse,
        "version": update.version,
        "full": update.span is not None,
    }
    if update.span is not None:
        data["after_id"], data["through_id"] = update.span
    data["lines"] = [_cloud_line_json(cloud) for cloud in update.lines]
    return encode_command(Command(CMD_EXPECTED, data, command_id))


def _cloud_line_json(cloud: CloudLine) -> dict[str, Any]:
    line = cloud.line
    return {
        "id": cloud.id,
        "version": cloud.version,
        "status": cloud.status,
        "direction": line.direction,
        "gate": cloud.gate,
        "sscc": line.sscc,
        "gtin": line.gtin,
        "lot": line.lot,
        "qty": line.qty,
        "weight_kg": grams_to_kg(line.weight_g) if line.weight_g is not None else None,
        "customer": line.customer,
        "reference": line.reference,
    }


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


def _kind(command: Command, kind: str) -> None:
    if command.kind != kind:
        raise WireError("bad_kind", f"a {command.kind!r} command is not {kind!r}")


def decode_resend(command: Command) -> Resend:
    _kind(command, CMD_RESEND)
    return Resend(_seq(command.data.get("from_seq"), "from_seq"))


def decode_licence(command: Command) -> LicencePush:
    """The token is only checked to be text here; ``cangyun.licence`` verifies it."""
    _kind(command, CMD_LICENCE)
    token = command.data.get("token")
    if not isinstance(token, str) or not token:
        raise WireError("bad_licence", "a licence command carries its token as text")
    return LicencePush(token)


def decode_expected(command: Command, *, warehouse: str) -> ExpectedUpdate:
    """The expected goods of a command for this box's ``warehouse``. Every line is checked
    with the grammar the cloud used (``cangyun.expected``), and one bad line refuses the
    whole command, so nothing is half-applied; ``WireError.code`` is the grammar's code."""
    _kind(command, CMD_EXPECTED)
    data = command.data
    if data.get("warehouse") != warehouse:
        raise WireError("wrong_warehouse", f"lines for warehouse {data.get('warehouse')!r}")
    version = _cloud_number(data.get("version"), "version")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or len(raw_lines) > MAX_COMMAND_LINES:
        raise WireError("invalid_field", f"lines must be a list of at most {MAX_COMMAND_LINES}")
    lines = []
    for index, raw in enumerate(raw_lines):
        try:
            lines.append(decode_cloud_line(raw))
        except WireError as exc:
            raise WireError(exc.code, f"line {index}: {exc.message}") from exc
    if len({line.id for line in lines}) != len(lines):
        raise WireError("invalid_field", "a line id appears twice")
    span = None
    if data.get("full") is True:
        after = data.get("after_id")
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < MAX_CLOUD_ID:
            raise WireError("invalid_field", "after_id must be 0 or more")
        through = data.get("through_id")
        if through is not None:
            through = _cloud_number(through, "through_id")
            if through <= after:
                raise WireError("invalid_field", "through_id must follow after_id")
        span = (after, through)
        if any(
            line.status != "open" or line.id <= after or (through is not None and line.id > through)
            for line in lines
        ):
            raise WireError("invalid_field", "a full set holds open lines of its span")
    elif data.get("full") is not False:
        raise WireError("invalid_field", "full must be true or false")
    return ExpectedUpdate(warehouse, version, span, tuple(lines))


def decode_cloud_line(data: Any) -> CloudLine:
    """One line of an ``expected`` command, checked again: the downlink is input too. Fields
    this version does not know are left aside, so the cloud may add some."""
    if not isinstance(data, dict):
        raise WireError("invalid_body", "a line must be an object")
    numbers = {name: _cloud_number(data.get(name), name) for name in ("id", "version")}
    status = data.get("status")
    if status not in STATUSES:
        raise WireError("invalid_field", f"status must be one of {', '.join(STATUSES)}")
    known = ORDERED_LINE_FIELDS
    try:
        line, gate = parse_ordered_line({k: v for k, v in data.items() if k in known})
    except Invalid as exc:
        raise WireError(exc.code, exc.message) from exc
    return CloudLine(numbers["id"], numbers["version"], status, gate, line)


def _cloud_number(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_CLOUD_ID:
        raise WireError("invalid_field", f"{name} must be a positive integer")
    return value
