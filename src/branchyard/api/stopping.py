"""Stopping every process of a worktree (never the caller or its ancestors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from branchyard import processes
from branchyard.api.ownership import processes_of
from branchyard.context import Context


@dataclass(frozen=True)
class StopResult:
    path: str
    stopped: tuple[processes.ProcInfo, ...]
    killed: tuple[processes.ProcInfo, ...]  # the subset that needed SIGKILL


def stop_worktree_processes(ctx: Context, path: str | Path,
                            grace: float = processes.DEFAULT_GRACE) -> StopResult:
    """Stop what belongs to the worktree at ``path`` (see :mod:`api.ownership`):
    the processes `branchyard run` started for it wherever they are, and those
    whose cwd is inside it — except another worktree's runs and nested worktrees."""
    report = processes.stop(processes_of(ctx, path), grace)
    return StopResult(str(path), report.terminated + report.killed, report.killed)


def stop_worktree(start: Path | str | None = None, *, name: str | None = None,
                  grace: float = processes.DEFAULT_GRACE) -> StopResult:
    """`branchyard stop [BRANCH]`."""
    from branchyard.api.targets import resolve
    from branchyard.context import open_context

    ctx = open_context(start)
    target = resolve(ctx, name)
    return stop_worktree_processes(ctx, target.path, grace)
