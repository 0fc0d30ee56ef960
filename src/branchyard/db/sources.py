"""Where a configured value comes from: a literal, or ``env:VAR`` read from the
main worktree's env files. Shared by every database provider's ``plan``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import ConfigError

ENV_PREFIX = "env:"


def resolve(value: str, main_env: Mapping[str, str], entry: DatabaseConfig,
            key: str = "source") -> str:
    """``env:VAR`` → the main worktree's value of VAR; anything else unchanged."""
    if not value.startswith(ENV_PREFIX):
        return value
    var = value[len(ENV_PREFIX):]
    found = main_env.get(var) or os.environ.get(var)
    if not found:
        raise ConfigError(
            f"[[database]] {entry.name!r}: `{key} = \"{value}\"`, but {var} is not set "
            "in the main worktree's env files",
            hint=f"set {var} in the main worktree's .env file, or give the URL directly")
    return found


def is_main_worktree(worktree: Path, main_path: Path) -> bool:
    return os.path.realpath(worktree) == os.path.realpath(main_path)


def name_from_template(entry: DatabaseConfig, main: str, slug: str) -> str:
    """The worktree's database name from ``entry.database`` ("{main}_{slug}")."""
    try:
        return entry.database.format(main=main, slug=slug, name=entry.name)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"[[database]] {entry.name!r}: bad `database` template {entry.database!r} ({exc})",
            hint="use the placeholders {main}, {slug} and {name}") from None


def refuse_main(entry: DatabaseConfig, target: str) -> ConfigError:
    """The error for a worktree database that would be the main database itself."""
    return ConfigError(
        f"[[database]] {entry.name!r}: the worktree's database would be {target!r}, "
        "the main database itself",
        hint='put {slug} in `database` (the default is "{main}_{slug}"), so that each '
             "worktree gets its own")


def default_main_name(project: str, entry: DatabaseConfig) -> str:
    """The main database's name when only a server is known: ``<project>_<name>``."""
    return re.sub(r"[^a-z0-9_]+", "_", f"{project}_{entry.name}".lower()).strip("_")
