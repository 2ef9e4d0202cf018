"""`cangyun demo` as a new user meets it: READY line, a movement through to the cloud,
Ctrl-C stops everything, a rerun (after Ctrl-C or a crash) resumes with the same logins
and drains whatever waited in the outbox."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from cangyun.movement import parse_movement
from cangyun.processes import free_port, port_open
from edge.store import EdgeStore
from tests.support.polling import eventually

START_S = 120.0  # a cold start of every service on a busy CI box
SYNC_S = 60.0  # a movement or a licence reaches the other side within seconds
PORTS_FREED_S = 30.0

READY_KEYS = {
    "edge_url",
    "pda_url",
    "pda_https_url",
    "console_url",
    "cloud_url",
    "broker_url",
    "edge_token",
    "cloud_token",
    "tenant",
    "warehouse",
    "device",
    "gate",
    "camera_token",
    "operator_user",
    "operator_password",
    "admin_user",
    "admin_password",
    "staff_user",
    "staff_password",
}


class DemoRun:
    def __init__(self, data_dir: Path, ports: dict[str, int], *extra: str) -> None:
        self.ports = ports
        self.data_dir = data_dir
        self.log = open(data_dir.parent / f"demo-{time.time()}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cangyun",
                "demo",
                "--data-dir",
                str(data_dir),
                "--no-browser",
                "--edge-port",
                str(ports["edge"]),
                "--edge-https-port",
                str(ports["edge_https"]),
                "--cloud-port",
                str(ports["cloud"]),
                "--broker-port",
                str(ports["broker"]),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.stdout: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True, name="demo-stdout").start()
        self.ready = self._wait_ready()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # until the demo exits and its stdout closes
            self.stdout.append(line)
        self.stdout.append("")  # the end

    def _wait_ready(self) -> dict:
        def ready_or_ended() -> dict | str | None:
            """The READY line, or "ended" once the demo has exited without printing one."""
            for line in self.stdout:
                if line.startswith("READY "):
                    return json.loads(line[len("READY ") :])
                if not line:
                    return "ended"
            return None

        found = eventually(
            ready_or_ended,
            timeout=START_S,
            interval=0.2,
            what="the demo's READY line",
            context=self.diagnostics,
        )
        if found == "ended":
            raise AssertionError(f"no READY line; the demo ended:\n{self.diagnostics()}")
        return found

    def stop(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the demo did not stop in 60 s:\n{self.diagnostics()}") from None

    def diagnostics(self) -> str:
        """The demo's own output and the tail of every child's log."""
        self.log.seek(0)
        parts = [f"--- demo ---\n{self.log.read()[-3000:]}"]
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {log.name} ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def ports_closed(self) -> bool:
        return not any(port_open("127.0.0.1", p) for p in self.ports.values())


def cloud_total(ready) -> int:
    response = requests.get(
        ready["cloud_url"] + "/api/v1/movements",
        headers={"Authorization": f"Bearer {ready['cloud_token']}"},
        timeout=10,
    )
    return response.json()["total"]


@pytest.fixture
def ports():
    return {
        "edge": free_port(),
        "edge_https": free_port(),
        "cloud": free_port(),
        "broker": free_port(),
    }


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_demo_runs_stops_and_resumes(tmp_path, ports):
    data_dir = tmp_path / "demo"
    run = DemoRun(data_dir, ports)
    ready = run.ready
    assert set(ready) == READY_KEYS
    response = requests.post(
        ready["edge_url"] + "/api/v1/movements",
        headers={"Authorization": f"Bearer {ready['edge_token']}"},
        json={"type": "receive", "sku": "DEMO-1", "qty": 12, "weight_kg": 3.5},
        timeout=10,
    )
    assert response.status_code == 201
    eventually(
        lambda: cloud_total(ready) == 1,
        timeout=SYNC_S,
        what="the movement in the cloud",
        context=run.diagnostics,
    )
    edge_auth = {"Authorization": f"Bearer {ready['edge_token']}"}

    def licence() -> dict:
        return requests.get(
            ready["edge_url"] + "/api/v1/licence", headers=edge_auth, timeout=10
        ).json()

    # The demo tenant bought 专业版 with OCR: the box holds that licence once it said hello.
    eventually(
        lambda: licence()["state"] == "valid",
        timeout=SYNC_S,
        what="a valid licence at the box",
        context=lambda: f"the box holds {licence()}\n{run.diagnostics()}",
    )
    assert licence()["edition"] == "professional" and "ocr_scanning" in licence()["add_ons"]
    # The demo gate takes frames with its own camera token.
    frame = io.BytesIO()
    Image.new("L", (64, 48), 255).save(frame, "JPEG")
    pushed = requests.post(
        f"{ready['edge_url']}/api/v1/gates/{ready['gate']}/frames",
        headers={"Authorization": f"Bearer {ready['camera_token']}", "Content-Type": "image/jpeg"},
        data=frame.getvalue(),
        timeout=10,
    )
    assert pushed.status_code == 202, pushed.text
    # The operator of the READY line logs in to the PDA page; the console answers.
    assert requests.get(ready["pda_url"], timeout=10).status_code == 200
    # Over HTTPS too (the box's own CA; trusting it is the PDA's business, not this test's).
    assert requests.get(ready["pda_https_url"], timeout=10, verify=False).status_code == 200
    pda = requests.Session()
    pda.headers["X-Requested-With"] = "cangyun-pda"  # as the PDA page sends it
    signed_in = pda.post(
        ready["edge_url"] + "/api/v1/auth/login",
        json={"username": ready["operator_user"], "password": ready["operator_password"]},
        timeout=10,
    )
    assert signed_in.status_code == 200, signed_in.text
    assert pda.get(ready["edge_url"] + "/api/v1/auth/session", timeout=10).status_code == 200
    assert requests.get(ready["console_url"], timeout=10).status_code == 200
    login = requests.post(
        ready["cloud_url"] + "/api/v1/auth/login",
        timeout=10,
        json={"email": ready["admin_user"], "password": ready["admin_password"]},
    )
    assert login.status_code == 200
    # Platform staff sign in the same way and see what awaits payment (nothing: the demo's
    # packages are paid).
    staff = requests.post(
        ready["cloud_url"] + "/api/v1/auth/login",
        timeout=10,
        json={"email": ready["staff_user"], "password": ready["staff_password"]},
    )
    assert staff.status_code == 200 and staff.json()["role"] == "platform_staff", staff.text
    waiting = requests.get(
        ready["cloud_url"] + "/api/v1/platform/orders",
        headers={"Authorization": f"Bearer {staff.json()['token']}"},
        timeout=10,
    )
    assert waiting.status_code == 200 and waiting.json()["items"] == [], waiting.text

    run.stop(signal.SIGINT)
    assert run.proc.returncode == 0
    eventually(
        run.ports_closed,
        timeout=PORTS_FREED_S,
        what="every port closed: Ctrl-C left a child process listening",
        context=run.diagnostics,
    )

    # While the box is down, movements waiting in its outbox (recorded before the stop).
    edge_db = data_dir / "edge" / "edge.sqlite"
    store = EdgeStore(edge_db, device=ready["device"])
    for i in range(3):
        store.record_movement(
            parse_movement(
                {
                    "type": "receive",
                    "sku": f"LATE-{i}",
                    "qty": 1,
                    "occurred_at": "2026-11-26T08:00:00+08:00",
                },
                source="api",
            )
        )
    store.close()

    again = DemoRun(data_dir, ports)
    assert again.ready == ready  # same tenant, device, tokens and logins
    eventually(
        lambda: cloud_total(ready) == 4,
        timeout=SYNC_S,
        what="the outbox to drain into the cloud",
        context=again.diagnostics,
    )
    again.stop(signal.SIGTERM)


def test_demo_after_a_crash_of_the_supervisor(tmp_path, ports):
    data_dir = tmp_path / "demo"
    run = DemoRun(data_dir, ports)
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(10)
    # Children die with their supervisor (kernel parent-death signal): no port stays taken.
    eventually(
        run.ports_closed,
        timeout=PORTS_FREED_S,
        what="every port closed: a child outlived its supervisor",
        context=run.diagnostics,
    )
    again = DemoRun(data_dir, ports)
    assert again.ready["cloud_token"] == run.ready["cloud_token"]
    again.stop()


def test_demo_with_the_embedded_broker(tmp_path, ports):
    run = DemoRun(tmp_path / "demo", ports, "--broker", "embedded")
    ready = run.ready
    response = requests.post(
        ready["edge_url"] + "/api/v1/movements",
        headers={"Authorization": f"Bearer {ready['edge_token']}"},
        json={"type": "receive", "sku": "EMB-1", "qty": 1},
        timeout=10,
    )
    assert response.status_code == 201
    eventually(
        lambda: cloud_total(ready) == 1,
        timeout=SYNC_S,
        what="the movement in the cloud",
        context=run.diagnostics,
    )
    run.stop()
