"""Finding the worktree a command is about: by NAME, or the cwd."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from branchyard.context import Context
from branchyard.core.errors import WorktreeError
from branchyard.ledger import LedgerState, WorktreeRecord
from branchyard.repo import git
from branchyard.repo.locate import Names, find_by_name


@dataclass(frozen=True)
class Target:
    path: Path
    record: WorktreeRecord | None  # None: a worktree branchyard has not set up
    entry: git.WorktreeEntry | None  # None: gone from git (removed behind our back)

    @property
    def missing(self) -> bool:
        return self.entry is None or not self.path.is_dir()


def resolve(ctx: Context, name: str | None, state: LedgerState | None = None) -> Target:
    """The worktree called ``name`` (:func:`branchyard.repo.locate.find_by_name`); the
    current one when ``name`` is None."""
    state = state if state is not None else ctx.ledger.read()
    entries = git.worktrees(ctx.repo.common_dir)
    if name is None:
        if not ctx.loc.in_linked_worktree or ctx.loc.worktree is None:
            raise WorktreeError("not inside a linked worktree",
                                hint="name the worktree (branch), or cd into it")
        return _at_path(ctx.loc.worktree, state, entries)
    found = _named(name, state, entries)
    if found is not None:
        return _at_path(found, state, entries)
    raise WorktreeError(f"no worktree for {name!r}",
                        hint="`branchyard ls` lists the worktrees and their branches")


def _named(name: str, state: LedgerState, entries: list[git.WorktreeEntry]) -> Path | None:
    """NAME among git's worktrees (first) and the ledger's (gone ones included)."""
    known = [Names(e.path, e.branch, *_ids(state.by_path(e.path))) for e in entries]
    known += [Names(Path(r.path), r.branch, r.slug, r.subdomain)
              for r in state.worktrees.values()]
    hit = find_by_name(name, known)
    return known[hit].path if hit is not None else None


def _ids(record: WorktreeRecord | None) -> tuple[str, str]:
    return (record.slug, record.subdomain) if record else ("", "")


def _at_path(path: Path, state: LedgerState, entries: list[git.WorktreeEntry]) -> Target:
    entry = next((e for e in entries if _same(e.path, path) and not e.prunable), None)
    return Target(path, state.by_path(path), entry)


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def record_for(ctx: Context, name: str | None, state: LedgerState | None = None
               ) -> WorktreeRecord:
    """The ledger entry of a worktree, resolved without calling git when possible."""
    state = state if state is not None else ctx.ledger.read()
    if name is None and ctx.loc.worktree is not None:
        record = state.by_path(ctx.loc.worktree)
        if record is not None:
            return record
    if name is not None:
        record = next((w for w in state.worktrees.values()
                       if name in (w.branch, w.slug, w.subdomain)), None)
        if record is not None:
            return record
    target = resolve(ctx, name, state)
    if target.record is None and \
            os.path.realpath(target.path) == os.path.realpath(ctx.repo.main_path):
        raise WorktreeError(f"{target.path} is the main worktree, which has no ledger entry "
                            "to name it by",
                            hint=f"run the command inside it without a name (cd {target.path})")
    if target.record is None:
        raise WorktreeError(f"{target.path} has not been set up by branchyard",
                            hint=f"run `branchyard setup` in {target.path}")
    return target.record
