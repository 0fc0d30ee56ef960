"""Stopping every process of a worktree (never the caller or its ancestors)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchyard import git, processes
from branchyard.ledger import WorktreeRecord


@dataclass(frozen=True)
class StopResult:
    path: str
    stopped: tuple[processes.ProcInfo, ...]
    killed: tuple[processes.ProcInfo, ...]  # the subset that needed SIGKILL


def stop_worktree_processes(path: str | Path, record: WorktreeRecord | None,
                            grace: float = processes.DEFAULT_GRACE,
                            others: Sequence[Path] = ()) -> StopResult:
    """``others``: the repository's other worktrees; one nested inside ``path``
    (``main/.worktrees/x``) owns the processes inside it."""
    roots = processes.processes_by_root([Path(path), *others])
    found = {p.pid: p for p in roots[os.path.realpath(path)]}
    for recorded in _recorded_alive(record):
        found.setdefault(recorded.pid, recorded)
    report = processes.stop(list(found.values()), grace)
    return StopResult(str(path), report.terminated + report.killed, report.killed)


def _recorded_alive(record: WorktreeRecord | None) -> list[processes.ProcInfo]:
    """Processes `branchyard run` started for the worktree that still run, even
    if they changed directory; a reused pid (other start time) is not ours."""
    if record is None or not record.processes:
        return []
    import psutil

    alive: list[processes.ProcInfo] = []
    for rec in record.processes:
        try:
            proc = psutil.Process(rec.pid)
            if rec.create_time and abs(proc.create_time() - rec.create_time) > 0.01:
                continue
            alive.append(processes.ProcInfo(rec.pid, proc.name(), " ".join(rec.argv), ""))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return alive


def stop_worktree(start: Path | str | None = None, *, name: str | None = None,
                  grace: float = processes.DEFAULT_GRACE) -> StopResult:
    """`branchyard stop [BRANCH]`."""
    from branchyard.api.mainworktree import is_main, main_record
    from branchyard.api.targets import resolve
    from branchyard.context import open_context

    ctx = open_context(start)
    if name is None and ctx.loc.worktree is not None and not ctx.loc.in_linked_worktree:
        name = str(ctx.repo.main_path)  # in main: main's processes
    target = resolve(ctx, name)
    record = target.record
    if record is None and is_main(ctx, target.path):  # what `branchyard run` started there
        record = main_record(ctx)
    others = [e.path for e in git.worktrees(ctx.repo.common_dir)
              if not e.bare and os.path.realpath(e.path) != os.path.realpath(target.path)]
    return stop_worktree_processes(target.path, record, grace, others)
