"""``cangyun edge operator``: PDA operator accounts in the edge database."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from cangyun.settings import SettingsError
from edge.operators import OperatorError, OperatorStore

CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="edge settings file (the database is edge.data_dir/edge.sqlite)",
)
PASSWORD = click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="the password (asked for when not given; 8 to 128 characters)",
)


@contextmanager
def _operators(config_path: str) -> Iterator[OperatorStore]:
    from cangyun import box_settings as edge_settings

    try:
        settings = edge_settings.load(config_path)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    store = OperatorStore(settings.database_path)
    try:
        yield store
    except OperatorError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    finally:
        store.close()


@click.group()
def operator() -> None:
    """PDA operator accounts of this edge box (they log in on the PDA, also offline)."""


@operator.command()
@CONFIG
@click.argument("username")
@click.option("--name", required=True, help="display name, e.g. 张三")
@PASSWORD
def add(config_path: str, username: str, name: str, password: str) -> None:
    """Create an operator.

    \b
    Example:
      cangyun edge operator add --config edge.toml zhangsan --name 张三
    """
    with _operators(config_path) as store:
        created = store.add(username, password, name)
        click.echo(f"added operator {created.username} ({created.name})")


@operator.command(name="list")
@CONFIG
def list_operators(config_path: str) -> None:
    """List operators with their state.

    \b
    Example:
      cangyun edge operator list --config edge.toml
    """
    import time

    with _operators(config_path) as store:
        rows = store.all()
        if not rows:
            click.echo("no operators yet; add one with `cangyun edge operator add`")
            return
        now = time.time()
        click.echo(f"{'username':<20} {'state':<28} name")
        for op in rows:
            if not op.enabled:
                state = "disabled"
            elif op.locked_until and op.locked_until > now:
                until = dt.datetime.fromtimestamp(op.locked_until).strftime("%H:%M")
                state = f"locked until {until}"
            else:
                state = "active"
            click.echo(f"{op.username:<20} {state:<28} {op.name}")


@operator.command()
@CONFIG
@click.argument("username")
@PASSWORD
def passwd(config_path: str, username: str, password: str) -> None:
    """Set a new password; logs the operator out everywhere and lifts a lockout.

    \b
    Example:
      cangyun edge operator passwd --config edge.toml zhangsan
    """
    with _operators(config_path) as store:
        changed = store.set_password(username, password)
        click.echo(f"password of {changed.username} changed; their sessions were ended")


@operator.command()
@CONFIG
@click.argument("username")
def disable(config_path: str, username: str) -> None:
    """Disable an operator and end their sessions (their movements stay as they are).

    \b
    Example:
      cangyun edge operator disable --config edge.toml zhangsan
    """
    with _operators(config_path) as store:
        changed = store.set_enabled(username, False)
        click.echo(f"operator {changed.username} disabled")


@operator.command()
@CONFIG
@click.argument("username")
def enable(config_path: str, username: str) -> None:
    """Enable a disabled operator again; also lifts a lockout.

    \b
    Example:
      cangyun edge operator enable --config edge.toml zhangsan
    """
    with _operators(config_path) as store:
        changed = store.set_enabled(username, True)
        click.echo(f"operator {changed.username} enabled")
