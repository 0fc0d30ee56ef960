"""Following worktrees moved since the ledger recorded them (``git worktree
move``, ``mv`` + ``git worktree repair``): same git id and branch, a new path."""

from __future__ import annotations

import os
from collections.abc import Callable

from branchyard.ledger.records import LedgerState, Move, WorktreeRecord
from branchyard.repo import git


def find_moves(state: LedgerState, admins: list[git.WorktreeAdmin]
                ) -> list[tuple[WorktreeRecord, git.WorktreeAdmin]]:
    """Entries whose worktree git now records elsewhere: the same git id (when the
    entry has one) and the same branch, at a directory no other entry holds."""
    if not state.worktrees:
        return []
    at = {a.path: a for a in admins}  # already normalised
    unplaced = [r for r in state.worktrees.values() if not _placed(r, at)]
    if unplaced:  # rare: only now pay for resolving every path
        real_at = {os.path.realpath(a.path): a for a in admins}
        unplaced = [r for r in unplaced if not _placed(r, real_at, os.path.realpath)]
    if not unplaced:
        return []
    held = {os.path.realpath(r.path) for r in state.worktrees.values()}
    free = [a for real, a in real_at.items() if real not in held and os.path.isdir(a.path)]
    moves = []
    for record in unplaced:
        matches = [a for a in free if _same_worktree(record, a)]
        if len(matches) == 1:
            moves.append((record, matches[0]))
            free.remove(matches[0])
    return moves


def _placed(record: WorktreeRecord, at: dict[str, git.WorktreeAdmin],
            spell: Callable[[str], str] = os.path.normpath) -> bool:
    """Whether the entry is where git has its worktree (or where no git record can
    say otherwise: the main worktree, or one git forgot, which `doctor` reports)."""
    admin = at.get(spell(record.path))
    if admin is not None:
        return not record.git_id or admin.id == record.git_id
    return not record.git_id and os.path.isdir(record.path)


def _same_worktree(record: WorktreeRecord, admin: git.WorktreeAdmin) -> bool:
    if record.git_id and admin.id != record.git_id:
        return False  # git reuses an id only after the worktree was removed
    branch = git.admin_branch(admin)
    if branch is None:  # detached: only git's id tells it apart
        return bool(record.git_id)
    return branch == record.branch


def rehome(state: LedgerState, admins: list[git.WorktreeAdmin]) -> list[Move]:
    """Apply the moves found (under the lock), and record git's id of every entry
    at a worktree git knows, so that a later move is followed by id."""
    moves = []
    for record, admin in find_moves(state, admins):
        new = os.path.realpath(admin.path)
        moves.append(Move(record.slug, record.branch, record.path, new, admin.id))
        record.move_to(new)
    at = {a.path: a for a in admins}
    for record in state.worktrees.values():
        known = at.get(os.path.normpath(record.path))
        if known is not None:
            record.git_id = known.id
    return moves
