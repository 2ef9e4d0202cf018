"""Sync throughput: real edge outbox → real sync agent → mosquitto → real ingest on SQLite.

Fills an edge database with N movements (through the edge store, as the API would), then
starts the sync agent and one ingest worker as separate processes and times how long the
cloud takes to commit all of them (its watermark reaching N). For comparison it first
measures the naive design on the same broker: one paho QoS 1 message per movement, counted
when the broker's PUBACK arrives.

The last line is ``committed_tx_per_s=<n>``.

    python bench/sync_throughput.py [--movements 200000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cangyun import wire  # noqa: E402
from cangyun.movement import parse_movement  # noqa: E402
from cangyun.processes import ManagedProcess, cangyun_command, free_port  # noqa: E402
from cangyun.settings import dump_settings  # noqa: E402
from cloud_api import provisioning  # noqa: E402
from cloud_api.platform.schema import device_sync  # noqa: E402
from cloud_api.settings import BrokerSection, CloudSection, CloudSettings, MqttSection  # noqa: E402
from devtools.broker import mosquitto_process, wait_for_port  # noqa: E402
from edge.store import EdgeStore  # noqa: E402

PAYLOAD_BYTES = 300  # about one movement on the wire


def progress(label: str, done: int, total: int) -> None:
    """A progress bar on a terminal; a line per tenth when stderr is a file."""
    width = 30
    filled = int(width * done / total)
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
    elif done >= total or done * 10 // total != (done - 1) * 10 // total:
        sys.stderr.write(f"{label} {done}/{total}\n")
    sys.stderr.flush()


def fill_outbox(store: EdgeStore, count: int, run: int) -> None:
    """Receipts as a dock sees them: runs of ``run`` scans of the same goods and lot (a pallet
    row off one truck), 500 goods, 7 lots, 3 cargo owners, each scan 40 ms after the last
    (every timestamp differs, as on a real dock, so nothing downstream gets them cached)."""
    chunk = 2000
    first = datetime(2026, 11, 26, 8, tzinfo=timezone(timedelta(hours=8)))
    for start in range(0, count, chunk):
        movements = []
        for i in range(start, min(start + chunk, count)):
            occurred = (first + timedelta(milliseconds=40 * i)).isoformat(timespec="milliseconds")
            line = i // run
            movement = parse_movement(
                {
                    "type": "receive",
                    "sku": f"SKU-{line % 500}",
                    "qty": 1 + i % 9,
                    "lot": f"L{line % 7}",
                    "weight_kg": 1.5,
                    "customer": f"owner-{line % 3}",
                    "occurred_at": occurred,
                },
                source="api",
            )
            movements.append((movement, None))
        store.record_movements(movements)
        progress("filling edge outbox ", min(start + chunk, count), count)


def naive_paho_rate(port: int, username: str, password: str, topic: str, count: int) -> float:
    """One QoS 1 publish per movement, max_inflight 20, until every PUBACK is back."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    acked = 0
    done = threading.Event()

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = orjson.dumps({"seq": 0, "body": "x" * (PAYLOAD_BYTES - 20)})
    started = time.perf_counter()
    for _ in range(count):
        client.publish(topic, payload, qos=1)
    done.wait(300)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return count / elapsed


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watermark(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(device_sync.c.acked_through))).scalar() or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument(
        "--ingest-workers", type=int, default=1, help="ingest processes on the shared subscription"
    )
    parser.add_argument("--naive", type=int, default=50_000, help="messages for the paho baseline")
    parser.add_argument(
        "--run",
        type=int,
        default=10,
        help="consecutive movements of the same goods/lot (1: every one differs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    if shutil.which("mosquitto") is None:
        sys.exit("this benchmark needs mosquitto (apt-get install mosquitto)")

    root = Path(tempfile.mkdtemp(prefix="cangyun-bench-"))
    processes: list[ManagedProcess] = []
    try:
        port = free_port()
        settings = CloudSettings(
            cloud=CloudSection(data_dir=root / "cloud"),
            mqtt=MqttSection(url=f"mqtt://127.0.0.1:{port}", password="bench-ingest"),
            broker=BrokerSection(),
        )
        engine = provisioning.init(settings)
        provisioning.create_tenant(engine, "bench", "bench")
        provisioning.create_warehouse(engine, "bench", "wh", "wh")
        device = provisioning.create_device(
            settings,
            engine,
            tenant="bench",
            warehouse="wh",
            code="bench-edge",
            edge_data_dir=root / "edge",
        )
        edge = device.settings
        edge = replace(
            edge,
            sync=replace(edge.sync, batch_size=args.batch_size, max_inflight_batches=args.inflight),
        )
        (root / "edge.toml").write_text(dump_settings(edge))
        (root / "cloud.toml").write_text(dump_settings(settings))

        broker = mosquitto_process(
            port=port,
            passwd_file=settings.passwd_file,
            acl_file=settings.acl_file,
            data_dir=root / "broker",
            persistence=False,
        ).start()
        processes.append(broker)
        wait_for_port(broker, port)

        address = wire.DeviceAddress("bench", "wh", "bench-edge")
        naive = naive_paho_rate(
            port,
            device.mqtt_username,
            device.mqtt_password,
            address.topic(wire.UP_RECON),
            args.naive,
        )
        print(
            f"naive_paho_qos1_msg_per_s={naive:.0f}  ({args.naive} messages of {PAYLOAD_BYTES} B)"
        )

        store = EdgeStore(edge.database_path, device="bench-edge")
        fill_outbox(store, args.movements, args.run)
        store.close()

        logs = root / "logs"
        workers = []
        for i in range(args.ingest_workers):
            worker = ManagedProcess(
                f"ingest-{i}",
                cangyun_command(
                    "cloud",
                    "ingest",
                    "--config",
                    str(root / "cloud.toml"),
                    "--client-id",
                    f"bench-ingest-{i}",
                ),
                log_path=logs / f"ingest-{i}.log",
            ).start()
            processes.append(worker)
            workers.append(worker)
        for worker in workers:
            worker.wait_until(lambda w=worker: "subscribed to" in w.tail(), timeout=60)
        # CPU spent starting up (imports, engine) is not the cost of filing movements.
        startup_cpu = sum(cpu_seconds(w.pid) for w in workers)

        started = time.perf_counter()
        sync = ManagedProcess(
            "sync",
            cangyun_command("sync", "--config", str(root / "edge.toml")),
            log_path=logs / "sync.log",
        ).start()
        processes.append(sync)
        last = 0
        while last < args.movements:
            time.sleep(0.2)
            last = watermark(engine)
            progress("cloud committed     ", last, args.movements)
            if not all(p.alive() for p in processes):
                sys.exit("a process died:\n" + "\n".join(p.tail() for p in processes))
        elapsed = time.perf_counter() - started
        rate = args.movements / elapsed
        busy = {p.name: cpu_seconds(p.pid) for p in processes}
        print("cpu_seconds " + " ".join(f"{name}={sec:.2f}" for name, sec in busy.items()))
        filing_cpu = sum(busy[w.name] for w in workers) - startup_cpu
        print(f"ingest_cpu_us_per_movement={filing_cpu / args.movements * 1e6:.1f}")
        print(
            f"movements={args.movements} batch_size={args.batch_size} inflight={args.inflight}"
            f" ingest_workers={args.ingest_workers} run={args.run} seconds={elapsed:.2f}"
        )
        print(f"ratio_to_naive={rate / naive:.1f}x")
        print(f"committed_tx_per_s={rate:.0f}")
    finally:
        for process in reversed(processes):
            process.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
