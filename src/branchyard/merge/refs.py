"""Moving a branch ref by one guarded ``update-ref``, and bringing the one
checkout that has the branch checked out along (only when that is safe)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import MergeError
from branchyard.repo import git


class RefMovedError(MergeError):
    """The ref no longer points where we read it: someone else moved it."""

    code = "ref_moved"


@dataclass(frozen=True)
class Moved:
    ref: str
    old: str
    new: str
    checkout: str  # path of the checkout brought along, "" when none has it


def checkout_of(branch: str, cwd: Path) -> Path | None:
    """The worktree that has ``branch`` checked out, if any."""
    return next((e.path for e in git.worktrees(cwd) if e.branch == branch), None)


def move_branch(branch: str, old: str, new: str, cwd: Path) -> Moved:
    """Point ``branch`` from ``old`` to ``new`` atomically (refused when it moved
    meanwhile) and fast-forward the files of a checkout on it.

    A checkout on the branch is refused up front when its local changes touch
    files the move changes, so that no checkout ever ends up behind its HEAD.
    """
    checkout = checkout_of(branch, cwd)
    if checkout is not None:
        _refuse_blocked(checkout, branch, old, new)
    done = git.git(["update-ref", "-m", "branchyard merge", f"refs/heads/{branch}", new, old],
                   cwd, check=False)
    if done.returncode != 0:
        raise _moved(branch)
    if checkout is None:
        return Moved(branch, old, new, "")
    git.git(["read-tree", "-m", "-u", old, new], checkout)
    return Moved(branch, old, new, str(checkout))


def _refuse_blocked(checkout: Path, branch: str, old: str, new: str) -> None:
    if git.out(["rev-parse", "HEAD"], checkout) != old:
        raise _moved(branch)
    if git.git(["read-tree", "-n", "-m", "-u", old, new], checkout,
               check=False).returncode != 0 or _untracked_in_the_way(checkout, old, new):
        raise MergeError(
            f"{checkout} has `{branch}` checked out with local changes to files "
            f"the merge changes; `{branch}` was not moved",
            hint=f"commit or stash the changes in {checkout}, then merge again")


def _moved(branch: str) -> RefMovedError:
    return RefMovedError(f"`{branch}` moved while the merge was being built",
                         hint="run the merge again: it is rebuilt on the newest branch tip")


def _untracked_in_the_way(checkout: Path, old: str, new: str) -> bool:
    added = git.out(["diff", "--name-only", "--diff-filter=A", "-z", old, new], checkout)
    return any(os.path.lexists(checkout / p) for p in added.split("\0") if p)
