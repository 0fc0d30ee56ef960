"""Installed dependency trees (``[[deps]]``): reused from the main worktree when
the lockfiles match, installed otherwise. See docs/deps.md."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from branchyard.config.model import DepsConfig
from branchyard.core.errors import ConfigError
from branchyard.deps.install import Runner
from branchyard.deps.lockstamp import lockfile_hash, read_stamp
from branchyard.deps.reuse import MODES, DepsTarget, Outcome, Session, decide, ensure_deps
from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import DepsSpec
from branchyard.system.fsprobe import FsProbe


class DepsProvider:
    kind = "deps"

    def __init__(self) -> None:
        # One probe per process: each filesystem pair is probed once per setup.
        self._probe = FsProbe()

    def plan(self, ctx: PlanContext) -> list[Allocation[DepsSpec]]:
        """One allocation per ``[[deps]]`` entry; none in the main worktree."""
        if os.path.realpath(ctx.worktree) == os.path.realpath(ctx.repo.main_path):
            return []
        return [_allocation(i, entry, ctx) for i, entry in enumerate(ctx.config.deps)]

    def found(self, alloc: Allocation[DepsSpec]) -> bool:
        # The tree lives in the worktree and is never removed on its own.
        return False

    def exists(self, alloc: Allocation[DepsSpec]) -> bool:
        """True when create would have nothing to do."""
        target = target_of(alloc.spec)
        if not os.path.lexists(target.dest):
            return False
        stamp = read_stamp(target.dest)
        return stamp is None or stamp.lock_hash == lockfile_hash(
            target.worktree, target.lockfiles)

    def create(self, alloc: Allocation[DepsSpec], ctx: PlanContext) -> bool:
        # The ledger keeps the spec of the first setup; the install command,
        # smoke check and mode come from today's config when the entry is still there.
        target = _current(target_of(alloc.spec), ctx.config.deps)
        runner = Runner(env={**os.environ, **ctx.base_env}, on_line=ctx.reporter.output)
        outcome = ensure_deps(target, Session(runner, self._probe, ctx.reporter))
        ctx.reporter.message(describe_outcome(target.dir, outcome))
        return outcome.changed

    def destroy(self, alloc: Allocation[DepsSpec]) -> None:
        """Nothing to undo beyond the worktree's own removal: the tree lives in
        the worktree, and the main worktree's tree is never touched."""

    def env(self, alloc: Allocation[DepsSpec]) -> dict[str, str]:
        return {}

    def describe(self, alloc: Allocation[DepsSpec]) -> dict[str, Any]:
        spec = alloc.spec
        return {"dir": spec.dir, "strategy": spec.strategy, "mode": spec.mode,
                "lock_hash": spec.lock_hash[:12], "reason": spec.reason}


def describe_outcome(directory: str, outcome: Outcome) -> str:
    """One line saying what happened to a tree, for the reporter."""
    if outcome.stats is not None:
        s = outcome.stats
        return (f"{directory}: reused by {outcome.method}: {s.files} files, {s.links} "
                f"symlinks in {s.seconds:.2f} s")
    return f"{directory}: {outcome.action} ({outcome.reason})"


def _allocation(index: int, entry: DepsConfig, ctx: PlanContext) -> Allocation[DepsSpec]:
    if entry.mode not in MODES:
        raise ConfigError(f"deps[{index}].mode: {entry.mode!r} is not one of "
                          f"{', '.join(MODES)}", hint="fix the mode in branchyard.toml")
    target = DepsTarget(dir=entry.dir, worktree=ctx.worktree, main=ctx.repo.main_path,
                        lockfiles=tuple(entry.lockfiles), install=entry.install,
                        mode=entry.mode, smoke=entry.smoke)
    decision = decide(target)
    spec = DepsSpec(dir=entry.dir, worktree=str(ctx.worktree), main=str(ctx.repo.main_path),
                    lockfiles=tuple(entry.lockfiles), install=entry.install, mode=entry.mode,
                    smoke=entry.smoke, lock_hash=decision.lock_hash,
                    main_lock_hash=decision.main_lock_hash, strategy=decision.strategy,
                    reason=decision.reason)
    return Allocation("deps", f"deps:{entry.dir}", spec)


def _current(target: DepsTarget, entries: tuple[DepsConfig, ...]) -> DepsTarget:
    entry = next((e for e in entries if e.dir == target.dir), None)
    if entry is None:
        return target
    return replace(target, lockfiles=tuple(entry.lockfiles), install=entry.install,
                   mode=entry.mode, smoke=entry.smoke)


def target_of(spec: DepsSpec) -> DepsTarget:
    """The tree a ledger record names, as it was planned."""
    return DepsTarget(dir=spec.dir, worktree=Path(spec.worktree), main=Path(spec.main),
                      lockfiles=spec.lockfiles, install=spec.install, mode=spec.mode,
                      smoke=spec.smoke)
