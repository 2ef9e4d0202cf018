"""A whole cangyun deployment in real processes, for end-to-end tests.

A private mosquitto on a free port with the password and ACL files the cloud writes, the
cloud API, N ingest workers, an edge box and its sync agent, each a real OS process that a
test can stop, kill -9 and start again. Timing constants are shrunk through the settings'
environment overrides so faults heal in seconds, not minutes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from cangyun.processes import ManagedProcess, cangyun_command, free_port, http_ok
from cangyun.settings import dump_settings
from cloud_api import provisioning
from cloud_api.platform.schema import device_sync, ledger
from cloud_api.settings import BrokerSection, CloudSection, CloudSettings, MqttSection
from devtools.broker import mosquitto_process, wait_for_port

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
        with self.engine.connect() as conn:
            rows, distinct = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count(sa.distinct(ledger.c.seq)),
                )
            ).one()
            watermark = conn.execute(sa.select(sa.func.max(device_sync.c.acked_through))).scalar()
        return {"rows": rows, "distinct_seqs": distinct, "watermark": watermark or 0}

    def wait_synced(self, last_seq: int, timeout: float = 120.0) -> dict[str, int]:
        """Until the cloud watermark reaches last_seq and the edge has heard the ack."""
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = self.cloud_counts()
            if counts["watermark"] >= last_seq:
                status = self.sync_status()
                if status["acked_through"] >= last_seq:
                    return counts
            time.sleep(0.25)
        raise AssertionError(
            f"not synced to {last_seq} within {timeout} s: {counts}; "
            f"edge {self.sync_status()}\n{self.tails()}"
        )

    def tails(self) -> str:
        return "\n".join(f"--- {n}\n{p.tail(15)}" for n, p in self.processes.items())
