"""``cangyun edge gate``: configure dock gates and their cameras on this box."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from cangyun.settings import SettingsError

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="edge settings file (the gates live in its database)",
)


def _database(config_path: str) -> Path:
    from cangyun import box_settings as edge_settings

    try:
        return edge_settings.load(config_path).database_path
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _echo(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _fail_on_input_errors(action: Callable[[], Any]) -> Any:
    from edge.gates.model import GateInputError
    from edge.gates.store import GateExists, GateNotFound

    try:
        return action()
    except GateInputError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    except GateNotFound as exc:
        click.echo(f"error: no gate {exc.args[0]}; add it with `cangyun edge gate add`", err=True)
        sys.exit(1)
    except GateExists as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.group()
def gate() -> None:
    """Dock gates: their cameras, camera tokens and settings."""


@gate.command("add")
@CONFIG_OPTION
@click.argument("code")
@click.option(
    "--direction", type=click.Choice(["in", "out", "both"]), required=True, help="goods flow"
)
@click.option(
    "--window",
    "window_s",
    type=float,
    default=60.0,
    show_default=True,
    help="seconds within which sightings of one pallet make one event",
)
@click.option("--ocr-containers", is_flag=True, help="also read container numbers by OCR (slow)")
@click.option("--ocr-plates", is_flag=True, help="also read truck plates by OCR (slow)")
@click.option("--token", default=None, help="use this camera token instead of a random one")
def add(
    config_path: str,
    code: str,
    direction: str,
    window_s: float,
    ocr_containers: bool,
    ocr_plates: bool,
    token: str | None,
) -> None:
    """Add a gate and print its camera token (shown this once; stored hashed).

    \b
    Example:
      cangyun edge gate add --config edge.toml dock-1 --direction in
      cangyun edge gate add --config edge.toml yard-1 --direction both --ocr-plates
    """
    from edge.gates.model import new_camera_token, parse_gate
    from edge.gates.store import GateStore

    store = GateStore(_database(config_path))
    try:
        data = {"code": code, "direction": direction, "window_s": window_s}
        config = _fail_on_input_errors(
            lambda: parse_gate(data | {"ocr_containers": ocr_containers, "ocr_plates": ocr_plates})
        )
        camera_token = token or new_camera_token()
        created = _fail_on_input_errors(lambda: store.create_gate(config, camera_token))
        _echo(
            {
                "gate": created["code"],
                "direction": created["direction"],
                "camera_token": camera_token,
            }
        )
    finally:
        store.close()


@gate.command("camera")
@CONFIG_OPTION
@click.argument("gate_code", metavar="GATE")
@click.argument("camera")
@click.option("--stream", "url", default=None, help="RTSP or HTTP (MJPEG, MP4) URL to pull")
@click.option("--fps", type=float, default=2.0, show_default=True, help="frames sampled per second")
@click.option(
    "--folder",
    default=None,
    type=click.Path(file_okay=False),
    help="drop folder the camera uploads pictures into (FTP)",
)
@click.option(
    "--after",
    type=click.Choice(["archive", "delete"]),
    default="archive",
    show_default=True,
    help="what to do with a picture once taken",
)
@click.option(
    "--poll",
    "poll_s",
    type=float,
    default=1.0,
    show_default=True,
    help="seconds between looks at the folder; a file is taken once unchanged across one",
)
@click.option("--push", is_flag=True, help="a camera that pushes frames over HTTP")
@click.option("--remove", is_flag=True, help="remove this camera")
def camera_command(
    config_path: str,
    gate_code: str,
    camera: str,
    url: str | None,
    fps: float,
    folder: str | None,
    after: str,
    poll_s: float,
    push: bool,
    remove: bool,
) -> None:
    """Add or change a camera of a gate (a running edge picks it up within seconds).

    \b
    Examples:
      cangyun edge gate camera --config edge.toml dock-1 cam-1 \\
          --stream rtsp://10.0.0.21/h264 --fps 2
      cangyun edge gate camera --config edge.toml dock-1 cam-2 \\
          --folder /srv/ftp/cam-2 --after archive
      cangyun edge gate camera --config edge.toml dock-1 cam-3 --push
    """
    from edge.gates.model import CameraConfig, check_code, folder_camera, stream_camera
    from edge.gates.store import GateStore

    store = GateStore(_database(config_path))
    try:
        if remove:
            if not store.remove_camera(gate_code, camera):
                click.echo(f"error: gate {gate_code} has no camera {camera}", err=True)
                sys.exit(1)
            _echo({"gate": gate_code, "camera": camera, "removed": True})
            return
        if sum(bool(x) for x in (url, folder, push)) != 1:
            click.echo("error: give exactly one of --stream URL, --folder PATH or --push", err=True)
            sys.exit(2)

        def build() -> CameraConfig:
            if url:
                return stream_camera(gate_code, camera, url, fps)
            if folder:
                return folder_camera(gate_code, camera, str(Path(folder).resolve()), after, poll_s)
            return CameraConfig(gate_code, check_code(camera, "camera"), "push")

        config = _fail_on_input_errors(build)
        _fail_on_input_errors(lambda: store.set_camera(config))
        if config.kind == "folder":
            Path(config.folder or "").mkdir(parents=True, exist_ok=True)
        _echo(store.get_gate(gate_code))
    finally:
        store.close()


@gate.command("list")
@CONFIG_OPTION
def list_command(config_path: str) -> None:
    """List the gates of this box with their cameras (tokens are never shown again).

    \b
    Example:
      cangyun edge gate list --config edge.toml
    """
    from edge.gates.store import GateStore

    store = GateStore(_database(config_path))
    try:
        _echo(store.list_gates())
    finally:
        store.close()


@gate.command("token")
@CONFIG_OPTION
@click.argument("gate_code", metavar="GATE")
@click.option("--token", default=None, help="set this token instead of a new random one")
def token_command(config_path: str, gate_code: str, token: str | None) -> None:
    """Replace a gate's camera token (the old one stops working at once) and print it.

    \b
    Example:
      cangyun edge gate token --config edge.toml dock-1
    """
    from edge.gates.store import set_camera_token

    database = _database(config_path)
    new = _fail_on_input_errors(lambda: set_camera_token(database, gate_code, token))
    _echo({"gate": gate_code, "camera_token": new})
