"""Finding what has no owner any more outside the worktree entries: port and
Redis leases, snapshot and pool databases, merge locks and scratch worktrees,
failed dependency installs, and the daemons (proxy, managed server)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from branchyard.api.drift import Finding, Survey
from branchyard.errors import BranchyardError
from branchyard.ledger import Ledger, LedgerState


def lease_findings() -> list[Finding]:
    """Machine-wide: leases whose owner (repository + slug) has no ledger entry."""
    from branchyard import ports

    try:
        leases = ports.all_leases()
    except BranchyardError as err:
        return [Finding("lease_registry_unreadable", str(ports.registry_path()), "branchyard",
                        err.message, fix="rebuild it from the ports the ledgers of the "
                        "known repositories record (the unreadable file is kept beside it)")]
    by_owner: dict[str, list[int]] = defaultdict(list)
    for lease in leases:
        by_owner[lease.owner].append(lease.port)
    ledgers: dict[str, LedgerState | None] = {}  # each repository's ledger, read once
    findings = []
    for owner, held in sorted(by_owner.items()):
        why = owner_gone(owner, ledgers)
        if why:
            findings.append(Finding(
                "orphan_lease", "ports " + ", ".join(map(str, held)), owner, why,
                fix="release the leases", gone=True, ref=(owner,)))
    return findings


def owner_gone(owner: str, ledgers: dict[str, LedgerState | None] | None = None) -> str:
    """Why a lease owner no longer exists, or "" when it does (or cannot be told).
    ``ledgers`` caches the ledgers read, by common dir."""
    common, _, slug = owner.rpartition("#")
    if not os.path.isdir(common):
        return f"the repository {common} is gone"
    cache = {} if ledgers is None else ledgers
    if common not in cache:
        try:
            cache[common] = Ledger(Path(common)).read()
        except BranchyardError:
            cache[common] = None
    state = cache[common]
    if state is None or slug in state.worktrees:
        return ""  # an unreadable ledger owns whatever it may record
    return f"the repository's ledger has no worktree {slug!r}"


def redis_lease_findings() -> list[Finding]:
    """Machine-wide: Redis database indexes leased to a worktree that has no ledger
    entry (`setup` leases the index while planning, before it records the resource)."""
    from branchyard.db.redisdb import leased_indexes

    ledgers: dict[str, LedgerState | None] = {}
    findings = []
    for address, leases in sorted(leased_indexes().items()):
        for index, owner in sorted(leases.items()):
            common, slug, name = redis_owner(owner)
            why = owner_gone(f"{common}#{slug}", ledgers)
            if why:
                findings.append(Finding(
                    "orphan_redis_lease", f"Redis database {index} on {address} "
                    f"([[database]] {name!r})", owner, why, fix="release the lease",
                    gone=True, ref=(address, owner)))
    return findings


def redis_owner(owner: str) -> tuple[str, str, str]:
    """``<common dir>|<slug>|<database name>`` (see providers/redis.py) → its parts."""
    parts = owner.rsplit("|", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (owner, "", "")


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
               if any(r.spec.get("database") == target for r in w.resources))


def tempfile_findings(survey: Survey) -> list[Finding]:
    """Half-written state files (``.ledger.<pid>.tmp``…) of killed processes."""
    import re

    from branchyard.paths import state_dir

    found = []
    for folder in (survey.ctx.ledger.dir, state_dir(), state_dir() / "proxy"):
        for path in sorted(folder.glob(".*.tmp")) if folder.is_dir() else []:
            match = re.search(r"\.(\d+)\.tmp$", path.name)
            if match and not _pid_alive(int(match.group(1))):
                found.append(Finding(
                    "stale_tempfile", str(path), f"pid {match.group(1)}",
                    "a half-written state file of a process that was killed while writing",
                    fix="remove it (the state file itself was never replaced by it)",
                    gone=True, ref=(str(path),)))
    return found


def _pid_alive(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def daemon_findings(survey: Survey) -> list[Finding]:
    return [*_proxy_findings(survey), *_server_findings(survey)]


def _proxy_findings(survey: Survey) -> list[Finding]:
    try:
        from branchyard.proxy.daemon import pid_file, proxy_problems, proxy_status
    except ImportError:  # the proxy package is optional in partial builds
        return []
    status = proxy_status()
    if status.state == "crashed":
        return [Finding(
            "proxy_crashed", f"dev URL proxy (pid {status.pid}, port {status.port})",
            "branchyard proxy", f"its pid file {pid_file()} names a process that is gone",
            fix="remove the stale pid file", hint="then `branchyard proxy start`",
            ref=(str(pid_file()),))]
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
        deps = [r for r in record.resources if r.kind == "deps" and r.state == "ready"]
        if not deps or survey.is_busy(record.path) or not Path(record.path).is_dir():
            continue
        from branchyard.deps.reuse import DepsTarget, tree_state

        for res in deps:
            spec = res.spec
            state = tree_state(DepsTarget(dir=str(spec["dir"]), worktree=Path(spec["worktree"]),
                                          main=Path(spec["main"]),
                                          lockfiles=tuple(spec["lockfiles"])))
            if state in ("incomplete", "missing"):
                findings.append(Finding(
                    "deps_tree", f"{res.spec['dir']} of worktree {record.branch!r}",
                    f"ledger entry {record.slug}", f"the dependency tree is {state}",
                    hint=f"run `branchyard setup` in {record.path} to install it again"))
    return findings


def _server_findings(survey: Survey) -> list[Finding]:
    users = sorted(w.branch for w in survey.state.worktrees.values()
                   if any(r.spec.get("managed") for r in w.resources))
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
