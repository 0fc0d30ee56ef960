"""Machine-wide drift, shared by every repository: port and Redis index leases
whose owner is gone, half-written files in the state dir, a crashed proxy."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from branchyard.api.drift import Finding
from branchyard.core.errors import BranchyardError
from branchyard.ledger import Ledger, LedgerState
from branchyard.system.processes import pid_alive


def machine_findings() -> list[Finding]:
    from branchyard.core.paths import state_dir

    return [*lease_findings(), *redis_lease_findings(), *stale_tempfiles(state_dir()),
            *stale_tempfiles(state_dir() / "proxy"), *_proxy_crashed(), *_cow_unmounted()]


def lease_findings() -> list[Finding]:
    """Machine-wide: leases whose owner (repository + slug) has no ledger entry."""
    from branchyard.system import ports

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
    """Why a port lease's owner (``ports.owner_key``) no longer exists, or "" when
    it does (or cannot be told)."""
    from branchyard.system import ports

    return worktree_gone(*ports.owner_parts(owner), ledgers)


def worktree_gone(common: str, slug: str,
                  ledgers: dict[str, LedgerState | None] | None = None) -> str:
    """Why the worktree ``slug`` of the repository at ``common`` no longer exists,
    or "" when it does (or cannot be told). ``ledgers`` caches the ledgers read."""
    if not os.path.isdir(common):
        return f"the repository {common} is gone"
    from branchyard.system.mainports import MAIN_OWNER

    if slug == MAIN_OWNER:
        return ""  # main's lease lives as long as its repository
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
    from branchyard.db.redisdb import leased_indexes, owner_parts

    ledgers: dict[str, LedgerState | None] = {}
    findings = []
    for address, leases in sorted(leased_indexes().items()):
        for index, owner in sorted(leases.items()):
            common, slug, name = owner_parts(owner)
            why = worktree_gone(common, slug, ledgers)
            if why:
                findings.append(Finding(
                    "orphan_redis_lease", f"Redis database {index} on {address} "
                    f"([[database]] {name!r})", owner, why, fix="release the lease",
                    gone=True, ref=(address, owner)))
    return findings


def stale_tempfiles(folder: Path) -> list[Finding]:
    """Half-written state files (``.ledger.<pid>.tmp``…) of killed writers."""
    found = []
    for path in sorted(folder.glob(".*.tmp")) if folder.is_dir() else []:
        match = re.search(r"\.(\d+)\.tmp$", path.name)
        if match and not pid_alive(int(match.group(1))):
            found.append(Finding(
                "stale_tempfile", str(path), f"pid {match.group(1)}",
                "a half-written state file of a process that was killed while writing",
                fix="remove it (the state file itself was never replaced by it)",
                gone=True, ref=(str(path),)))
    return found


def _cow_unmounted() -> list[Finding]:
    """The managed server's recorded disk image, not mounted (after a reboot)."""
    from branchyard.db import cow, serverstate

    try:
        state = serverstate.load_state()
    except BranchyardError:
        return []
    if state is None or not state.cow_image or cow.is_mounted(state.cow_home):
        return []
    return [Finding(
        "cow_unmounted", f"the managed server's disk image {state.cow_image}",
        "branchyard server", f"it is not mounted on {state.cow_mount} (after a reboot?), so "
        "the cluster on it cannot start", fix="mount it again (as root)",
        hint="or `branchyard server stop --remove --force` to delete the cluster and image",
        ref=(state.cow_image,))]


def _proxy_crashed() -> list[Finding]:
    try:
        from branchyard.proxy.daemon import pid_file, proxy_status
    except ImportError:  # the proxy package is optional in partial builds
        return []
    status = proxy_status()
    if status.state != "crashed":
        return []
    return [Finding(
        "proxy_crashed", f"dev URL proxy (pid {status.pid}, port {status.port})",
        "branchyard proxy", f"its pid file {pid_file()} names a process that is gone",
        fix="remove the stale pid file", hint="then `branchyard proxy start`",
        ref=(str(pid_file()),))]
