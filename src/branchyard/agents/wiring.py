"""`agents init`: plan every app's files first, refuse if any would replace a
value of the user's (without ``--force``), then write only what changed."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from branchyard.agents.files import FileChange
from branchyard.config.model import Config
from branchyard.core.errors import UnsafeError, UsageError


class App(Protocol):
    APP: str
    FOLDER: str

    def plan(self, main: Path, config: Config, force: bool,
             conflicts: list[str]) -> list[FileChange]: ...


# app name → module (imported when used)
APPS: dict[str, str] = {
    "claude": "branchyard.agents.claude",
    "codex": "branchyard.agents.codex",
    "cursor": "branchyard.agents.cursor",
    "conductor": "branchyard.agents.conductor",
}


def app(name: str) -> App:
    module: App = importlib.import_module(APPS[name])
    return module


def parse_only(only: str | None) -> tuple[str, ...]:
    """``--only claude,codex`` → the app names, checked; all apps when ``None``."""
    if not only:
        return tuple(APPS)
    names = tuple(dict.fromkeys(n.strip().lower() for n in only.split(",") if n.strip()))
    unknown = [n for n in names if n not in APPS]
    if unknown or not names:
        raise UsageError(f"unknown app(s) for --only: {', '.join(unknown) or only}",
                         hint=f"choose from: {', '.join(APPS)}")
    return names


def detect_apps(main: Path) -> tuple[str, ...]:
    """The apps whose folder the repository already has (what `init` proposes)."""
    return tuple(n for n in APPS if (main / app(n).FOLDER).is_dir()
                 or (n == "conductor" and (main / "conductor.json").is_file()))


def init_agents(main: Path, config: Config, names: Iterable[str], *,
                force: bool = False) -> tuple[FileChange, ...]:
    """Merge branchyard's wiring into each app's file; a second run changes nothing."""
    conflicts: list[str] = []
    changes = [c for n in names for c in app(n).plan(main, config, force, conflicts)]
    if conflicts:
        raise conflict_error(conflicts)
    for item in changes:
        if item.changed:
            item.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = item.path.with_name(item.path.name + ".branchyard-tmp")
            tmp.write_text(item.text, encoding="utf-8")
            if item.path.exists():  # keep the user's permissions on their file
                tmp.chmod(item.path.stat().st_mode & 0o7777)
            tmp.replace(item.path)
    return tuple(changes)


def conflict_error(conflicts: list[str]) -> UnsafeError:
    shown = "; ".join(conflicts)
    return UnsafeError(f"these settings of yours would be replaced: {shown}",
                       hint="move those commands into branchyard.toml [hooks] (setup, run, "
                            "archive), then run again; or pass --force to replace them")
