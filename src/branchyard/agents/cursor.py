"""Cursor: ``.cursor/worktrees.json`` — the commands Cursor runs in each worktree
it makes for a parallel agent (it sets ``ROOT_WORKTREE_PATH`` to the project)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from branchyard.agents import commands
from branchyard.agents.files import FileChange, Merge, change, json_text, read_json
from branchyard.config.model import Config

APP = "cursor"
FOLDER = ".cursor"
WORKTREES = ".cursor/worktrees.json"
# setup-worktree-unix overrides setup-worktree on macOS/Linux; both are set so
# the Unix one never hides a different fallback.
KEYS = ("setup-worktree-unix", "setup-worktree")


def plan(main: Path, config: Config, force: bool, conflicts: list[str]) -> list[FileChange]:
    merge = Merge(force, conflicts=conflicts)
    path = main / WORKTREES
    data = read_json(path)
    doc: dict[str, Any] = {} if data is None else data
    for key in KEYS:
        merge.claim(doc, key, [commands.SETUP], f"{WORKTREES}: {key}")
    return [change(APP, path, json_text(doc), merge, data is None)]
