"""``check-edit``: may this worktree edit a path without stepping on another?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from branchyard.merge.locks import Lock, held_by_other, read_locks
from branchyard.merge.radar import sides
from branchyard.merge.targets import Repo


@dataclass(frozen=True)
class EditCheck:
    path: str  # repository-relative
    editor: str  # the worktree asking
    lock: Lock | None  # a lock another worktree holds on the path
    changed_by: tuple[str, ...]  # other worktrees with changes to the path

    @property
    def clear(self) -> bool:
        return self.lock is None and not self.changed_by


def check_edit(repo: Repo, path: Path) -> EditCheck:
    """Whether ``path`` is locked by, or changed in, another live worktree."""
    holder, rel = repo.relative(path)
    lock = held_by_other(rel, read_locks(repo.common_dir), holder.slug)
    others = [wt for wt in repo.worktrees if wt.slug != holder.slug]
    changed = tuple(side.name for side in sides(repo, others)
                    if any(change.path == rel for change in side.changes))
    return EditCheck(rel, holder.name, lock, changed)
