"""A whole cangyun deployment in real processes, for end-to-end tests.

A private mosquitto on a free port with the password and ACL files the cloud writes, the
cloud API, N ingest workers, an edge box and its sync agent, each a real OS process that a
test can stop, kill -9 and start again. Timing constants are shrunk through the settings'
environment overrides so faults heal in seconds, not minutes. A test talks MQTT to the
broker through an ``MqttSession`` of its own.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cangyun.processes import ManagedProcess, cangyun_command, free_port, http_ok
from cangyun.settings import dump_settings
from cloud_api import provisioning
from cloud_api.platform.schema import device_sync, ledger
from cloud_api.settings import BrokerSection, CloudSection, CloudSettings, MqttSection
from devtools.broker import mosquitto_process, wait_for_port
from tests.support.polling import eventually

FAST_SYNC_ENV = {
    "CANGYUN_SYNC_ACK_TIMEOUT_S": "3",
    "CANGYUN_SYNC_BACKOFF_BASE_S": "0.2",
    "CANGYUN_SYNC_BACKOFF_CAP_S": "2",
    "CANGYUN_SYNC_HEARTBEAT_S": "0.5",
    "CANGYUN_CLOUD_LICENCE_SWEEP_S": "1",  # a paid order reaches the box within seconds
    "CANGYUN_CLOUD_EXPECTED_SWEEP_S": "0.5",  # so does a new or cancelled expected line
}
TENANT, WAREHOUSE, DEVICE = "acme", "sh-01", "sh-01-edge1"
SUBSCRIBED = "subscribed to"
BROKER_ANSWER_S = 30.0  # CONNACK, SUBACK, PUBACK come at once; this bounds a busy CI box
BROKER_RELOAD_S = 30.0  # mosquitto handles the cloud's SIGHUP at once; the same bound


def _count(path: Path, marker: str) -> int:
    try:
        return path.read_text(errors="replace").count(marker)
    except FileNotFoundError:
        return 0


class Stack:
    def __init__(self, root: Path, database_url: str, *, ingest_workers: int = 1) -> None:
        self.root = root
        self.database_url = database_url
        self.ingest_workers = ingest_workers
        self.ports = {"broker": free_port(), "cloud": free_port(), "edge": free_port()}
        self.broker_dir = root / "broker"
        self.logs = root / "logs"
        self.processes: dict[str, ManagedProcess] = {}
        self.cloud_settings = CloudSettings(
            cloud=CloudSection(
                host="127.0.0.1",
                port=self.ports["cloud"],
                data_dir=root / "cloud",
                database_url=database_url,
            ),
            mqtt=MqttSection(
                url=f"mqtt://127.0.0.1:{self.ports['broker']}",
                password="ingest-secret-for-tests",
            ),
            broker=BrokerSection(pid_file=str(self.broker_dir / "mosquitto.pid")),
        )
        self.engine = provisioning.init(self.cloud_settings)
        self.tenant = provisioning.create_tenant(
            self.engine,
            TENANT,
            "Acme 冷链",
            admin_email="admin@acme.test",
            admin_password="pw-Admin-1",
        )
        provisioning.create_warehouse(self.engine, TENANT, WAREHOUSE, "嘉定一号库")
        self.device = provisioning.create_device(
            self.cloud_settings,
            self.engine,
            tenant=TENANT,
            warehouse=WAREHOUSE,
            code=DEVICE,
            edge_port=self.ports["edge"],
            edge_data_dir=root / "edge",
        )
        edge_settings = self.device.settings
        edge_settings = replace(edge_settings, edge=replace(edge_settings.edge, host="127.0.0.1"))
        self.edge_settings = edge_settings
        self.cloud_toml = root / "cloud.toml"
        self.edge_toml = root / "edge.toml"
        self.cloud_toml.write_text(dump_settings(self.cloud_settings))
        self.edge_toml.write_text(dump_settings(edge_settings))
        self.edge_url = f"http://127.0.0.1:{self.ports['edge']}"
        self.cloud_url = f"http://127.0.0.1:{self.ports['cloud']}"
        self.http = requests.Session()

    # --- processes --------------------------------------------------------------------

    def start_broker(self) -> None:
        process = mosquitto_process(
            port=self.ports["broker"],
            passwd_file=self.cloud_settings.passwd_file,
            acl_file=self.cloud_settings.acl_file,
            data_dir=self.broker_dir,
        ).start()
        (self.broker_dir / "mosquitto.pid").write_text(str(process.pid))
        self.processes["broker"] = process
        wait_for_port(process, self.ports["broker"])

    def start(self, name: str) -> ManagedProcess:
        if name == "broker":
            self.start_broker()
            return self.processes["broker"]
        cloud, edge = str(self.cloud_toml), str(self.edge_toml)
        argv = {
            "cloud": cangyun_command("cloud", "serve", "--config", cloud),
            "edge": cangyun_command("edge", "serve", "--config", edge),
            "sync": cangyun_command("sync", "--config", edge),
        }
        if name.startswith("ingest"):
            args = cangyun_command("cloud", "ingest", "--config", cloud, "--client-id", name)
        else:
            args = argv[name]
        log_path = self.logs / f"{name}.log"
        subscribed = _count(log_path, SUBSCRIBED)
        process = ManagedProcess(name, args, log_path=log_path, env=FAST_SYNC_ENV).start()
        self.processes[name] = process
        health = {"cloud": f"{self.cloud_url}/healthz", "edge": f"{self.edge_url}/healthz"}
        if name in health:
            process.wait_until(lambda: http_ok(health[name]), timeout=60)
        elif name.startswith("ingest"):
            # Messages published before the worker subscribes would only be resent later.
            process.wait_until(lambda: _count(log_path, SUBSCRIBED) > subscribed, timeout=60)
        return process

    @property
    def ingest_names(self) -> list[str]:
        return [f"ingest-{i}" for i in range(self.ingest_workers)]

    def start_all(self) -> None:
        self.start_broker()
        for name in ["cloud", *self.ingest_names, "edge", "sync"]:
            self.start(name)

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.http.close()
        self.engine.dispose()

    # --- edge API ---------------------------------------------------------------------

    def edge(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.device.api_token}"}
        return self.http.request(
            method, self.edge_url + path, headers=headers, timeout=30, **kwargs
        )

    def cloud(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tenant.token}"}
        return self.http.request(
            method, self.cloud_url + path, headers=headers, timeout=30, **kwargs
        )

    def sync_status(self) -> dict[str, Any]:
        return self.edge("GET", "/api/v1/sync/status").json()

    # --- cloud database ---------------------------------------------------------------

    def cloud_counts(self) -> dict[str, int]:
        # One statement, so one snapshot: counted in two, on PostgreSQL the rows could be
        # counted before a batch committed and the watermark read after it.
        watermark = sa.select(sa.func.max(device_sync.c.acked_through)).scalar_subquery()
        with self.engine.connect() as conn:
            rows, distinct, mark = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(ledger.c.seq)), watermark)
            ).one()
        return {"rows": rows, "distinct_seqs": distinct, "watermark": mark or 0}

    def wait_synced(self, last_seq: int, timeout: float = 120.0) -> dict[str, int]:
        """Until the cloud watermark reaches last_seq and the edge has heard the ack."""

        def synced() -> dict[str, int] | None:
            counts = self.cloud_counts()
            if counts["watermark"] < last_seq:
                return None
            return counts if self.sync_status()["acked_through"] >= last_seq else None

        return eventually(
            synced,
            timeout=timeout,
            interval=0.25,
            what=f"the cloud and the edge synced to seq {last_seq}",
            context=lambda: (
                f"cloud {self.cloud_counts()}; edge {self.sync_status()}\n{self.tails()}"
            ),
        )

    def tails(self) -> str:
        return "\n".join(f"--- {n}\n{p.tail(15)}" for n, p in self.processes.items())

    # --- the test's own MQTT sessions -------------------------------------------------

    def mqtt(self, username: str, password: str, *, accepted: bool = True) -> MqttSession:
        """A session on this stack's broker, once CONNACK is the expected answer."""
        return connect_until(self.ports["broker"], username, password, accepted=accepted)

    def ingest_mqtt(self) -> MqttSession:
        """A session as the cloud's ingest account, the one allowed to write every downlink."""
        m = self.cloud_settings.mqtt
        return self.mqtt(m.username, m.password)


class MqttSession:
    """One MQTT 5 connection attempt and everything the broker answered on it: CONNACK,
    each SUBACK and PUBACK (kept by mid, so an ack that comes first is not lost), every
    message delivered, and whether the broker dropped the connection."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{username}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.dropped = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.dropped.set()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.__setitem__(mid, rcs)
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        eventually(
            lambda: self.connack is not None,
            timeout=BROKER_ANSWER_S,
            what=f"the broker to answer CONNECT of {username}",
        )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any):
        if self.connack is None:  # paho retries a refused CONNECT; the first answer counts
            self.connack = rc

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> list[ReasonCode]:
        """Subscribe with QoS 1; the SUBACK's reason codes, once the broker has sent it."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS, mqtt.error_string(result)
        eventually(lambda: mid in self.subacks, timeout=BROKER_ANSWER_S, what=f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish with QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        eventually(
            lambda: info.mid in self.pubacks, timeout=BROKER_ANSWER_S, what=f"PUBACK on {topic}"
        )
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_until(port: int, username: str, password: str, *, accepted: bool) -> MqttSession:
    """Connect until the broker's answer is the expected one (it reloads its files on the
    SIGHUP the cloud sent, a moment after the API answered)."""

    def attempt() -> MqttSession | None:
        session = MqttSession(port, username, password)
        if session.accepted == accepted:
            return session
        session.close()
        return None

    answer = "accepts" if accepted else "refuses"
    return eventually(
        attempt, timeout=BROKER_RELOAD_S, interval=0.2, what=f"a CONNACK that {answer} {username}"
    )
