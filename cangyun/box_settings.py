"""Settings of an edge box: one TOML file read by both ``cangyun edge serve`` and ``cangyun sync``.

``cangyun cloud device create`` writes it when the cloud onboards a box, so its shape is part
of the contract between cloud and edge and lives in the kernel. Any key can be overridden by
the environment as ``CANGYUN_<SECTION>_<KEY>``, e.g. ``CANGYUN_MQTT_PASSWORD``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cangyun.settings import load_settings, setting


@dataclass(frozen=True)
class DeviceSection:
    tenant: str = setting("", "tenant code this box belongs to")
    warehouse: str = setting("", "warehouse code this box serves")
    device: str = setting("", "device code of this box; also its MQTT username")


@dataclass(frozen=True)
class EdgeSection:
    host: str = setting("0.0.0.0", "address the PDA web app and API listen on")
    port: int = setting(8080, "HTTP port")
    https_port: int = setting(
        8443, "HTTPS port of the PDA web app (the camera needs HTTPS); 0 turns HTTPS off"
    )
    tls_cert_file: str = setting(
        "", "server certificate (PEM); empty: one the box makes and signs itself in data_dir/tls"
    )
    tls_key_file: str = setting("", "private key of tls_cert_file (PEM)")
    data_dir: Path = setting(Path("edge-data"), "directory of edge.sqlite and other local state")
    api_token: str = setting("", "bearer token of this device for the edge API (integrations)")
    threads: int = setting(16, "HTTP worker threads")
    max_backlog: int = setting(
        2_000_000, "movements allowed to wait for the cloud before new ones are refused (507)"
    )
    min_free_disk_mb: int = setting(100, "refuse new movements (507) below this much free disk")


@dataclass(frozen=True)
class MqttSection:
    url: str = setting("mqtt://127.0.0.1:1883", "broker URL, mqtt:// or mqtts://")
    username: str = setting("", "MQTT username (the device code)")
    password: str = setting("", "MQTT password; better set CANGYUN_MQTT_PASSWORD")
    protocol: str = setting("5", "MQTT protocol version: 5 or 3.1.1")
    keepalive: int = setting(30, "MQTT keepalive in seconds")
    ca_file: str | None = setting(None, "CA certificate for mqtts://, when not in the system store")


@dataclass(frozen=True)
class SyncSection:
    batch_size: int = setting(500, "movements per MQTT batch")
    max_inflight_batches: int = setting(8, "batches published but not yet acknowledged")
    ack_timeout_s: float = setting(10.0, "resend from the cloud's watermark after this silence")
    backoff_base_s: float = setting(0.5, "first reconnect delay ceiling (full jitter)")
    backoff_cap_s: float = setting(60.0, "largest reconnect delay ceiling")
    startup_delay_max_s: float = setting(
        0.0, "random delay before the first connect, so a power cut does not cause a storm"
    )
    heartbeat_s: float = setting(2.0, "how often the agent tells the edge it is alive")
    retention_days: float = setting(7.0, "keep acknowledged outbox rows this long")


@dataclass(frozen=True)
class ScanSection:
    ocr_engine: str = setting(
        "rapidocr", "OCR engine: rapidocr (built in) or paddleocr (if installed)"
    )
    ocr_threads: int = setting(2, "threads the OCR engine may use")
    ocr_url: str = setting("", "a shared `cangyun ocr serve` URL; empty: scan in this process")
    ocr_token: str = setting(
        "", "bearer token of that service (its CANGYUN_OCR_TOKEN); better CANGYUN_SCAN_OCR_TOKEN"
    )
    budget_ms: float = setting(
        30.0, "time budget for barcode retries on a camera frame (frames with OCR get 250)"
    )
    still_budget_ms: float = setting(
        1000.0,
        "time budget for the barcode search of a still: a PDA photo, a gate snapshot",
    )


@dataclass(frozen=True)
class PdaSection:
    session_hours: float = setting(12.0, "an operator's login lasts this long (one shift)")
    lockout_failures: int = setting(5, "wrong passwords in a row that lock an operator account")
    lockout_minutes: float = setting(15.0, "how long a locked operator account stays locked")


@dataclass(frozen=True)
class CloudSection:
    url: str = setting("", "cloud API base URL")
    public_key: str = setting("", "cloud's Ed25519 public key (base64) for licence checks")


@dataclass(frozen=True)
class EdgeSettings:
    device: DeviceSection = field(default_factory=DeviceSection)
    edge: EdgeSection = field(default_factory=EdgeSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    sync: SyncSection = field(default_factory=SyncSection)
    scan: ScanSection = field(default_factory=ScanSection)
    cloud: CloudSection = field(default_factory=CloudSection)
    pda: PdaSection = field(default_factory=PdaSection)

    @property
    def database_path(self) -> Path:
        return self.edge.data_dir / "edge.sqlite"


def load(path: str | Path | None) -> EdgeSettings:
    return load_settings(EdgeSettings, path)
