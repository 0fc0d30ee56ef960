"""The ``branchyard`` command group. Subcommands live in modules of this package
and are imported only when invoked, to keep start-up fast."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import click

from branchyard import __version__

# command name → "module:attribute" (a click.Command)
COMMANDS: dict[str, str] = {}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="branchyard")
def cli() -> None:
    """An isolated local world for every git worktree: its own databases, ports,
    dev URL, browser session and env files — and a safe way back."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="branchyard",
                 standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
