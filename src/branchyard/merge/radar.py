"""The conflict radar: would any two live worktrees, or any worktree and its
base, conflict if merged — textually (``git merge-tree``), by migrations, or by
editing a path another worktree has locked?

Each worktree is snapshotted once (uncommitted and untracked changes included),
its changes since it forked from its base are diffed once, ``git merge-tree``
runs only for pairs :mod:`overlap` cannot rule out, and all git calls run on
threads; nothing touches a worktree, an index or the main checkout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import combinations
from pathlib import Path

from branchyard.merge.changes import (
    Change,
    changes_between,
    commits_between,
    merge_base,
    read_blobs,
)
from branchyard.merge.locks import Lock, held_by_other, read_locks
from branchyard.merge.migrations import (
    Migration,
    MigrationCollision,
    added_migrations,
    collisions,
    patterns_from_config,
)
from branchyard.merge.overlap import Footprint, footprint, surely_clean
from branchyard.merge.statecommit import Snapshot, snapshot_all
from branchyard.merge.targets import Repo, Worktree, base_tip
from branchyard.merge.threads import parallel_map
from branchyard.repo import git

BASE_PREFIX = "base:"


@dataclass(frozen=True)
class Side:
    """One worktree as the radar sees it: its snapshot and its own changes."""

    snapshot: Snapshot
    base_commit: str  # the base branch's tip
    fork: str  # merge base of the worktree and its base
    changes: tuple[Change, ...]  # fork → snapshot
    migrations: tuple[Migration, ...]  # added fork → snapshot
    base_migrations: tuple[Migration, ...]  # added fork → base tip
    footprint: Footprint  # fork → snapshot
    base_footprint: Footprint  # fork → base tip

    @property
    def name(self) -> str:
        return self.snapshot.worktree.name


@dataclass(frozen=True)
class PairResult:
    ours: str  # a worktree name
    theirs: str  # a worktree name, or "base:<branch>"
    files: tuple[str, ...]  # textually conflicting paths
    migrations: tuple[MigrationCollision, ...]
    error: str = ""  # git could not merge them at all (e.g. unrelated histories)

    @property
    def against_base(self) -> bool:
        return self.theirs.startswith(BASE_PREFIX)

    @property
    def conflict(self) -> bool:
        return bool(self.files or self.migrations or self.error)


@dataclass(frozen=True)
class LockHit:
    worktree: str  # the worktree editing the path
    path: str
    lock: Lock  # held by another worktree


@dataclass(frozen=True)
class RadarReport:
    sides: tuple[Side, ...]
    pairs: tuple[PairResult, ...]
    lock_hits: tuple[LockHit, ...]
    locks: tuple[Lock, ...] = ()  # every lock held, for people to see
    merges_run: int = 0  # pairs `git merge-tree` had to look at (the rest surely merge)

    @property
    def conflict(self) -> bool:
        return bool(self.lock_hits) or any(p.conflict for p in self.pairs)

    def conflicts_of(self, name: str) -> tuple[PairResult, ...]:
        return tuple(p for p in self.pairs if p.conflict and name in (p.ours, p.theirs))


def scan(repo: Repo) -> RadarReport:
    """Run the radar over every live worktree of ``repo``."""
    found = sides(repo, repo.worktrees)
    locks = read_locks(repo.common_dir)
    pairs, merges = _pairs(found, repo.common_dir)
    return RadarReport(found, pairs, lock_hits(found, locks), locks, merges)


def sides(repo: Repo, worktrees: Sequence[Worktree]) -> tuple[Side, ...]:
    """Snapshot ``worktrees`` and diff each against the point it forked from its base."""
    cwd = repo.common_dir
    tips = {base: base_tip(repo, base) for base in sorted({wt.base for wt in worktrees})}
    snaps = snapshot_all(worktrees)
    patterns = patterns_from_config(repo.config.merge.migrations)
    forks = parallel_map(lambda s: merge_base(s.commit, tips[s.worktree.base], cwd), snaps)
    spans = _spans(snaps, forks, tips, cwd)
    read = partial(read_blobs, cwd=cwd)

    def side(snap: Snapshot, fork: str | None) -> Side:
        tip = tips[snap.worktree.base]
        mine = spans.get((fork or tip, snap.commit), _EMPTY)
        theirs = spans.get((fork or tip, tip), _EMPTY)
        return Side(snap, tip, fork or "", mine[1], added_migrations(mine[1], patterns, read),
                    added_migrations(theirs[1], patterns, read),
                    footprint(fork or "", *mine), footprint(fork or "", *theirs))

    return tuple(side(s, f) for s, f in zip(snaps, forks, strict=True))


Span = tuple[tuple[str, ...], tuple[Change, ...]]  # commits and changes old → new
_EMPTY: Span = ((), ())


def _spans(snaps: Sequence[Snapshot], forks: Sequence[str | None], tips: Mapping[str, str],
           cwd: Path) -> dict[tuple[str, str], Span]:
    """Each distinct (fork, commit) span once: the worktrees' and their bases'."""
    wanted: set[tuple[str, str]] = set()
    for snap, fork in zip(snaps, forks, strict=True):
        tip = tips[snap.worktree.base]
        if fork:
            wanted.update({(fork, snap.commit), (fork, tip)})
    keys = sorted(wanted)
    found = parallel_map(lambda k: (commits_between(k[0], k[1], cwd),
                                    changes_between(k[0], k[1], cwd)), keys)
    return dict(zip(keys, found, strict=True))


def _pairs(sides: Sequence[Side], cwd: Path) -> tuple[tuple[PairResult, ...], int]:
    jobs: list[tuple[Side, Side | None]] = [(a, b) for a, b in combinations(sides, 2)]
    jobs += [(s, None) for s in sides]
    commits = {(a.snapshot.commit, b.snapshot.commit if b else a.base_commit)
               for a, b in jobs if not _surely_clean(a, b)}
    keys = sorted(commits)
    merged = dict(zip(keys, parallel_map(lambda k: merge_tree(k[0], k[1], cwd), keys),
                      strict=True))
    return tuple(_pair(a, b, merged) for a, b in jobs), len(keys)


def _surely_clean(a: Side, b: Side | None) -> bool:
    return surely_clean(a.footprint, b.footprint if b else a.base_footprint)


_CLEAN: tuple[tuple[str, ...], str] = ((), "")


def _pair(a: Side, b: Side | None,
          merged: Mapping[tuple[str, str], tuple[tuple[str, ...], str]]) -> PairResult:
    if b is None:
        files, error = merged.get((a.snapshot.commit, a.base_commit), _CLEAN)
        return PairResult(a.name, BASE_PREFIX + a.snapshot.worktree.base, files,
                          collisions(a.migrations, a.base_migrations), error)
    files, error = merged.get((a.snapshot.commit, b.snapshot.commit), _CLEAN)
    return PairResult(a.name, b.name, files, collisions(a.migrations, b.migrations), error)


def merge_tree(ours: str, theirs: str, cwd: Path) -> tuple[tuple[str, ...], str]:
    """(conflicting paths, error) of merging two commits, computed in memory."""
    done = git.git(["merge-tree", "--write-tree", "--name-only", "-z", "--no-messages",
                    ours, theirs], cwd, check=False)
    if done.returncode not in (0, 1):
        return (), (done.stderr.strip() or f"git merge-tree exited {done.returncode}")
    items = done.stdout.split("\0")[1:]
    files = items[:items.index("")] if "" in items else items
    return tuple(sorted(set(files))), ""


def lock_hits(sides: Sequence[Side], locks: Sequence[Lock]) -> tuple[LockHit, ...]:
    """Paths a worktree changed that another worktree has locked."""
    hits: list[LockHit] = []
    for side in sides if locks else ():
        slug = side.snapshot.worktree.slug
        for change in side.changes:
            lock = held_by_other(change.path, locks, slug)
            if lock is not None:
                hits.append(LockHit(side.name, change.path, lock))
    return tuple(hits)
