"""Releasing everything the ledger holds for a worktree (shared by down,
teardown and doctor): archive hooks, processes, resources, env file, ports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from branchyard import ports as portlib
from branchyard.api import intents
from branchyard.api.stopping import stop_worktree_processes
from branchyard.context import Context, open_context
from branchyard.errors import BranchyardError
from branchyard.events import NullReporter, Reporter
from branchyard.faults import fault
from branchyard.ledger import WorktreeRecord
from branchyard.processes import ProcInfo
from branchyard.providers import get_provider
from branchyard.providers.base import Allocation


@dataclass(frozen=True)
class TeardownResult:
    slug: str
    branch: str
    path: str
    released: tuple[str, ...] = ()  # human descriptions of what was released
    ports: tuple[int, ...] = ()
    stopped: tuple[ProcInfo, ...] = ()
    errors: tuple[BranchyardError, ...] = field(default_factory=tuple)


def teardown(start: Path | str | None = None, *, name: str | None = None,
             reporter: Reporter | None = None) -> TeardownResult:
    """Release the resources of the worktree at ``start`` (or called ``name``),
    leaving its directory and branch alone: the agent-app "archive" hook."""
    from branchyard.api.targets import resolve

    ctx = open_context(start)
    target = resolve(ctx, name)
    if target.record is None:
        branch = (target.entry.branch if target.entry else None) or ""
        return TeardownResult(slug="", branch=branch, path=str(target.path))
    return release_worktree(ctx, target.record, reporter or NullReporter())


def release_worktree(ctx: Context, record: WorktreeRecord,
                     reporter: Reporter) -> TeardownResult:
    """Tear down one ledger entry completely; the entry goes last, so a crash
    midway leaves an owner for what is left."""
    with intents.recorded(ctx.ledger, intents.new_intent("teardown", record.path)):
        return _release(ctx, record, reporter)


def _release(ctx: Context, record: WorktreeRecord, reporter: Reporter) -> TeardownResult:
    with ctx.ledger.update() as state:
        if record.slug in state.worktrees:
            state.worktrees[record.slug].state = "tearing_down"
    fault("teardown.marked")
    stopped: tuple[ProcInfo, ...] = ()
    if Path(record.path).is_dir():
        _run_archive_hooks(ctx, record, reporter)
        with reporter.phase("processes"):
            stopped = stop_worktree_processes(record.path, record).stopped
    from branchyard.services.control import release as release_services

    release_services(record.path)  # supervised dev servers: their logs, tmux session
    released: list[str] = []
    errors: list[BranchyardError] = []
    with reporter.phase("resources"):
        for res in reversed(record.resources):
            try:
                _destroy(ctx, record.slug, res.kind, res.key, res.spec)
                released.append(f"{res.kind} {res.key.partition(':')[2] or res.key}")
            except BranchyardError as err:
                errors.append(err)
    override = Path(record.path) / ctx.config.env.override_file
    if override.is_file() and not override.is_symlink():
        override.unlink()
    freed = portlib.release_ports(portlib.owner_key(ctx.repo.common_dir, record.slug))
    _release_locks(ctx, record.slug)
    fault("teardown.ports")
    if not errors:
        with ctx.ledger.update() as state:
            state.worktrees.pop(record.slug, None)
    return TeardownResult(record.slug, record.branch, record.path, tuple(released),
                          tuple(freed), stopped, tuple(errors))


def _destroy(ctx: Context, slug: str, kind: str, key: str, spec: dict[str, object]) -> None:
    with ctx.ledger.update() as state:
        rec = state.worktrees.get(slug)
        res = rec.resource(key) if rec else None
        if res is not None:
            res.state = "destroying"
    fault("teardown.destroying", key)
    get_provider(kind).destroy(Allocation(kind, key, spec))
    fault("teardown.destroyed", key)
    with ctx.ledger.update() as state:
        rec = state.worktrees.get(slug)
        if rec is not None:
            rec.resources = [r for r in rec.resources if r.key != key]


def _run_archive_hooks(ctx: Context, record: WorktreeRecord, reporter: Reporter) -> None:
    if not ctx.config.hooks.archive:
        return
    from branchyard import proc

    env = {**os.environ, **record.env}
    with reporter.phase("hooks"):
        for hook in ctx.config.hooks.archive:
            proc.run_hook(hook, cwd=Path(record.path), env=env, label="archive",
                          on_line=reporter.output)


def _release_locks(ctx: Context, slug: str) -> None:
    from branchyard.merge.locks import release_locks

    release_locks(ctx.repo.common_dir, slug)
