"""Finding what has no owner any more in one repository, outside its worktree
entries: snapshot and pool databases, merge locks and scratch worktrees,
half-written ledger files, failed dependency installs; and what the repository
needs of the daemons (proxy, managed server). Machine-wide checks: machine.py."""

from __future__ import annotations

import os
from pathlib import Path

from branchyard.api.drift import Finding, Survey
from branchyard.api.machine import stale_tempfiles
from branchyard.ledger import LedgerState
from branchyard.resources.specs import DepsSpec, PostgresSpec, ServerDatabaseSpec


def lock_findings(survey: Survey) -> list[Finding]:
    try:
        from branchyard.merge.locks import read_locks
    except ImportError:  # the merge package is optional in partial builds
        return []

    stale = sorted({lock.slug for lock in read_locks(survey.ctx.repo.common_dir)
                    if lock.slug not in survey.state.worktrees})
    return [Finding("orphan_lock", f"merge locks of {slug}", f"worktree {slug}",
                    "the worktree holding them has no ledger entry any more",
                    fix="release its locks", gone=True, ref=(slug,)) for slug in stale]


def database_findings(survey: Survey) -> list[Finding]:
    """Snapshot and pool databases the db layer recorded but did not finish."""
    from branchyard.db import records

    state = survey.state
    if not state.sections.get(records.SECTION):
        return []
    snaps = {s.name for s in records.snapshots(state)}
    # a running `up` records its snapshot a moment before the server sees the copy
    making = bool(survey.busy)
    findings = [Finding(
        "orphan_snapshot", f"snapshot database {s.name}", "ledger (postgres snapshots)",
        "making it was interrupted (state 'pending')",
        fix="drop it if no session is still building it, and forget it",
        ref=(s.name,)) for s in records.snapshots(state)
        if s.state == "pending" and not making]
    findings += _superseded(survey)
    for spare in records.pool(state):
        why = _spare_problem(spare.state, spare.snapshot in snaps, spare.target, state)
        if why:
            findings.append(Finding(
                "orphan_pool", f"pool database {spare.name}", "ledger (postgres pool)", why,
                fix=("drop it if no refill is still making it, and forget it"
                     if spare.state != "claimed" else
                     "put it back in the pool if it still exists, else forget it"),
                ref=(spare.name,)))
    return findings


def _superseded(survey: Survey) -> list[Finding]:
    """Older snapshot generations a crash kept from being retired (the db area's
    own judgement, :func:`branchyard.db.upkeep.find_orphans`)."""
    from branchyard.db.upkeep import find_orphans

    return [Finding("orphan_snapshot", f"snapshot database {o.name} on {o.server}",
                    "ledger (postgres snapshots)", o.reason,
                    fix="drop it and its unclaimed spares, and forget it", ref=(o.name,))
            for o in find_orphans(survey.ctx.repo.common_dir)
            if o.kind == "snapshot" and o.reason.startswith("superseded")]


def _spare_problem(state: str, has_snapshot: bool, target: str,
                   ledger: LedgerState) -> str:
    if not has_snapshot:
        return "its snapshot is no longer recorded"
    if state == "pending":
        return "making it was interrupted (state 'pending')"
    if state == "claimed" and not _claim_in_progress(target, ledger):
        return f"claiming it for {target!r} was interrupted"
    return ""


def _claim_in_progress(target: str, ledger: LedgerState) -> bool:
    from branchyard.api.intents import intents, is_alive

    live = {os.path.realpath(i.path) for i in intents(ledger) if is_alive(i)}
    return any(os.path.realpath(w.path) in live for w in ledger.worktrees.values()
               if any(isinstance(r.spec, ServerDatabaseSpec) and r.spec.database == target
                      for r in w.resources))


def ledger_tempfiles(survey: Survey) -> list[Finding]:
    return stale_tempfiles(survey.ctx.ledger.dir)


def daemon_findings(survey: Survey) -> list[Finding]:
    return [*_proxy_findings(survey), *_server_findings(survey)]


def _proxy_findings(survey: Survey) -> list[Finding]:
    """What is wrong with the proxy as this project configures it (a crashed one
    is a machine-wide finding)."""
    try:
        from branchyard.proxy.daemon import proxy_problems, proxy_status
    except ImportError:  # the proxy package is optional in partial builds
        return []
    if proxy_status().state == "crashed":
        return []
    return [Finding("proxy", "dev URL proxy", "branchyard proxy", problem)
            for problem in proxy_problems(survey.ctx.config.proxy)]


def scratch_findings(survey: Survey) -> list[Finding]:
    """Merge scratch worktrees left by a merge whose process is gone."""
    try:
        from branchyard.merge.scratch import scratch_root
    except ImportError:  # the merge package is optional in partial builds
        return []
    from filelock import FileLock, Timeout

    root = scratch_root(survey.ctx.repo.common_dir)
    left = []
    for path in sorted(root.glob("merge-*")) if root.is_dir() else []:
        if path.suffix == ".lock":
            continue
        try:
            with FileLock(str(path) + ".lock", timeout=0):
                left.append(path)
        except Timeout:
            continue  # a merge is using it right now
    return [Finding("scratch_worktree", f"merge scratch worktree {path}", "nobody",
                    "left behind by a merge whose process is gone",
                    fix="remove it (no merge holds its lock)", ref=(str(path),))
            for path in left]


def deps_findings(survey: Survey) -> list[Finding]:
    """Dependency trees whose install failed, in live worktrees (report only)."""
    findings = []
    for record in survey.state.worktrees.values():
        deps = [r.spec for r in record.resources
                if isinstance(r.spec, DepsSpec) and r.state == "ready"]
        if not deps or survey.is_busy(record.path) or not Path(record.path).is_dir():
            continue
        from branchyard.deps.reuse import tree_state
        from branchyard.providers.deps import target_of

        for spec in deps:
            state = tree_state(target_of(spec))
            if state in ("incomplete", "missing"):
                findings.append(Finding(
                    "deps_tree", f"{spec.dir} of worktree {record.branch!r}",
                    f"ledger entry {record.slug}", f"the dependency tree is {state}",
                    hint=f"run `branchyard setup` in {record.path} to install it again"))
    return findings


def _server_findings(survey: Survey) -> list[Finding]:
    users = sorted(w.branch for w in survey.state.worktrees.values()
                   if any(isinstance(r.spec, PostgresSpec) and r.spec.managed
                          for r in w.resources))
    if not users:
        return []
    from branchyard.db import managed

    status = managed.status()
    if not status.configured or status.running:
        return []
    shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
    return [Finding(
        "server_stopped", "branchyard's managed Postgres server", "branchyard server",
        f"it is not running, and the databases of {shown} live on it",
        hint="`branchyard server start`")]
