"""Claiming and forgetting a worktree's frozen identity in the ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard.context import Context
from branchyard.core.errors import WorktreeError
from branchyard.core.identity import derive_identity, slug_for
from branchyard.ledger import WorktreeRecord

if TYPE_CHECKING:
    from branchyard.api.provisioning import SetupRequest


def claim_identity(ctx: Context, worktree: Path, name: str,
                   request: SetupRequest) -> tuple[WorktreeRecord, bool]:
    """The worktree's record, created (and frozen) on first setup.

    Returns ``(record, created)``. A record left by a worktree of the same name
    that was removed behind branchyard's back is adopted, with its resources.
    """
    with ctx.ledger.update() as state:
        record = state.by_path(worktree)
        if record is not None:
            return record, False
        slug = slug_for(name)
        previous = state.worktrees.get(slug)
        if previous is not None:
            if Path(previous.path).exists() and not _same(previous.path, worktree):
                raise WorktreeError(
                    f"worktree {previous.path} already has the identity {slug} "
                    f"(from {previous.branch!r})",
                    hint="use another branch name, or `branchyard down` the other one")
            previous.move_to(str(worktree))
            previous.git_id = ""  # another worktree now: the next ledger update records its id
            return previous, False
        others = state.worktrees.values()
        identity = derive_identity(
            name, taken_subdomains={w.subdomain for w in others},
            taken_indexes={w.index for w in others})
        record = WorktreeRecord(
            slug=identity.slug, subdomain=identity.subdomain, branch=identity.branch,
            index=identity.index, path=str(worktree), base=request.base,
            created_branch=request.created_branch,
            created_worktree=request.created_worktree)
        state.worktrees[record.slug] = record
        return record, True


def worktree_name(ctx: Context, worktree: Path, branch: str | None) -> str:
    """What a worktree's identity is derived from: its branch, or for a detached
    one (made by Codex, Cursor…) its directory's name — with the parent's added
    when that is just the project's name, as in Codex's ``<id>/<repo>`` layout,
    so two such worktrees never claim the same identity."""
    if branch:
        return branch
    if worktree.name in (ctx.repo.name, ctx.repo.main_path.name):
        return f"{worktree.name}-{worktree.parent.name}"
    return worktree.name


def forget(ctx: Context, slug: str) -> None:
    with ctx.ledger.update() as state:
        state.worktrees.pop(slug, None)


def _same(a: str, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
