"""The one ``cangyun`` console command. Subcommands live with their packages and load lazily
so ``cangyun edge`` does not import the cloud's database stack."""

from __future__ import annotations

import importlib
from typing import Any

import click

from cangyun import __version__

SUBCOMMANDS = {
    "demo": ("devtools.demo", "demo", "Run the whole product locally (broker, cloud, edge, sync)."),
    "edge": ("edge.cli", "edge", "The edge box: PDA web app and local API."),
    "sync": ("sync_agent.cli", "sync", "The sync agent: edge outbox to the cloud over MQTT."),
    "cloud": ("cloud_api.cli", "cloud", "The cloud: API, ingest, provisioning."),
    "scan": ("ocr_service.cli", "scan", "Read barcodes and label fields from image files."),
    "ocr": ("ocr_service.cli", "ocr", "The scanning engine as an HTTP service."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attr, _ = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: Any) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="cangyun")
def main() -> None:
    """仓运通 cangyun: edge-to-cloud warehouse scanning.

    \b
    Examples:
      cangyun demo                          # everything on this machine
      cangyun edge serve --config edge.toml
      cangyun sync --config edge.toml
      cangyun cloud serve --config cloud.toml
      cangyun scan --json label.jpg
    """
