"""Snapshots: a worktree's committed, uncommitted and untracked (non-ignored)
state as one commit, made without touching the worktree or its index.

``git add -A`` runs against a copy of the worktree's index
(``GIT_INDEX_FILE``), so stat information is reused and the real index is
never written. Snapshot commits have a fixed author and date:
the same content always gives the same commit id, which makes results cacheable.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from branchyard.core.errors import GitError
from branchyard.merge.targets import Worktree
from branchyard.merge.threads import parallel_map
from branchyard.repo import git

_FIXED_IDENTITY = {
    "GIT_AUTHOR_NAME": "branchyard", "GIT_AUTHOR_EMAIL": "branchyard@localhost",
    "GIT_COMMITTER_NAME": "branchyard", "GIT_COMMITTER_EMAIL": "branchyard@localhost",
    "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000",
}


@dataclass(frozen=True)
class Snapshot:
    """What a worktree holds right now, as a commit on top of its HEAD."""

    worktree: Worktree
    commit: str  # HEAD itself when the worktree is clean
    tree: str
    dirty: bool


def snapshot_all(worktrees: Sequence[Worktree]) -> list[Snapshot]:
    """Snapshot every worktree once, in parallel."""
    head_trees = _trees([wt.head for wt in worktrees], worktrees[0].path) if worktrees else []
    pairs = list(zip(worktrees, head_trees, strict=True))
    return parallel_map(lambda pair: snapshot_worktree(pair[0], pair[1]), pairs)


def snapshot_worktree(wt: Worktree, head_tree: str | None = None) -> Snapshot:
    """Snapshot one worktree; ``head_tree`` is HEAD's tree when already known."""
    tree = _worktree_tree(wt.path)
    if head_tree is None:
        head_tree = _trees([wt.head], wt.path)[0]
    if tree == head_tree:
        return Snapshot(wt, wt.head, tree, dirty=False)
    commit = git.out(["commit-tree", tree, "-p", wt.head, "-m", "branchyard snapshot"],
                     wt.path, env=_FIXED_IDENTITY)
    return Snapshot(wt, commit, tree, dirty=True)


def _worktree_tree(path: Path) -> str:
    """The tree of everything in the worktree, built in an index of our own.

    That index is kept in the worktree's git dir (git removes it with the
    worktree) and copied afresh whenever the real index changes; between
    copies, its stat information, refreshed by the previous run, spares
    re-reading every file. A second radar running at the same moment, or any
    trouble with the kept index, falls back to a throw-away copy.
    """
    index = _index_file(path)
    kept = index.with_name("branchyard-radar.index")
    try:
        # Not "<index>.lock": that name is git's own lock of the index file.
        with FileLock(str(index.with_name("branchyard-radar.flock")), timeout=0):
            _refresh(index, kept)
            return _add_all(path, kept)
    except (Timeout, GitError):  # busy, or a stale git lock on our index
        with tempfile.TemporaryDirectory(prefix="branchyard-snap-") as tmp:
            temp = Path(tmp) / "index"
            _copy(index, temp)
            return _add_all(path, temp)


def _refresh(index: Path, kept: Path) -> None:
    stamp_file = kept.with_suffix(".stamp")
    stamp = _stamp(index)
    if kept.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    _copy(index, kept)
    stamp_file.write_text(stamp)


def _stamp(index: Path) -> str:
    try:
        st = index.stat()
    except FileNotFoundError:
        return "none"
    return f"{st.st_mtime_ns} {st.st_size} {st.st_ino}"


def _copy(index: Path, target: Path) -> None:
    if index.exists():
        # copy2 keeps the mtime: git's racy-clean check compares file mtimes with
        # the index's, and a fresh mtime would hide same-size edits made in the
        # second the index was written.
        shutil.copy2(index, target)
    else:
        target.unlink(missing_ok=True)


def _add_all(path: Path, index: Path) -> str:
    env = {"GIT_INDEX_FILE": str(index)}
    # --ignore-errors: an unreadable file must not hide every other change.
    git.git(["add", "-A", "--ignore-errors"], path, env=env, check=False)
    return git.out(["write-tree"], path, env=env)


def _index_file(path: Path) -> Path:
    """The worktree's index, read from its ``.git`` file (no subprocess)."""
    dotgit = path / ".git"
    if dotgit.is_file():
        text = dotgit.read_text(encoding="utf-8").strip()
        gitdir = Path(text.removeprefix("gitdir:").strip())
        return (gitdir if gitdir.is_absolute() else path / gitdir) / "index"
    return dotgit / "index"


def _trees(commits: Sequence[str], cwd: Path) -> list[str]:
    if not commits:
        return []
    return git.out(["rev-parse", *(f"{c}^{{tree}}" for c in commits)], cwd).split("\n")
