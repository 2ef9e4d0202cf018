"""Docs and CLI help stay in sync with the code."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cangyun.cli import SUBCOMMANDS, main
from devtools.settings_doc import render

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_current():
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run python -m devtools.settings_doc"
    )


def _commands(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, (*prefix, name))


ALL = list(_commands(main, click.Context(main)))


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = dict(ALL)[path]
    if not isinstance(command, click.Group):
        assert "Example" in result.output, f"cangyun {' '.join(path)} --help has no example"


def test_every_subcommand_is_listed():
    assert {p[0] for p, _ in ALL} == set(SUBCOMMANDS)


def test_readme_quick_start_is_exactly_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]
