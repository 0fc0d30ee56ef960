"""Repairing what `doctor` found, using only what the ledger says.

Each repair re-reads the ledger first (the world may have moved since the
survey), acts only on what branchyard recorded, never removes a worktree with
changes or a branch with commits of its own, and says what it did.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from branchyard.api import halfmade, intents
from branchyard.api.drift import UNFINISHED, Finding
from branchyard.api.intents import Intent
from branchyard.api.release import release_worktree
from branchyard.api.stopping import stop_worktree_processes
from branchyard.context import Context
from branchyard.core.errors import BranchyardError
from branchyard.core.events import NullReporter
from branchyard.repo import git


@dataclass(frozen=True)
class Repair:
    finding: Finding
    done: str  # what was done, for people
    error: BranchyardError | None = None


def repair(finding: Finding, action: Callable[[Finding], str] | None) -> Repair:
    """Apply the fix of one finding; a failure is reported, not raised."""
    if action is None or not finding.fix:
        return Repair(finding, "nothing to do (report only)")
    try:
        return Repair(finding, action(finding))
    except BranchyardError as err:
        return Repair(finding, "failed", err)


def release_entry(ctx: Context, slug: str) -> str:
    """Stop what runs inside a worktree and release everything its entry holds."""
    record = ctx.ledger.read().worktrees.get(slug)
    if record is None:
        return "already resolved"
    stopped = stop_worktree_processes(ctx, record.path).stopped
    torn = release_worktree(ctx, record, NullReporter())
    if torn.errors:
        raise torn.errors[0]
    git.git(["worktree", "prune"], ctx.repo.main_path, check=False)
    parts = [f"stopped pids {', '.join(str(p.pid) for p in stopped)}"] if stopped else []
    parts.append(f"released {'; '.join(torn.released) or 'no resources'}")
    if torn.ports:
        parts.append(f"freed ports {', '.join(map(str, torn.ports))}")
    parts.append(f"dropped ledger entry {slug}")
    return "; ".join(parts)


def _missing(ctx: Context, finding: Finding) -> str:
    record = ctx.ledger.read().worktrees.get(finding.ref[0])
    if record is not None and Path(record.path).is_dir():
        return "skipped: the worktree is back"  # e.g. `up` of the same branch adopted it
    return release_entry(ctx, finding.ref[0])


def _stuck(ctx: Context, finding: Finding) -> str:
    record = ctx.ledger.read().worktrees.get(finding.ref[0])
    if record is not None and record.state == "ready":
        return "skipped: its setup has finished since"
    return release_entry(ctx, finding.ref[0])


def _resource(ctx: Context, finding: Finding) -> str:
    from branchyard.providers import get_provider
    from branchyard.resources.plan import Allocation

    slug, key = finding.ref
    record = ctx.ledger.read().worktrees.get(slug)
    res = record.resource(key) if record else None
    if res is None or res.state not in UNFINISHED:
        return "already resolved"
    with ctx.ledger.update() as state:
        live = state.worktrees[slug].resource(key)
        if live is not None:
            live.state = "destroying"
    from branchyard.db.owner import HeldElsewhereError

    held = ""
    try:
        get_provider(res.kind).destroy(Allocation(res.kind, res.key, res.spec))  # adopted: kept
    except HeldElsewhereError as err:  # another clone's: reported, never dropped
        held = err.message
    with ctx.ledger.update() as state:
        rec = state.worktrees.get(slug)
        if rec is not None:
            rec.resources = [r for r in rec.resources if r.key != key]
    if held:
        return f"kept {res.kind} {key} and removed it from the ledger: {held}"
    if res.spec.adopted:
        return (f"kept {res.kind} {key} (adopted: branchyard did not create it) and "
                "removed it from the ledger")
    return f"destroyed {res.kind} {key} and removed it from the ledger"


def _missing_database(ctx: Context, finding: Finding) -> str:
    from branchyard.api.provisioning import SetupRequest, setup

    slug, key = finding.ref
    record = ctx.ledger.read().worktrees.get(slug)
    if record is None or record.resource(key) is None:
        return "already resolved"
    result = setup(SetupRequest(worktree=Path(record.path)))
    made = [a for a in result.actions if a.partition(" ")[2] == key.partition(":")[2]]
    return (f"ran setup in {record.path}: made {', '.join(made)} again" if made
            else f"ran setup in {record.path}: the database was back already")


def _find_intent(ctx: Context, key: str) -> Intent | None:
    return next((i for i in intents.intents(ctx.ledger.read()) if i.key == key), None)


def _interrupted_up(ctx: Context, finding: Finding) -> str:
    intent = _find_intent(ctx, finding.ref[0])
    if intent is None or intents.is_alive(intent):
        return "already resolved"
    done = []
    record = ctx.ledger.read().by_path(intent.path)
    if record is not None:
        done.append(release_entry(ctx, record.slug))
    done.append(_remove_half_made(ctx, intent))
    done.append(_delete_created_branch(ctx, intent))
    for same in intents.intents(ctx.ledger.read()):  # its own `setup`, `teardown`
        if same.pid == intent.pid and same.create_time == intent.create_time:
            intents.clear(ctx.ledger, same)
    return "; ".join(d for d in done if d)


def _remove_half_made(ctx: Context, intent: Intent) -> str:
    main, path = ctx.repo.main_path, Path(intent.path)
    real = os.path.realpath(path)
    entry = next((e for e in git.worktrees(main) if os.path.realpath(e.path) == real), None)
    known = entry is not None and not entry.prunable
    if not path.exists():
        git.git(["worktree", "prune"], main, check=False)
        return "no worktree was left"
    commit = intent.checkout_sha or intent.base_sha
    if known and halfmade.has_index(path):
        changed = _user_changes(path)
    elif commit:  # its checkout never finished: only the commit's own files may be there
        changed = halfmade.checkout_leftovers(path, commit, main)
    elif not known:
        return f"kept {path}: git does not know it as a worktree (remove it by hand)"
    else:
        changed = _user_changes(path)
    if changed:
        return f"kept the worktree {path}: it has changes ({', '.join(changed[:3])})"
    stop_worktree_processes(ctx, path)
    halfmade.remove_tree(main, path)
    if path.exists():
        return f"kept the worktree {path}: git could not remove it"
    return f"removed the worktree {path}"


def _user_changes(path: Path) -> list[str]:
    """Uncommitted work in a worktree `up` was making. A file merely not checked
    out yet (staged as deleted, absent on disk) is not work: HEAD has it."""
    data = git.git(["status", "--porcelain=v1", "-z", "--untracked-files=normal",
                    "--no-renames"], path).stdout  # one path per entry: a rename is two
    return [item[3:] for item in data.split("\0")
            if len(item) > 3 and not (item[:2] == "D " and not (path / item[3:]).exists())]


def _delete_created_branch(ctx: Context, intent: Intent) -> str:
    main = ctx.repo.main_path
    branch = intent.branch
    if not intent.created_branch or not branch or not git.branch_exists(branch, main):
        return ""
    holder = next((e.path for e in git.worktrees(main) if e.branch == branch), None)
    if holder is not None:
        return f"kept branch {branch!r}: it is checked out at {holder}"
    if git.rev_parse(branch, main) != intent.base_sha:
        return f"kept branch {branch!r}: it has commits of its own"
    git.git(["branch", "-D", branch], main)
    return f"deleted branch {branch!r}"


def _stale_intent(ctx: Context, finding: Finding) -> str:
    intent = _find_intent(ctx, finding.ref[0])
    if intent is None or intents.is_alive(intent):
        return "already resolved"
    done = _delete_merged_branch(ctx, intent) if intent.op == "down" else ""
    intents.clear(ctx.ledger, intent)
    return "; ".join(d for d in (done, "cleared the intent") if d)


def _delete_merged_branch(ctx: Context, intent: Intent) -> str:
    """What the interrupted `down` would have done last: delete the branch
    branchyard created, if it is merged into its base."""
    main, branch = ctx.repo.main_path, intent.branch
    if not intent.created_branch or not branch or not git.branch_exists(branch, main):
        return ""
    holder = next((e.path for e in git.worktrees(main) if e.branch == branch), None)
    if holder is not None:
        return f"kept branch {branch!r}: it is checked out at {holder}"
    base = git.base_branch(intent.base, ctx.config.project.base, main)
    if not git.is_ancestor(branch, base, main):
        return f"kept branch {branch!r}: it has commits not in {base}"
    git.git(["branch", "-D", branch], main)
    return f"deleted branch {branch!r} (merged into {base})"


def _interrupted_down(ctx: Context, finding: Finding) -> str:
    key, slug = finding.ref
    intent = _find_intent(ctx, key) if key else None
    if intent is not None and intents.is_alive(intent):
        return "already resolved"
    record = ctx.ledger.read().worktrees.get(slug) if slug else None
    if intent is not None:
        path, branch = Path(intent.path), intent.branch or (record.branch if record else "")
    elif record is not None and record.state == "removing":
        path, branch = Path(record.path), record.branch
    else:
        return "already resolved"
    halfmade.finish_removal(ctx, path, branch=branch,
                            force=bool(intent and intent.force))
    done = [f"removed what was left of {path}"]
    if record is not None:
        done.append(release_entry(ctx, record.slug))
    if intent is not None:
        done.append(_delete_merged_branch(ctx, intent))
    intents.clear_dead(ctx.ledger, path)
    return "; ".join(d for d in done if d)


def _prune(ctx: Context, finding: Finding) -> str:
    git.git(["worktree", "prune"], ctx.repo.main_path)
    return "pruned git's worktree metadata"


REPAIRS: dict[str, Callable[[Context, Finding], str]] = {
    "interrupted_up": _interrupted_up,
    "interrupted_down": _interrupted_down,
    "missing_worktree": _missing,
    "stuck_worktree": _stuck,
    "stuck_resource": _resource,
    "missing_database": _missing_database,
    "prunable_worktree": _prune,
    "stale_intent": _stale_intent,
}
