"""Telling, without running git, that two sides cannot conflict.

Two sides forked from the same commit, sharing no commit since, that touch
disjoint paths (no path of one is a folder of the other) and delete nothing
(so no rename or directory-rename detection can pair their files) merge
cleanly: every merge conflict needs a path changed on both sides, a
file/folder clash, or a deletion. The radar only runs ``git merge-tree`` for
the pairs this cannot rule out — with 20 worktrees that is most of 210 merges
saved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from branchyard.merge.changes import Change


@dataclass(frozen=True)
class Footprint:
    """What one side did since its fork, in the shape the test needs."""

    fork: str
    commits: frozenset[str]  # fork..side
    paths: frozenset[str]
    folders: frozenset[str]  # every parent folder of ``paths``
    deletes: bool


def footprint(fork: str, commits: Iterable[str], changes: Iterable[Change]) -> Footprint:
    found = tuple(changes)
    paths = frozenset(c.path for c in found)
    folders = frozenset(p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1))
    return Footprint(fork, frozenset(commits), paths, folders,
                     any(c.status == "D" for c in found))


def surely_clean(a: Footprint, b: Footprint) -> bool:
    """True only when merging the two sides cannot conflict."""
    if not a.fork or a.fork != b.fork or a.deletes or b.deletes:
        return False
    if a.commits & b.commits:
        return False  # their real merge base is later than the fork
    return not (a.paths & b.paths or a.paths & b.folders or b.paths & a.folders)
