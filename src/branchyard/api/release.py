"""Releasing everything the ledger holds for a worktree (shared by down,
teardown and doctor): archive hooks, processes, resources, env file, ports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from branchyard.api import intents
from branchyard.api.stopping import stop_worktree_processes
from branchyard.context import Context, open_context
from branchyard.core.errors import BranchyardError, PartialError, WorktreeError
from branchyard.core.events import NullReporter, Reporter
from branchyard.core.faults import fault
from branchyard.db.owner import HeldElsewhereError
from branchyard.ledger import WorktreeRecord
from branchyard.providers import get_provider
from branchyard.resources.plan import Allocation
from branchyard.resources.specs import Spec, SqliteSpec
from branchyard.system import ports as portlib
from branchyard.system.processes import ProcInfo


@dataclass(frozen=True)
class Kept:
    """A resource teardown left in place, and why."""

    resource: str  # "postgres app"
    database: str  # its name (a path for SQLite)
    reason: str  # "adopted": never branchyard's to drop; "failed": kept for `doctor --fix`;
    # "held_elsewhere": the server says another clone of the repository holds it
    message: str

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "database": self.database, "reason": self.reason,
                "message": self.message}


@dataclass(frozen=True)
class TeardownResult:
    slug: str
    branch: str
    path: str
    released: tuple[str, ...] = ()  # human descriptions of what was released
    ports: tuple[int, ...] = ()
    stopped: tuple[ProcInfo, ...] = ()
    errors: tuple[BranchyardError, ...] = field(default_factory=tuple)
    kept: tuple[Kept, ...] = ()


def teardown(start: Path | str | None = None, *, name: str | None = None,
             reporter: Reporter | None = None) -> TeardownResult:
    """Release the resources of the worktree at ``start`` (or called ``name``),
    leaving its directory and branch alone: the agent-app "archive" hook."""
    from branchyard.api.targets import resolve

    ctx = open_context(start)
    if name is None and ctx.loc.worktree is not None and not ctx.loc.in_linked_worktree:
        raise WorktreeError(
            "the main worktree has nothing to tear down: its databases and files are yours",
            hint="`branchyard stop` ends what runs here; `branchyard teardown NAME` releases "
                 "a worktree's resources, `branchyard down NAME` removes it")
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
    with reporter.phase("processes"):  # a server may outlive its deleted directory
        stopped = stop_worktree_processes(ctx, record.path).stopped
    from branchyard.services.control import release as release_services

    release_services(record.path)  # supervised dev servers: their logs, tmux session
    released: list[str] = []
    errors: list[BranchyardError] = []
    kept: list[Kept] = []
    with reporter.phase("resources"):
        for res in reversed(record.resources):
            alloc = Allocation(res.kind, res.key, res.spec)
            if res.spec.adopted:
                kept.append(_adopted(alloc))
                _forget(ctx, record.slug, res.key)
                continue
            try:
                _destroy(ctx, record.slug, alloc)
                released.append(_what(alloc))
            except HeldElsewhereError as err:  # another clone's: reported, never dropped
                kept.append(Kept(_what(alloc), _name(alloc), "held_elsewhere", err.message))
                _forget(ctx, record.slug, res.key)
            except BranchyardError as err:
                errors.append(err)
                kept.append(Kept(_what(alloc), _name(alloc), "failed",
                                 f"not released ({err.message}); still in the ledger for "
                                 "`branchyard doctor --fix`"))
    override = Path(record.path) / ctx.config.env.override_file
    if override.is_file() and not override.is_symlink():
        override.unlink()
    freed = portlib.release_ports(portlib.owner_key(ctx.repo.common_dir, record.slug))
    _release_locks(ctx, record.slug)
    fault("teardown.ports")
    if not errors:
        from branchyard.merge.markers import forget_worktree

        with ctx.ledger.update() as state:
            state.worktrees.pop(record.slug, None)
            forget_worktree(state, record.path)
    return TeardownResult(record.slug, record.branch, record.path, tuple(released),
                          tuple(freed), stopped, tuple(errors), tuple(kept))


def partly_done(headline: str, res: TeardownResult | None) -> PartialError | None:
    """The error saying a teardown left resources for `doctor --fix` (None: it did not)."""
    failed = [k for k in res.kept if k.reason == "failed"] if res else []
    if not failed:
        return None
    one = len(failed) == 1
    shown = "; ".join(f"{k.resource} ({k.database})" for k in failed)
    return PartialError(
        f"{headline}, but {len(failed)} resource{'' if one else 's'} could not be "
        f"released: {shown}; the ledger keeps {'it' if one else 'them'}",
        hint="once the cause is fixed (an unreachable server: once it is back), run "
             f"`branchyard doctor --fix` to release {'it' if one else 'them'}")


def _what(alloc: Allocation[Spec]) -> str:
    return f"{alloc.kind} {alloc.key.partition(':')[2] or alloc.key}"


def _name(alloc: Allocation[Spec]) -> str:
    shown = get_provider(alloc.kind).describe(alloc)
    return str(shown.get("path") or shown.get("database") or alloc.key)


def _adopted(alloc: Allocation[Spec]) -> Kept:
    name = _name(alloc)
    message = "branchyard did not create it, so it is kept"
    if isinstance(alloc.spec, SqliteSpec) and not os.path.lexists(name):
        message = ("branchyard did not create it; it was inside the removed worktree "
                   "and went with it")
    return Kept(_what(alloc), name, "adopted", message)


def _destroy(ctx: Context, slug: str, alloc: Allocation[Spec]) -> None:
    with ctx.ledger.update() as state:
        rec = state.worktrees.get(slug)
        res = rec.resource(alloc.key) if rec else None
        if res is not None:
            res.state = "destroying"
    fault("teardown.destroying", alloc.key)
    get_provider(alloc.kind).destroy(alloc)
    fault("teardown.destroyed", alloc.key)
    _forget(ctx, slug, alloc.key)


def _forget(ctx: Context, slug: str, key: str) -> None:
    with ctx.ledger.update() as state:
        rec = state.worktrees.get(slug)
        if rec is not None:
            rec.resources = [r for r in rec.resources if r.key != key]


def _run_archive_hooks(ctx: Context, record: WorktreeRecord, reporter: Reporter) -> None:
    if not ctx.config.hooks.archive:
        return
    from branchyard.system import external

    env = {**os.environ, **record.env}
    with reporter.phase("hooks"):
        for hook in ctx.config.hooks.archive:
            external.run_hook(external.Hook(hook, Path(record.path), env, "archive"),
                              on_line=reporter.output)


def _release_locks(ctx: Context, slug: str) -> None:
    from branchyard.merge.locks import release_locks

    release_locks(ctx.repo.common_dir, slug)
