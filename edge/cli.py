"""``cangyun edge``: run the edge box service."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from cangyun import logs
from cangyun.serve import make_server, serve_forever
from cangyun.settings import SettingsError

if TYPE_CHECKING:
    from cheroot.wsgi import Server
    from flask import Flask

    from cangyun.box_settings import EdgeSettings

log = logging.getLogger(__name__)


@click.group()
def edge() -> None:
    """The edge box: PDA web app and local API."""


@edge.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="edge settings file (written by `cangyun cloud device create`)",
)
@click.option("--port", type=int, default=None, help="override edge.port")
def serve(config_path: str, port: int | None) -> None:
    """Serve the edge API and PDA web app until SIGTERM/Ctrl-C.

    \b
    Example:
      cangyun edge serve --config /etc/cangyun/edge.toml
    """
    from cangyun import box_settings as edge_settings
    from edge.app import create_app

    logs.configure(name="edge")
    try:
        settings = edge_settings.load(config_path)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    app = create_app(settings)
    server = make_server(
        app,
        settings.edge.host,
        port or settings.edge.port,
        threads=settings.edge.threads,
        name="cangyun-edge",
    )
    # Dock gate cameras: the decoding worker, drop folders and streams run beside the API.
    from edge import gates

    gates.start(app)
    try:
        serve_forever([server], optional=_https_servers(app, settings))
    finally:
        gates.stop(app)


def _https_servers(app: Flask, settings: EdgeSettings) -> list[Server]:
    """The PDA's HTTPS listener (the camera needs a secure context), when configured."""
    if not settings.edge.https_port:
        return []
    if settings.edge.tls_cert_file:
        certfile, keyfile = settings.edge.tls_cert_file, settings.edge.tls_key_file
    else:
        from edge.tls import ensure_certificate

        files = ensure_certificate(settings.edge.data_dir)
        certfile, keyfile = str(files.cert), str(files.key)
    server = make_server(
        app,
        settings.edge.host,
        settings.edge.https_port,
        threads=settings.edge.threads,
        certfile=certfile,
        keyfile=keyfile,
        name="cangyun-edge",
    )
    return [server]


# `cangyun edge gate ...`: dock gates and their cameras (edge/gates/cli.py).
from edge.gates.cli import gate  # noqa: E402 - registered after the group it joins

edge.add_command(gate)

# `cangyun edge operator ...`: PDA operator accounts (edge/pda/cli.py).
from edge.pda.cli import operator  # noqa: E402

edge.add_command(operator)
