"""Codex app: ``.codex/environments/environment.toml`` — a setup script when
Codex creates a worktree, a cleanup script before it removes one, and top-bar
actions (Run, Open)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit

from branchyard.agents import commands
from branchyard.agents.files import FileChange, Merge, change, read_toml, table
from branchyard.config.model import Config

APP = "codex"
FOLDER = ".codex"
ENVIRONMENT = ".codex/environments/environment.toml"
# Codex runs the scripts with CODEX_WORKTREE_PATH set to the new worktree (and
# CODEX_SOURCE_TREE_PATH to the project); `cd` there so the cwd never matters.
_IN_WORKTREE = 'cd "${CODEX_WORKTREE_PATH:-.}" && '
_POSIX = ("darwin", "linux")  # platform overrides a POSIX shell runs


def plan(main: Path, config: Config, force: bool, conflicts: list[str]) -> list[FileChange]:
    merge = Merge(force, conflicts=conflicts)
    path = main / ENVIRONMENT
    doc = read_toml(path)
    created = doc is None
    if doc is None:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("Written by `branchyard agents init`; edit freely."))
        doc["version"] = 1
        doc["name"] = config.project.name or main.name
    for section, command in (("setup", commands.SETUP), ("cleanup", commands.TEARDOWN)):
        _scripts(table(doc, section), section, command, merge)
    _action(doc, merge, "Run", "run", _script(commands.RUN))
    _action(doc, merge, "Open", "tool", _script(commands.OPEN_URL))
    return [change(APP, path, tomlkit.dumps(doc), merge, created)]


# Icons: "run" and "tool" are the values seen in Codex-written files; Codex's
# documentation does not list them.


def _script(command: str) -> Any:
    text = _IN_WORKTREE + command
    return tomlkit.string(text, literal="'" not in text)


def _scripts(section: Any, name: str, command: str, merge: Merge) -> None:
    """The default script, and the macOS/Linux ones where the file has them: Codex
    runs a platform's script instead of the default."""
    merge.claim(section, "script", _script(command), f"{ENVIRONMENT}: {name}.script")
    for platform in _POSIX:
        if platform in section and hasattr(section[platform], "get"):
            merge.claim(section[platform], "script", _script(command),
                        f"{ENVIRONMENT}: {name}.{platform}.script")


def _action(doc: Any, merge: Merge, name: str, icon: str, command: str) -> None:
    if "actions" not in doc:
        doc.add(tomlkit.nl())
        doc["actions"] = tomlkit.aot()
    for action in doc["actions"]:
        if action.get("name") == name:
            merge.claim(action, "command", command, f"{ENVIRONMENT}: actions[{name}].command")
            return
    item = tomlkit.table()
    item.update({"name": name, "icon": icon, "command": command})
    doc["actions"].append(item)
    merge.changed = True
