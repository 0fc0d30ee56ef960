"""Which worktree each running process belongs to, for `ls`, `status`, `stop`
and `down`: the `branchyard run` records of the ledger first, then the cwd,
matched against every worktree of the repository at once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from branchyard.context import Context
from branchyard.ledger import LedgerState
from branchyard.repo import git
from branchyard.system import processes


def claims_of(state: LedgerState, main_path: Path | str) -> list[processes.Claim]:
    """Every live-looking run record, the main worktree's too (the process table
    decides which hold)."""
    from branchyard.api.mainworktree import main_runs

    runs = [(w.path, p) for w in state.worktrees.values() for p in w.processes]
    runs += [(str(main_path), p) for p in main_runs(state)]
    return [processes.Claim(path, p.pid, p.create_time, p.runner, p.runner_create_time)
            for path, p in runs]


def worktree_roots(state: LedgerState, entries: Sequence[git.WorktreeEntry]) -> list[str]:
    """Every worktree git knows (gone ones too) and every ledger entry: a
    process in a nested or a missing worktree is that worktree's."""
    paths = [str(e.path) for e in entries if not e.bare]
    paths += [w.path for w in state.worktrees.values()]
    # most entries are spelled as git spells them: each spelling resolved once
    return list(dict.fromkeys(os.path.realpath(p) for p in dict.fromkeys(paths)))


def processes_by_worktree(state: LedgerState, entries: Sequence[git.WorktreeEntry]
                          ) -> dict[str, list[processes.ProcInfo]]:
    """Real path of each worktree → its processes (one scan of the process table)."""
    return processes.processes_by_root(worktree_roots(state, entries),
                                       claims_of(state, entries[0].path if entries else ''),
                                       resolved=True)


def processes_of(ctx: Context, path: Path | str) -> list[processes.ProcInfo]:
    """The processes of the worktree at ``path``."""
    state = ctx.ledger.read()
    entries = git.worktrees(ctx.repo.common_dir)
    real = os.path.realpath(path)
    roots = [*worktree_roots(state, entries), real]
    found = processes.processes_by_root(roots, claims_of(state, ctx.repo.main_path))
    return found[real]
