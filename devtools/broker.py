"""Run an MQTT broker for the demo and the tests: mosquitto when installed, else amqtt.

Production brokers are configured from deploy/ (TLS, persistence tuned); this module only
writes a local configuration around the password and ACL files the cloud keeps.
"""

from __future__ import annotations

import getpass
import shutil
from functools import partial
from pathlib import Path

from cangyun.processes import ManagedProcess, port_open

MESSAGE_SIZE_LIMIT = 4 * 1024 * 1024 + 64 * 1024  # a full batch plus headroom


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None


def mosquitto_config(
    *,
    port: int,
    passwd_file: Path,
    acl_file: Path,
    data_dir: Path,
    host: str = "127.0.0.1",
    persistence: bool = True,
) -> str:
    lines = [
        "# Written by cangyun for a local broker.",
        # Started as root, mosquitto would drop to user "mosquitto", who cannot read the
        # cloud's private password file; stay the user that started it.
        f"user {getpass.getuser()}",
        f"listener {port} {host}",
        "allow_anonymous false",
        f"password_file {passwd_file}",
        f"acl_file {acl_file}",
        f"max_packet_size {MESSAGE_SIZE_LIMIT}",
        "max_inflight_messages 40",
        "max_queued_messages 10000",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if persistence:
        lines += [
            "persistence true",
            f"persistence_location {data_dir}/",
            "autosave_interval 60",
        ]
    return "\n".join(lines) + "\n"


def mosquitto_process(
    *,
    port: int,
    passwd_file: Path,
    acl_file: Path,
    data_dir: Path,
    persistence: bool = True,
) -> ManagedProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "mosquitto.conf"
    conf.write_text(
        mosquitto_config(
            port=port,
            passwd_file=passwd_file,
            acl_file=acl_file,
            data_dir=data_dir,
            persistence=persistence,
        )
    )
    return ManagedProcess(
        "mosquitto",
        [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
        log_path=data_dir / "mosquitto.log",
    )


def amqtt_process(*, port: int, data_dir: Path) -> ManagedProcess:
    """The embedded fallback: amqtt (MQTT 3.1.1 only), anonymous on 127.0.0.1 only."""
    import sys

    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
        "  amqtt.plugins.sys.broker.BrokerSysPlugin:\n"
        "    sys_interval: 0\n"
    )
    return ManagedProcess(
        "amqtt",
        [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)],
        log_path=data_dir / "amqtt.log",
    )


def wait_for_port(process: ManagedProcess, port: int, timeout: float = 15.0) -> None:
    process.wait_until(partial(port_open, "127.0.0.1", port), timeout)
