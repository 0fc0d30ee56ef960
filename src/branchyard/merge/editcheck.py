"""``check-edit``: may this worktree edit a path without stepping on another?

It runs before every edit of an agent, so it asks git about the one path only
(pathspec-limited ``diff`` and ``status``) instead of snapshotting worktrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from branchyard.merge.changes import merge_base
from branchyard.merge.locks import Lock, held_by_other, read_locks
from branchyard.merge.targets import Repo, Worktree, base_tip
from branchyard.merge.threads import parallel_map
from branchyard.repo import git


@dataclass(frozen=True)
class EditCheck:
    path: str  # repository-relative
    editor: str  # the worktree asking
    lock: Lock | None  # a lock another worktree holds on the path
    changed_by: tuple[str, ...]  # other worktrees with changes to the path

    @property
    def clear(self) -> bool:
        return self.lock is None and not self.changed_by

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "editor": self.editor, "clear": self.clear,
                "lock": asdict(self.lock) if self.lock else None,
                "changed_by": list(self.changed_by)}

    def text(self) -> str:
        if self.clear:
            return f"{self.path}: clear to edit"
        lines = []
        if self.lock:
            lines.append(f"{self.path} is locked by {self.lock.holder}"
                         f"{': ' + self.lock.reason if self.lock.reason else ''}")
        if self.changed_by:
            lines.append(f"{self.path} is also changed in: {', '.join(self.changed_by)}")
        return "\n".join(lines)


def check_edit(repo: Repo, path: Path) -> EditCheck:
    """Whether ``path`` is locked by, or changed in, another live worktree."""
    holder, rel = repo.relative(path)
    lock = held_by_other(rel, read_locks(repo.common_dir), holder.slug)
    others = [wt for wt in repo.worktrees if wt.slug != holder.slug]
    tips = {base: base_tip(repo, base) for base in {wt.base for wt in others}}
    touched = parallel_map(lambda wt: changes_path(wt, tips[wt.base], rel), others)
    changed = tuple(wt.name for wt, hit in zip(others, touched, strict=True) if hit)
    return EditCheck(rel, holder.name, lock, changed)


def changes_path(wt: Worktree, base_commit: str, rel: str) -> bool:
    """Whether ``wt`` changed ``rel`` since it forked from its base, committed or not."""
    spec = [f":(literal){rel}"]
    status = git.git(["status", "--porcelain", "-z", "--untracked-files=all", "--", *spec],
                     wt.path).stdout
    if status:
        return True
    fork = merge_base(wt.head, base_commit, wt.path)
    if fork is None or fork == wt.head:
        return False
    return bool(git.out(["diff", "--name-only", fork, wt.head, "--", *spec], wt.path))
