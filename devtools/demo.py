"""``cangyun demo``: the whole product on one machine, on embedded defaults.

Starts a broker (mosquitto when installed, else the embedded amqtt), the cloud API, one
ingest worker, an edge box and its sync agent; provisions a demo tenant on first run and
prints one ``READY {json}`` line. Everything lives in ``--data-dir``: run it again there
(after Ctrl-C or a crash) and it resumes with the same tenant, devices, tokens, logins and
data, and whatever waited in the edge outbox drains.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from cangyun.processes import ManagedProcess, cangyun_command, free_port, http_ok, port_open
from cangyun.settings import dump_settings
from cangyun.stopsignal import on_stop_signal
from devtools import broker as brokers

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"edge": 8080, "edge_https": 8443, "cloud": 8000, "broker": 18830}
TENANT, WAREHOUSE, DEVICE = "demo", "wh1", "demo-edge-1"
GATE = "dock-1"
# The demo tenant has bought what shows the most: 专业版 by tonne-days, OCR and 代运营.
DEMO_PACKAGES = (
    {"edition": "professional", "billing_mode": "flow", "quantity": 1},
    {"add_on": "ocr_scanning", "quantity": 1},
    {"add_on": "managed_operations", "quantity": 1},
)
ADMIN_USER = "admin@demo.cangyun.cn"
OPERATOR_USER = "op1"
STAFF_USER = "staff@demo.cangyun.cn"  # platform staff (平台运营): confirms transfers
RESTART_DELAY_S = 2.0


def _load_state(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    from cloud_api.provisioning import write_private

    write_private(path, json.dumps(state, indent=2, ensure_ascii=False))


def _choose_port(name: str, requested: int | None, state: dict[str, Any]) -> int:
    if requested:
        return requested
    remembered = state.get("ports", {}).get(name, DEFAULT_PORTS[name])
    if not port_open("127.0.0.1", remembered):
        return remembered
    chosen = free_port()
    click.echo(f"port {remembered} for {name} is busy; using {chosen}", err=True)
    return chosen


class Demo:
    def __init__(self, data_dir: Path, ports: dict[str, int], broker_kind: str) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.broker_kind = broker_kind
        self.state_path = data_dir / "demo-state.json"
        self.state = _load_state(self.state_path)
        self.children: list[ManagedProcess] = []
        self.stopping = threading.Event()

    # --- configuration ----------------------------------------------------------------

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker" / "mosquitto.pid"

    @property
    def protocol(self) -> str:
        return "5" if self.broker_kind == "mosquitto" else "3.1.1"

    def cloud_settings(self) -> Any:
        from cloud_api.accounts import credentials
        from cloud_api.settings import BrokerSection, CloudSection, CloudSettings, MqttSection

        ingest_password = self.state.setdefault("ingest_mqtt_password", credentials.new_password())
        cloud_dir = self.data_dir / "cloud"
        return CloudSettings(
            cloud=CloudSection(
                host="127.0.0.1",
                port=self.ports["cloud"],
                data_dir=cloud_dir,
                public_url=f"http://127.0.0.1:{self.ports['cloud']}",
            ),
            mqtt=MqttSection(
                url=f"mqtt://127.0.0.1:{self.ports['broker']}",
                password=ingest_password,
                protocol=self.protocol,
                # amqtt has no shared subscriptions; one worker needs none.
                share_group="ingest" if self.broker_kind == "mosquitto" else "",
            ),
            broker=BrokerSection(
                pid_file=str(self.pid_file) if self.broker_kind == "mosquitto" else ""
            ),
        )

    def provision(self) -> None:
        from cloud_api import provisioning
        from cloud_api.accounts import credentials

        # A pid file left by an earlier run names no broker of ours any more.
        self.pid_file.unlink(missing_ok=True)
        settings = self.cloud_settings()
        self.write_private("cloud.toml", dump_settings(settings))
        engine = provisioning.init(settings)
        if "cloud_token" not in self.state:
            admin_password = credentials.new_password(9)
            created = provisioning.create_tenant(
                engine,
                TENANT,
                "演示仓储公司",
                admin_email=ADMIN_USER,
                admin_password=admin_password,
            )
            provisioning.create_warehouse(engine, TENANT, WAREHOUSE, "演示一号库")
            device = provisioning.create_device(
                settings,
                engine,
                tenant=TENANT,
                warehouse=WAREHOUSE,
                code=DEVICE,
                edge_port=self.ports["edge"],
                edge_data_dir=self.data_dir / "edge",
            )
            for number, order in enumerate(DEMO_PACKAGES, 1):
                provisioning.buy_package(settings, engine, TENANT, order, f"DEMO-{number:04d}")
            self.state.update(
                cloud_token=created.token,
                admin_password=admin_password,
                operator_password=credentials.new_password(6),
                edge_token=device.api_token,
                device_mqtt_password=device.mqtt_password,
                public_key=device.settings.cloud.public_key,
            )
        if "staff_password" not in self.state:
            from cloud_api.cli import create_staff

            # Outside the first-run branch: a demo made before staff existed gets one too.
            self.state["staff_password"] = create_staff(engine, STAFF_USER)[1]
        self.state["ports"] = self.ports
        edge_settings = self.edge_settings(settings)
        if "camera_token" not in self.state:
            from edge.gates.store import ensure_gate, set_camera_token

            db_path = edge_settings.database_path
            db_path.parent.mkdir(parents=True, exist_ok=True)
            token = ensure_gate(db_path, GATE, "in")
            self.state["camera_token"] = token or set_camera_token(db_path, GATE)
        from edge.operators import ensure_operator

        # The PDA login of the READY line; idempotent, so a rerun keeps sessions.
        ensure_operator(edge_settings, OPERATOR_USER, self.state["operator_password"], "演示操作员")
        _save_state(self.state_path, self.state)
        self.write_private("edge.toml", dump_settings(edge_settings))

    def edge_settings(self, cloud: Any) -> Any:
        from cangyun.box_settings import (
            CloudSection,
            DeviceSection,
            EdgeSettings,
            MqttSection,
        )

        base = EdgeSettings()
        return EdgeSettings(
            device=DeviceSection(tenant=TENANT, warehouse=WAREHOUSE, device=DEVICE),
            edge=replace(
                base.edge,
                host="0.0.0.0",
                port=self.ports["edge"],
                https_port=self.ports["edge_https"],
                data_dir=self.data_dir / "edge",
                api_token=self.state["edge_token"],
            ),
            mqtt=MqttSection(
                url=cloud.mqtt.url,
                username=DEVICE,
                password=self.state["device_mqtt_password"],
                protocol=self.protocol,
            ),
            sync=base.sync,
            cloud=CloudSection(url=cloud.cloud.public_url, public_key=self.state["public_key"]),
        )

    def write_private(self, name: str, text: str) -> None:
        from cloud_api.provisioning import write_private

        write_private(self.data_dir / name, text)

    # --- processes --------------------------------------------------------------------

    def start_broker(self) -> None:
        broker_dir = self.data_dir / "broker"
        settings = self.cloud_settings()
        if self.broker_kind == "mosquitto":
            process = brokers.mosquitto_process(
                port=self.ports["broker"],
                passwd_file=settings.passwd_file,
                acl_file=settings.acl_file,
                data_dir=broker_dir,
            )
        else:
            process = brokers.amqtt_process(port=self.ports["broker"], data_dir=broker_dir)
        process.start()
        if self.broker_kind == "mosquitto":
            self.pid_file.write_text(str(process.pid))
        self.children.append(process)
        brokers.wait_for_port(process, self.ports["broker"])

    def start_services(self) -> None:
        logs = self.data_dir / "logs"
        cloud_toml = str(self.data_dir / "cloud.toml")
        edge_toml = str(self.data_dir / "edge.toml")
        specs = [
            (
                "cloud",
                cangyun_command("cloud", "serve", "--config", cloud_toml),
                f"http://127.0.0.1:{self.ports['cloud']}/healthz",
            ),
            ("ingest", cangyun_command("cloud", "ingest", "--config", cloud_toml), None),
            (
                "edge",
                cangyun_command("edge", "serve", "--config", edge_toml),
                f"http://127.0.0.1:{self.ports['edge']}/healthz",
            ),
            ("sync", cangyun_command("sync", "--config", edge_toml), None),
        ]
        for name, argv, health in specs:
            process = ManagedProcess(name, argv, log_path=logs / f"{name}.log").start()
            self.children.append(process)
            if health:
                process.wait_until(lambda url=health: http_ok(url), timeout=60)

    def supervise(self) -> None:
        """Restart a child that dies (a demo should heal itself) until we are stopped."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                if not child.alive() and not self.stopping.is_set():
                    click.echo(f"{child.name} exited; restarting (log: {child.log_path})", err=True)
                    time.sleep(RESTART_DELAY_S)
                    child.start()

    def stop(self) -> None:
        self.stopping.set()
        for child in reversed(self.children):
            started = time.monotonic()
            code = child.stop()
            took = time.monotonic() - started
            if took > 2.0:  # a slow stop is worth a line: it is what makes Ctrl-C feel stuck
                click.echo(f"{child.name} took {took:.1f} s to stop (exit {code})", err=True)

    def ready_line(self) -> dict[str, Any]:
        return {
            "edge_url": f"http://127.0.0.1:{self.ports['edge']}",
            # The PDA page; on a phone use https://<this machine>:<port>/ (camera needs it).
            "pda_url": f"http://127.0.0.1:{self.ports['edge']}/pda/",
            "pda_https_url": f"https://127.0.0.1:{self.ports['edge_https']}/pda/",
            "console_url": f"http://127.0.0.1:{self.ports['cloud']}/console/",
            "cloud_url": f"http://127.0.0.1:{self.ports['cloud']}",
            "broker_url": f"mqtt://127.0.0.1:{self.ports['broker']}",
            "edge_token": self.state["edge_token"],
            "cloud_token": self.state["cloud_token"],
            "tenant": TENANT,
            "warehouse": WAREHOUSE,
            "device": DEVICE,
            "gate": GATE,
            "camera_token": self.state["camera_token"],
            "operator_user": OPERATOR_USER,
            "operator_password": self.state["operator_password"],
            "admin_user": ADMIN_USER,
            "admin_password": self.state["admin_password"],
            "staff_user": STAFF_USER,
            "staff_password": self.state["staff_password"],
        }


@click.command()
@click.option(
    "--data-dir",
    default="demo-data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="where all demo state lives",
)
@click.option("--edge-port", type=int, default=None, help="edge HTTP port (default 8080)")
@click.option(
    "--edge-https-port", type=int, default=None, help="edge HTTPS port for PDAs (default 8443)"
)
@click.option("--cloud-port", type=int, default=None, help="cloud HTTP port (default 8000)")
@click.option("--broker-port", type=int, default=None, help="MQTT port (default 18830)")
@click.option(
    "--broker",
    "broker_kind",
    type=click.Choice(["auto", "mosquitto", "embedded"]),
    default="auto",
    show_default=True,
    help="mosquitto when installed, else the embedded Python broker",
)
@click.option("--no-browser", is_flag=True, help="do not open the PDA page in a browser")
def demo(
    data_dir: str,
    edge_port: int | None,
    edge_https_port: int | None,
    cloud_port: int | None,
    broker_port: int | None,
    broker_kind: str,
    no_browser: bool,
) -> None:
    """Run broker, cloud, ingest, edge and sync agent here; print READY {json}; Ctrl-C stops all.

    \b
    Example:
      cangyun demo --data-dir /tmp/cangyun-demo --no-browser
      curl -X POST http://127.0.0.1:8080/api/v1/movements -H "Authorization: Bearer $EDGE_TOKEN" \\
           -H 'Content-Type: application/json' -d '{"type":"receive","sku":"A1","qty":5}'
    """
    from cangyun import logs

    logs.configure(name="demo")
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if broker_kind == "auto":
        broker_kind = "mosquitto" if brokers.mosquitto_available() else "embedded"
    state = _load_state(root / "demo-state.json")
    ports = {
        "edge": _choose_port("edge", edge_port, state),
        "edge_https": _choose_port("edge_https", edge_https_port, state),
        "cloud": _choose_port("cloud", cloud_port, state),
        "broker": _choose_port("broker", broker_port, state),
    }
    runner = Demo(root, ports, broker_kind)

    on_stop_signal(lambda _name: runner.stopping.set())
    try:
        runner.provision()
        runner.start_broker()
        runner.start_services()
        line = runner.ready_line()
        click.echo("READY " + json.dumps(line, ensure_ascii=False), nl=True)
        sys.stdout.flush()
        click.echo(
            f"PDA: {line['pda_url']}  console: {line['console_url']}  logs: {root / 'logs'}\n"
            "Press Ctrl-C to stop.",
            err=True,
        )
        if not no_browser and os.environ.get("DISPLAY"):
            webbrowser.open(line["pda_url"])
        runner.supervise()
    finally:
        runner.stop()
        click.echo("demo stopped", err=True)
