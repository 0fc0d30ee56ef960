"""Deterministic crash points, for the reliability tests.

``fault("setup.ports")`` kills the process with SIGKILL (a real crash: no
``finally``, no ``atexit``, no undo) when ``BRANCHYARD_FAULT`` names that point.
A point may carry a detail (``fault("resource.pending", "db:app")``); the
variable then matches either ``resource.pending`` (the first one reached) or
``resource.pending:db:app`` (that one only). Unset, a call costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "BRANCHYARD_FAULT"

# Every point the code reaches, in the order `up` then `down` reach them
# (the reliability tests crash at each one).
POINTS: tuple[str, ...] = (
    "up.intent",            # intent recorded, before `git worktree add`
    "up.worktree",          # worktree (and branch) added, before setup
    "setup.identity",       # ledger entry claimed ("provisioning")
    "setup.ports",          # ports leased and recorded
    "resource.pending",     # a resource recorded "pending", before create
    "resource.created",     # a resource created, before it is marked "ready"
    "setup.env",            # override env file written
    "setup.ready",          # entry marked "ready", before the intent is cleared
    "snapshot.pending",     # a snapshot database recorded "pending", before the copy
    "snapshot.copied",      # the snapshot copied, before it is marked "ready"
    "pool.pending",         # (pool refill) a spare recorded "pending", before it is made
    "pool.created",         # (pool refill) a spare made, before it is marked "ready"
    "down.stopped",         # processes stopped, before `git worktree remove`
    "down.removing",        # entry marked "removing", before `git worktree remove`
    "down.removed",         # worktree removed, before its resources are released
    "teardown.marked",      # entry marked "tearing_down"
    "teardown.destroying",  # a resource marked "destroying", before destroy
    "teardown.destroyed",   # a resource destroyed, before it leaves the ledger
    "teardown.ports",       # ports released, before the entry is dropped
)


def fault(point: str, detail: str = "") -> None:
    """Crash here (SIGKILL) when ``BRANCHYARD_FAULT`` names this point."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    if wanted == point or (detail and wanted == f"{point}:{detail}"):
        os.kill(os.getpid(), signal.SIGKILL)
