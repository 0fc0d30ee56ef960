"""The library API: each function takes a frozen request, returns a frozen result,
never prints and never exits. The CLI is a thin layer over these."""

from __future__ import annotations

from branchyard.api.creation import UpRequest, UpResult, up
from branchyard.errors import BranchyardError
from branchyard.api.info import env_of, list_worktrees, status_of, worktree_path
from branchyard.api.provisioning import SetupRequest, SetupResult, setup
from branchyard.api.release import TeardownResult, teardown
from branchyard.api.removal import DownRequest, DownResult, down
from branchyard.api.stopping import StopResult, stop_worktree
from branchyard.api.views import WorktreeView

__all__ = [
    "BranchyardError",
    "DownRequest", "DownResult", "SetupRequest", "SetupResult", "StopResult",
    "TeardownResult", "UpRequest", "UpResult", "WorktreeView", "down", "env_of",
    "list_worktrees", "setup", "status_of", "stop_worktree", "teardown", "up",
    "worktree_path",
]
