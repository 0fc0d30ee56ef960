"""`down`: stop, remove the worktree, release its resources, delete a merged branch."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from branchyard.api import halfmade, intents
from branchyard.api.release import TeardownResult, release_worktree
from branchyard.api.stopping import stop_worktree_processes
from branchyard.api.targets import Target, resolve
from branchyard.context import Context, open_context
from branchyard.core.errors import UnsafeError, WorktreeError
from branchyard.core.events import NullReporter, Reporter
from branchyard.core.faults import fault
from branchyard.core.paths import is_inside
from branchyard.repo import git
from branchyard.resources.specs import SqliteSpec
from branchyard.system.processes import ProcInfo


@dataclass(frozen=True)
class DownRequest:
    name: str
    force: bool = False
    keep_branch: bool = False
    cwd: Path | None = None


@dataclass(frozen=True)
class DownResult:
    branch: str | None
    path: str
    removed_worktree: bool
    was_missing: bool
    branch_deleted: bool
    branch_kept_reason: str
    stopped: tuple[ProcInfo, ...]
    teardown: TeardownResult | None


def down(request: DownRequest, reporter: Reporter | None = None) -> DownResult:
    reporter = reporter or NullReporter()
    ctx = open_context(request.cwd, main_config=True)
    target = resolve(ctx, request.name)
    _refuse_unsafe(ctx, target, request)
    record = target.record
    intent = intents.new_intent(
        "down", target.path, branch=record.branch if record else "",
        created_branch=bool(record and record.created_branch and not request.keep_branch),
        base=record.base if record else "", force=request.force or _forced_before(ctx, target))
    with intents.recorded(ctx.ledger, intent):
        result = _take_down(ctx, target, request, reporter, intent)
    intents.clear_dead(ctx.ledger, target.path)  # an interrupted `down` of it: finished now
    return result


def _take_down(ctx: Context, target: Target, request: DownRequest,
               reporter: Reporter, intent: intents.Intent) -> DownResult:
    branch = target.entry.branch if target.entry else (
        target.record.branch if target.record else None)
    stopped: tuple[ProcInfo, ...] = ()
    was_missing = target.missing
    resuming = _resuming(target) and target.path.exists()
    if not was_missing or resuming:
        with reporter.phase("processes"):
            stopped = stop_worktree_processes(ctx, target.path).stopped
        fault("down.stopped")
        _begin_removal(ctx, target, intent)
        fault("down.removing")
        with reporter.phase("worktree"):
            if resuming:  # what an interrupted `down` left: git calls it all "deleted"
                halfmade.finish_removal(ctx, target.path,
                                        branch=branch or "", force=intent.force)
            else:
                force = ["--force", "--force"] if request.force else []
                git.git(["worktree", "remove", *force, str(target.path)],
                        ctx.repo.main_path)
    fault("down.removed")
    git.git(["worktree", "prune"], ctx.repo.main_path, check=False)
    torn = release_worktree(ctx, target.record, reporter) if target.record else None
    deleted, reason = _delete_branch(ctx, branch, target, request)
    return DownResult(branch, str(target.path), not was_missing, was_missing,
                      deleted, reason, stopped + (torn.stopped if torn else ()), torn)


def _refuse_unsafe(ctx: Context, target: Target, request: DownRequest) -> None:
    if os.path.realpath(target.path) == os.path.realpath(ctx.repo.main_path):
        raise WorktreeError("that is the main worktree; branchyard never removes it")
    cwd = os.path.realpath(request.cwd or os.getcwd())
    root = os.path.realpath(target.path)
    if is_inside(cwd, root):
        raise UnsafeError(f"you are inside {target.path}",
                          hint="cd out of the worktree first (e.g. `cd "
                               f"{ctx.repo.main_path}`), then run `branchyard down` again")
    if target.missing or request.force or _resuming(target):
        return  # a half-removed tree is judged by halfmade.finish_removal
    held = _adopted_files_inside(target)
    if held:
        raise UnsafeError(f"{target.path} holds {', '.join(held)}, a database branchyard "
                          "did not create (adopted); removing the worktree would delete it",
                          hint="move it out of the worktree first, or pass --force to delete "
                               "it with the worktree")
    changed = git.status_porcelain(target.path)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more"
                                          if len(changed) > 5 else "")
        raise UnsafeError(f"{target.path} has uncommitted or untracked changes: {shown}",
                          hint="commit or stash them, or pass --force to discard them")


def _adopted_files_inside(target: Target) -> list[str]:
    """Adopted database files (SQLite) that live inside the worktree's directory."""
    root = os.path.realpath(target.path) + os.sep
    resources = target.record.resources if target.record else []
    paths = [r.spec.path for r in resources if isinstance(r.spec, SqliteSpec) and r.spec.adopted]
    return [p for p in paths if os.path.realpath(p).startswith(root) and os.path.lexists(p)]


def _resuming(target: Target) -> bool:
    """Whether an earlier `down` of this worktree was interrupted while removing it."""
    return target.record is not None and target.record.state == "removing"


def _forced_before(ctx: Context, target: Target) -> bool:
    """Whether the interrupted `down` being finished was given --force."""
    real = os.path.realpath(target.path)
    return _resuming(target) and any(
        i.op == "down" and i.force and os.path.realpath(i.path) == real
        for i in intents.intents(ctx.ledger.read()))


def _begin_removal(ctx: Context, target: Target, intent: intents.Intent) -> None:
    """Say, in one write, that the removal begins: from here on the worktree is
    being removed (an interrupt leaves it half-deleted, and the removal is
    finished by `doctor --fix` or `down` again), never `ready`."""
    with ctx.ledger.update() as state:
        intents.put(state, replace(intent, removing=True))
        record = state.worktrees.get(target.record.slug) if target.record else None
        if record is not None:
            record.state = "removing"


def _delete_branch(ctx: Context, branch: str | None, target: Target,
                   request: DownRequest) -> tuple[bool, str]:
    main = ctx.repo.main_path
    if branch is None or not git.branch_exists(branch, main):
        return False, "no branch" if branch is None else "already gone"
    if request.keep_branch:
        return False, "kept (--keep-branch)"
    if target.record is not None and not target.record.created_branch and not request.force:
        return False, "kept: branchyard did not create it"
    base = git.base_branch(target.record.base if target.record else "",
                           ctx.config.project.base, main)
    if git.is_ancestor(branch, base, main):
        git.git(["branch", "-D", branch], main)
        return True, f"merged into {base}"
    if request.force:
        git.git(["branch", "-D", branch], main)
        return True, "deleted unmerged (--force)"
    return False, f"kept: it has commits not in {base} (use --force to delete it)"
