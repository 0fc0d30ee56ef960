"""Hotspot locks: advisory locks on files or globs, held by a worktree.

They live in the ledger under ``sections["locks"]``. Nothing enforces them;
the radar and ``check-edit`` report edits to a path another worktree holds.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from branchyard.core.errors import MergeError
from branchyard.ledger import Ledger, LedgerState

SECTION = "locks"


class LockHeldError(MergeError):
    """A path is locked by another worktree (exit 3, like a conflict)."""

    code = "locked"
    exit_code = 3


@dataclass(frozen=True)
class Lock:
    pattern: str  # repository-relative path, folder or glob
    slug: str  # the holding worktree's slug
    holder: str  # its branch (or directory) name, for people
    reason: str = ""
    created: float = 0.0

    def covers(self, path: str) -> bool:
        """Whether ``path`` (repository-relative) falls under this lock."""
        pattern = self.pattern.rstrip("/")
        return (fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/")
                or fnmatch.fnmatchcase(path, pattern + "/*"))


def read_locks(common_dir: Path, state: LedgerState | None = None) -> tuple[Lock, ...]:
    """The locks held (``state``: the ledger as the caller read it already)."""
    return _locks(state if state is not None else Ledger(common_dir).read())


def _locks(state: LedgerState) -> tuple[Lock, ...]:
    section: dict[str, Any] = state.sections.get(SECTION, {})
    return tuple(Lock(**item) for item in section.get("locks", []))


def _store(state: LedgerState, locks: Iterable[Lock]) -> None:
    kept = [asdict(lock) for lock in locks]
    if kept:
        state.sections[SECTION] = {"locks": kept}
    else:  # the last lock released: nothing stays behind
        state.sections.pop(SECTION, None)


def add_locks(common_dir: Path, slug: str, holder: str, patterns: Sequence[str],
              reason: str = "") -> tuple[Lock, ...]:
    """Lock ``patterns`` for worktree ``slug``; refuse a path another one holds."""
    with Ledger(common_dir).update() as state:
        current = _locks(state)
        for pattern in patterns:
            other = held_by_other(pattern, current, slug) or _inside(pattern, current, slug)
            if other is not None:
                raise LockHeldError(
                    f"`{pattern}` is already locked by {other.holder}"
                    + (f" ({other.reason})" if other.reason else ""),
                    hint=f"coordinate with {other.holder}, or wait for `branchyard unlock`")
        kept = [lock for lock in current if not (lock.slug == slug and lock.pattern in patterns)]
        made = tuple(Lock(p, slug, holder, reason, time.time()) for p in dict.fromkeys(patterns))
        _store(state, [*kept, *made])
    return made


def _inside(pattern: str, locks: Iterable[Lock], slug: str) -> Lock | None:
    """A lock of another worktree on something ``pattern`` would cover."""
    wide = Lock(pattern, slug, "")
    return next((lock for lock in locks
                 if lock.slug != slug and wide.covers(lock.pattern.rstrip("/"))), None)


def remove_locks(common_dir: Path, slug: str, patterns: Sequence[str] = (),
                 force: bool = False) -> tuple[Lock, ...]:
    """Release ``patterns`` (all of ``slug``'s locks when empty); with ``force``,
    also locks of other worktrees on those patterns."""
    with Ledger(common_dir).update() as state:
        current = _locks(state)
        gone = tuple(lock for lock in current if _releases(lock, slug, patterns, force))
        foreign = [p for p in patterns if not any(lock.pattern == p for lock in gone)
                   and any(lock.pattern == p for lock in current)]
        if foreign:
            holder = next(lock.holder for lock in current if lock.pattern == foreign[0])
            raise LockHeldError(f"`{foreign[0]}` is locked by {holder}, not by this worktree",
                                hint="pass --force to release another worktree's lock")
        _store(state, [lock for lock in current if lock not in gone])
    return gone


def _releases(lock: Lock, slug: str, patterns: Sequence[str], force: bool) -> bool:
    if patterns and lock.pattern not in patterns:
        return False
    return lock.slug == slug or (force and bool(patterns))


def release_locks(common_dir: Path, slug: str) -> int:
    """Release every lock worktree ``slug`` holds (for down/teardown); returns how many."""
    if not any(lock.slug == slug for lock in read_locks(common_dir)):
        return 0
    return len(remove_locks(common_dir, slug))


def held_by_other(path: str, locks: Iterable[Lock], slug: str) -> Lock | None:
    """The first lock of another worktree covering ``path`` (or the same pattern)."""
    return next((lock for lock in locks
                 if lock.slug != slug and (lock.pattern == path or lock.covers(path))), None)
