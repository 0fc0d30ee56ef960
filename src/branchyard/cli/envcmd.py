"""`env`, the command shells and prompts call most: it also runs without click.

``main`` sends ``branchyard env [NAME] [--format F] [--json]`` here directly,
skipping click's import (a fifth of the start-up); anything else (``--help``,
a typo) goes through click as usual.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from branchyard.cli.output import Reply, respond

FORMATS = ("dotenv", "shell", "json")


def print_env(name: str | None, fmt: str, as_json: bool) -> None:
    """Render the worktree's environment; exits like every command."""
    from branchyard.api.info import env_of
    from branchyard.envfiles.files import format_dotenv, format_shell

    def body() -> Reply:
        values = env_of(name=name)
        if fmt == "json":
            text = json.dumps(values, indent=2)
        else:
            text = (format_shell if fmt == "shell" else format_dotenv)(values)
        return Reply({"env": values}, text)

    respond("env", as_json, body)


def parse_env_args(args: Sequence[str]) -> tuple[str | None, str, bool] | None:
    """``[NAME] [--format F] [--json]`` → (name, format, json); None for anything
    else, which click then parses (and explains)."""
    name: str | None = None
    fmt, as_json = "dotenv", False
    items = list(args)
    while items:
        item = items.pop(0)
        if item == "--json":
            as_json = True
        elif item == "--format" and items and items[0] in FORMATS:
            fmt = items.pop(0)
        elif item.startswith("--format=") and item.partition("=")[2] in FORMATS:
            fmt = item.partition("=")[2]
        elif not item.startswith("-") and name is None:
            name = item
        else:
            return None
    return name, fmt, as_json
