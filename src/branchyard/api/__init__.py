"""The library API: each function takes a frozen request, returns a frozen result,
never prints and never exits. The CLI is a thin layer over these.

Names are imported on first use, so a fast command (``env``) does not pay for
the modules of a slow one (``up``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from branchyard.api.creation import UpRequest, UpResult, up
    from branchyard.api.doctor import DoctorReport, DoctorRequest, doctor
    from branchyard.api.info import env_of, list_worktrees, status_of, worktree_path
    from branchyard.api.provisioning import SetupRequest, SetupResult, setup
    from branchyard.api.release import TeardownResult, teardown
    from branchyard.api.removal import DownRequest, DownResult, down
    from branchyard.api.stopping import StopResult, stop_worktree
    from branchyard.api.views import WorktreeView
    from branchyard.core.errors import BranchyardError

__all__ = [
    "BranchyardError", "DoctorReport", "DoctorRequest", "DownRequest", "DownResult",
    "SetupRequest", "SetupResult", "StopResult", "TeardownResult", "UpRequest", "UpResult",
    "WorktreeView", "doctor", "down", "env_of", "list_worktrees", "setup", "status_of",
    "stop_worktree", "teardown", "up", "worktree_path",
]

_WHERE = {
    "UpRequest": "creation", "UpResult": "creation", "up": "creation",
    "env_of": "info", "list_worktrees": "info", "status_of": "info", "worktree_path": "info",
    "SetupRequest": "provisioning", "SetupResult": "provisioning", "setup": "provisioning",
    "TeardownResult": "release", "teardown": "release",
    "DownRequest": "removal", "DownResult": "removal", "down": "removal",
    "StopResult": "stopping", "stop_worktree": "stopping", "WorktreeView": "views",
    "DoctorRequest": "doctor", "DoctorReport": "doctor", "doctor": "doctor",
    "BranchyardError": "errors",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'branchyard.api' has no attribute {name!r}")
    module = "branchyard.core.errors" if where == "errors" else f"branchyard.api.{where}"
    return getattr(importlib.import_module(module), name)
