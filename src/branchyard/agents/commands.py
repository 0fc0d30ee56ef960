"""The branchyard commands each app is wired to run: one home, so every app
runs the same thing on create, archive and run."""

from __future__ import annotations

SETUP = "branchyard setup"
TEARDOWN = "branchyard teardown"
OPEN_URL = "branchyard url --open"
CLAUDE_CREATE = "branchyard agents hook claude worktree-create"
CLAUDE_REMOVE = "branchyard agents hook claude worktree-remove"


# `branchyard run` with no command runs `[hooks] run` through the shell, read when
# it runs: `$PORT` expands to the worktree's port (not the app's shell's), and a
# changed hook needs no re-wiring.
RUN = "branchyard run"
