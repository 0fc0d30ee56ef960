"""The ``branchyard`` click group. Subcommands live in modules of this package
and are imported only when invoked, to keep start-up fast."""

from __future__ import annotations

import importlib
import importlib.util

import click

from branchyard import __version__

# command name → "module:attribute" (a click.Command)
COMMANDS: dict[str, str] = {
    # lifecycle (cli/lifecycle.py, cli/info.py, cli/scaffold.py)
    "init": "branchyard.cli.scaffold:init",
    "conductor": "branchyard.cli.scaffold:conductor",
    "agents": "branchyard.cli.agents:agents",
    "demo": "branchyard.cli.demo:demo",
    "up": "branchyard.cli.lifecycle:up",
    "setup": "branchyard.cli.lifecycle:setup",
    "down": "branchyard.cli.lifecycle:down",
    "teardown": "branchyard.cli.lifecycle:teardown",
    "stop": "branchyard.cli.lifecycle:stop",
    "run": "branchyard.cli.runcmd:run",
    "ls": "branchyard.cli.info:ls",
    "status": "branchyard.cli.info:status",
    "env": "branchyard.cli.info:env",
    "path": "branchyard.cli.info:path",
    "cd": "branchyard.cli.info:cd",
    "shell": "branchyard.cli.shell:shell",
    # databases (cli/db.py)
    "db": "branchyard.cli.db:db",
    "psql": "branchyard.cli.db:psql",
    "server": "branchyard.cli.db:server",
    # dev URLs and browsers (cli/web.py)
    "proxy": "branchyard.cli.web:proxy",
    "url": "branchyard.cli.web:url",
    "browser": "branchyard.cli.web:browser",
    # bringing work back together (cli/merging.py)
    "conflicts": "branchyard.cli.merging:conflicts",
    "merge": "branchyard.cli.merging:merge",
    "queue": "branchyard.cli.merging:queue",
    "lock": "branchyard.cli.merging:lock",
    "unlock": "branchyard.cli.merging:unlock",
    "locks": "branchyard.cli.merging:locks",
    "check-edit": "branchyard.cli.merging:check_edit",
    # reliability (cli/repair.py)
    "doctor": "branchyard.cli.repair:doctor",
    "gc": "branchyard.cli.repair:gc",
    "hooks": "branchyard.cli.repair:hooks",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # Commands whose module is not part of this build are not listed.
        return sorted(n for n, t in COMMANDS.items()
                      if importlib.util.find_spec(t.partition(":")[0]) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or importlib.util.find_spec(target.partition(":")[0]) is None:
            return None
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="branchyard")
def cli() -> None:
    """An isolated local world for every git worktree: its own databases, ports,
    dev URL, browser session and env files — and a safe way back."""
