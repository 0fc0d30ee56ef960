"""Repairs for machine-wide drift (see machine.py): they need no repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from branchyard.api.drift import Finding
from branchyard.api.machine import owner_gone, worktree_gone
from branchyard.core.errors import BranchyardError


def _lease(finding: Finding) -> str:
    from branchyard.system import ports

    owner = finding.ref[0]
    if not owner_gone(owner):
        return "skipped: its owner exists again"
    freed = ports.release_ports(owner)
    return f"released ports {', '.join(map(str, freed))}" if freed else "already released"


def _redis_lease(finding: Finding) -> str:
    from branchyard.db.redisdb import owner_parts, release_index

    address, owner = finding.ref
    common, slug, _ = owner_parts(owner)
    if not worktree_gone(common, slug):
        return "skipped: its owner exists again"
    release_index(address, owner)
    return "released the lease"


def _proxy(finding: Finding) -> str:
    from branchyard.proxy.daemon import proxy_status

    if proxy_status().state != "crashed":
        return "already resolved"
    Path(finding.ref[0]).unlink(missing_ok=True)
    return "removed the stale pid file"


def _registry(finding: Finding) -> str:
    import time

    from branchyard.ledger import Ledger

    # every repository whose worktrees lease ports registered itself on setup; if
    # that list is unreadable the registry stays as it is (rebuilt empty, live
    # worktrees would lose their ports)
    from branchyard.proxy.registry import known_repos
    from branchyard.system import ports

    repos = {str(p) for p in known_repos()}
    leases = []
    for common in sorted(repos):
        try:
            state = Ledger(Path(common)).read()
        except BranchyardError:
            continue  # its worktrees lease again on their next `setup`
        leases += [ports.Lease(port, ports.owner_key(Path(common), w.slug), name, time.time())
                   for w in state.worktrees.values() for name, port in w.ports.items()]
    backup = ports.rebuild_registry(leases)
    return f"rebuilt it with {len(leases)} lease(s) from {len(repos)} repositories; " \
           f"the unreadable file is {backup}"


def _tempfile(finding: Finding) -> str:
    Path(finding.ref[0]).unlink(missing_ok=True)
    return "removed it"


def _remount(finding: Finding) -> str:
    from branchyard.db import managed

    return managed.remount_image()


MACHINE_REPAIRS: dict[str, Callable[[Finding], str]] = {
    "cow_unmounted": _remount,
    "orphan_lease": _lease,
    "orphan_redis_lease": _redis_lease,
    "proxy_crashed": _proxy,
    "lease_registry_unreadable": _registry,
    "stale_tempfile": _tempfile,
}
