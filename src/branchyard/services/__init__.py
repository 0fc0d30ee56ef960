"""Supervised dev servers ("services") of a worktree, and their logs.

A worktree's services run under one small detached supervisor process
(:mod:`~branchyard.services.supervisor`) that the CLI starts and talks to through
files in the worktree's service directory (:mod:`~branchyard.services.state`):
``plan.json`` says what should run (written by the API), ``state.json`` says what
does (written by the supervisor), ``logs/`` holds each service's output
(:mod:`~branchyard.services.logs`). :mod:`~branchyard.services.status` is the
typed read API (``ls``, ``status``, the proxy's 502 page, a dashboard).
"""

from __future__ import annotations

import os
from pathlib import Path

from branchyard.core.paths import state_dir


def services_home() -> Path:
    """Where each worktree's service directory lives (:func:`~branchyard.services.
    state.service_dir`)."""
    return state_dir() / "services"


def none_recorded() -> bool:
    """No worktree on this machine has a service directory: every worktree's list
    of recorded services is empty, known without reading (or importing) them."""
    try:
        return not os.listdir(services_home())
    except FileNotFoundError:
        return True
