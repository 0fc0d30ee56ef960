"""The branchyard commands each app is wired to run: one home, so every app
runs the same thing on create, archive and run."""

from __future__ import annotations

import re
import shlex

from branchyard.config import Config

# a hook needing a shell: it must expand `$PORT` after `branchyard run` sets it,
# not in the app's shell before (where PORT is unset or the app's own)
_SHELL = re.compile(r"[$`|&;<>()*?~\\'\"]")

SETUP = "branchyard setup"
TEARDOWN = "branchyard teardown"
OPEN_URL = "branchyard url --open"
CLAUDE_CREATE = "branchyard agents hook claude worktree-create"
CLAUDE_REMOVE = "branchyard agents hook claude worktree-remove"


def run_hook(config: Config) -> str:
    """``[hooks] run`` under `branchyard run` (the worktree's env and port), or
    `branchyard run --` when the project has none yet."""
    hook = config.hooks.run.strip()
    if _SHELL.search(hook):
        return f"branchyard run -- sh -c {shlex.quote(hook)}"
    return f"branchyard run -- {hook}".strip()
