"""The ``branchyard`` click group. Subcommands live in modules of this package
and are imported only when invoked, to keep start-up fast."""

from __future__ import annotations

import importlib
import importlib.util

import click

from branchyard import __version__

# The commands grouped by task, as `branchyard` with no arguments lists them:
# task → command name → "module:attribute" (a click.Command).
GROUPS: dict[str, dict[str, str]] = {
    "Start here": {
        "init": "branchyard.cli.scaffold:init",
        "up": "branchyard.cli.lifecycle:up",
        "run": "branchyard.cli.runcmd:run",
        "ls": "branchyard.cli.info:ls",
        "down": "branchyard.cli.lifecycle:down",
        "demo": "branchyard.cli.demo:demo",
    },
    "One worktree": {
        "status": "branchyard.cli.info:status",
        "env": "branchyard.cli.info:env",
        "setup": "branchyard.cli.lifecycle:setup",
        "teardown": "branchyard.cli.lifecycle:teardown",
        "stop": "branchyard.cli.lifecycle:stop",
        "path": "branchyard.cli.info:path",
        "cd": "branchyard.cli.info:cd",
        "shell": "branchyard.cli.shell:shell",
    },
    "Agent apps": {
        "agents": "branchyard.cli.agents:agents",
        "conductor": "branchyard.cli.scaffold:conductor",
        "hooks": "branchyard.cli.repair:hooks",
    },
    "Dev servers": {
        "start": "branchyard.cli.services:start",
        "restart": "branchyard.cli.services:restart",
        "logs": "branchyard.cli.services:logs",
        "attach": "branchyard.cli.services:attach",
    },
    "Databases": {
        "db": "branchyard.cli.db:db",
        "psql": "branchyard.cli.db:psql",
        "server": "branchyard.cli.server:server",
    },
    "Dev URLs and browsers": {
        "url": "branchyard.cli.web:url",
        "proxy": "branchyard.cli.web:proxy",
        "browser": "branchyard.cli.web:browser",
    },
    "Bringing work back together": {
        "conflicts": "branchyard.cli.merging:conflicts",
        "merge": "branchyard.cli.merging:merge",
        "queue": "branchyard.cli.merging:queue",
        "lock": "branchyard.cli.merging:lock",
        "unlock": "branchyard.cli.merging:unlock",
        "locks": "branchyard.cli.merging:locks",
        "check-edit": "branchyard.cli.merging:check_edit",
    },
    "Repair": {
        "doctor": "branchyard.cli.repair:doctor",
        "gc": "branchyard.cli.repair:gc",
    },
}
COMMANDS: dict[str, str] = {name: target for group in GROUPS.values()
                            for name, target in group.items()}


def _available(target: str) -> bool:
    """Whether a command's module is part of this build."""
    return importlib.util.find_spec(target.partition(":")[0]) is not None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, t in COMMANDS.items() if _available(t))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _available(target):
            return None
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One section per task, in the order a newcomer needs them."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        for title, group in GROUPS.items():
            rows = []
            for name, target in group.items():
                command = self.get_command(ctx, name) if _available(target) else None
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="branchyard")
def cli() -> None:
    """An isolated local world for every git worktree: its own databases, ports,
    dev URL, browser session and env files — and a safe way back."""
