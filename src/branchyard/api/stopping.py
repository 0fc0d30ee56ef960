"""Stopping every process of a worktree (never the caller or its ancestors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from branchyard.api.ownership import processes_of
from branchyard.context import Context
from branchyard.system import processes


@dataclass(frozen=True)
class StopResult:
    path: str
    stopped: tuple[processes.ProcInfo, ...]
    killed: tuple[processes.ProcInfo, ...]  # the subset that needed SIGKILL


def stop_worktree_processes(ctx: Context, path: str | Path,
                            grace: float = processes.DEFAULT_GRACE) -> StopResult:
    """Stop what belongs to the worktree at ``path`` (see :mod:`api.ownership`):
    its supervised services first (so the supervisor never restarts one this is
    stopping), then the processes `branchyard run` started for it wherever they
    are, and those whose cwd is inside it — except another worktree's runs and
    nested worktrees."""
    from branchyard.services.control import shutdown

    supervised = shutdown(path, grace)
    report = processes.stop(processes_of(ctx, path), grace)
    _forget_ended(ctx)
    return StopResult(str(path), supervised + report.terminated + report.killed,
                      report.killed)


def _forget_ended(ctx: Context) -> None:
    """Drop run records whose process group has ended (a wrapper killed with
    SIGKILL never forgets its child): a recorded pid must not claim whatever
    group reuses that number one day."""
    if not any(w.processes for w in ctx.ledger.read().worktrees.values()):
        return
    with ctx.ledger.update() as state:
        for record in state.worktrees.values():
            record.processes = [p for p in record.processes
                                if processes.group_alive(p.pid, p.create_time)]


def stop_worktree(start: Path | str | None = None, *, name: str | None = None,
                  grace: float = processes.DEFAULT_GRACE) -> StopResult:
    """`branchyard stop [BRANCH]`."""
    from branchyard.api.targets import resolve
    from branchyard.context import open_context

    ctx = open_context(start)
    if name is None and ctx.loc.worktree is not None and not ctx.loc.in_linked_worktree:
        name = str(ctx.repo.main_path)  # in main: main's processes
    target = resolve(ctx, name)
    return stop_worktree_processes(ctx, target.path, grace)
