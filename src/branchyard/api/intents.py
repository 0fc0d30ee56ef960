"""Intents: what a running `up`/`setup`/`down`/`teardown` is about to do, recorded
in the ledger before it does it, so that a crash always leaves an owner.

An intent names the process (pid and start time, so a reused pid is not taken
for it) and what it may leave behind: the worktree directory and, for `up`, the
branch it created and the commit it started from. It is cleared when the
command ends, successfully or by its own undo; one whose process is gone was
interrupted, and ``doctor --fix`` finishes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from branchyard.core.errors import WorktreeError
from branchyard.ledger import Ledger, LedgerState
from branchyard.system.proctable import start_time

SECTION = "intents"


@dataclass(frozen=True)
class Intent:
    op: str  # up | setup | down | teardown
    path: str  # the worktree it is about
    pid: int
    create_time: float  # the process's start time (psutil), to tell a reused pid apart
    branch: str = ""
    # up: it is creating the branch; down: it will delete the branch if merged
    created_branch: bool = False
    base_sha: str = ""  # up: the commit a created branch starts at
    base: str = ""  # down: the branch it must be merged into to be deleted
    checkout_sha: str = ""  # up: the commit the new worktree checks out
    force: bool = False  # down: --force (what is left of the tree may go)
    removing: bool = False  # down: `git worktree remove` has begun
    started: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        return f"{self.path}#{self.pid}#{self.op}"


def is_alive(intent: Intent) -> bool:
    """Whether the process that recorded ``intent`` still runs."""
    from branchyard.system.processes import is_recorded

    return is_recorded(intent.pid, intent.create_time)


def new_intent(op: str, path: Path | str, **fields: Any) -> Intent:
    pid = os.getpid()
    return Intent(op=op, path=os.path.abspath(path), pid=pid,
                  create_time=start_time(pid), **fields)


def intents(state: LedgerState) -> list[Intent]:
    raw: dict[str, dict[str, Any]] = state.sections.get(SECTION, {})
    return [Intent(**v) for v in raw.values()]


def record(ledger: Ledger, intent: Intent) -> None:
    """Record ``intent``; refuse when another live process works on the same
    worktree (an `up` racing a `down` of it), so one of them wins cleanly."""
    real = os.path.realpath(intent.path)
    with ledger.update() as state:
        for other in intents(state):
            if other.pid != intent.pid and os.path.realpath(other.path) == real \
                    and is_alive(other):
                raise WorktreeError(
                    f"{intent.path} is busy: `branchyard {other.op}` (pid {other.pid}) "
                    "is working on it",
                    hint=f"wait for it to finish, then run `branchyard {intent.op}` again")
        put(state, intent)


def put(state: LedgerState, intent: Intent) -> None:
    """Write ``intent`` (a new one, or one that has moved on) into ``state``."""
    state.sections.setdefault(SECTION, {})[intent.key] = asdict(intent)


def clear(ledger: Ledger, intent: Intent) -> None:
    with ledger.update() as state:
        section = state.sections.get(SECTION, {})
        section.pop(intent.key, None)
        if not section:
            state.sections.pop(SECTION, None)


def clear_dead(ledger: Ledger, path: Path | str) -> None:
    """Forget the intents of processes that are gone about ``path`` (a command
    that finishes what they began owns it now)."""
    real = os.path.realpath(path)
    with ledger.update() as state:
        section = state.sections.get(SECTION, {})
        for key, raw in list(section.items()):
            if os.path.realpath(raw["path"]) == real and not is_alive(Intent(**raw)):
                del section[key]
        if not section:
            state.sections.pop(SECTION, None)


@contextmanager
def recorded(ledger: Ledger, intent: Intent) -> Iterator[Intent]:
    """Hold ``intent`` for the block; cleared on a normal end or an exception
    (the block's own undo has run), left behind only by a crash."""
    record(ledger, intent)
    try:
        yield intent
    finally:
        clear(ledger, intent)


def live_paths(state: LedgerState) -> set[str]:
    """Real paths of worktrees a running branchyard command is working on."""
    return {os.path.realpath(i.path) for i in intents(state) if is_alive(i)}
