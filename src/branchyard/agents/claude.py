"""Claude Code: ``.claude/settings.json`` ``hooks.WorktreeCreate`` and
``hooks.WorktreeRemove``. These hooks replace Claude Code's own ``git worktree
add``/removal for ``claude --worktree``, ``EnterWorktree`` and subagents with
``isolation: worktree``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from branchyard.agents import commands
from branchyard.agents.files import FileChange, Merge, change, json_text, read_json
from branchyard.config.model import Config

APP = "claude"
FOLDER = ".claude"
SETTINGS = ".claude/settings.json"
EVENTS = {"WorktreeCreate": commands.CLAUDE_CREATE, "WorktreeRemove": commands.CLAUDE_REMOVE}


def plan(main: Path, config: Config, force: bool, conflicts: list[str]) -> list[FileChange]:
    merge = Merge(force, conflicts=conflicts)
    path = main / SETTINGS
    data = read_json(path)
    doc: dict[str, Any] = {} if data is None else data
    hooks = doc.setdefault("hooks", {})
    if "hooks" not in (data or {}):
        merge.changed = True
    for event, command in EVENTS.items():
        # WorktreeCreate takes no matcher: one group, one command hook.
        merge.claim(hooks, event, [{"hooks": [{"type": "command", "command": command}]}],
                    f"{SETTINGS}: hooks.{event}", ours=_all_ours)
    return [change(APP, path, json_text(doc), merge, data is None)]


def _all_ours(groups: Any) -> bool:
    """A hook list that runs only branchyard's commands (an older wiring)."""
    if not isinstance(groups, list) or not groups:
        return False
    cmds = [h.get("command", "") for g in groups if isinstance(g, dict)
            for h in g.get("hooks", []) if isinstance(h, dict)]
    return bool(cmds) and all(c.startswith("branchyard ") for c in cmds)
