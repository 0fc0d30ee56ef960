"""The branchyard commands each app is wired to run: one home, so every app
runs the same thing on create, archive and run."""

from __future__ import annotations

from branchyard.config import Config

SETUP = "branchyard setup"
TEARDOWN = "branchyard teardown"
OPEN_URL = "branchyard url --open"
CLAUDE_CREATE = "branchyard agents hook claude worktree-create"
CLAUDE_REMOVE = "branchyard agents hook claude worktree-remove"


def run_hook(config: Config) -> str:
    """``[hooks] run`` under `branchyard run` (the worktree's env and port), or
    `branchyard run --` when the project has none yet."""
    return f"branchyard run -- {config.hooks.run}" if config.hooks.run else "branchyard run --"
