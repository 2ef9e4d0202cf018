"""``cangyun sync``: run the sync agent of an edge box."""

from __future__ import annotations

import sys

import click

from cangyun import logs
from cangyun.settings import SettingsError
from cangyun.stopsignal import on_stop_signal


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="edge settings file (the same one `cangyun edge serve` reads)",
)
def sync(config_path: str) -> None:
    """Ship the edge outbox to the cloud over MQTT until SIGTERM/Ctrl-C.

    Runs next to `cangyun edge serve` on the edge box, as its own process: it can be
    restarted or killed at any moment without losing or doubling a movement.

    \b
    Example:
      cangyun sync --config /etc/cangyun/edge.toml
    """
    from cangyun import box_settings as edge_settings
    from sync_agent.agent import AgentAlreadyRunning, SyncAgent

    logs.configure(name="sync")
    try:
        settings = edge_settings.load(config_path)
        agent = SyncAgent(settings)
    except (SettingsError, AgentAlreadyRunning, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    on_stop_signal(lambda _name: agent.stop())
    agent.run()
