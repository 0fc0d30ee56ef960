"""Dev servers of a worktree listening on another port than its own (a plain
`npm run dev` takes the framework's default), for `ls`, `status` and `doctor`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.config.model import Config
from branchyard.core.errors import BranchyardError
from branchyard.system.processes import ProcInfo

if TYPE_CHECKING:  # `ls` never pays for doctor's modules
    from branchyard.api.drift import Finding
    from branchyard.context import Context


@dataclass(frozen=True)
class Owner:
    """A live worktree and the ports it owns."""

    path: str
    name: str  # how a message calls it: its branch, or "the main worktree"
    ports: Mapping[str, int]


def stray_rows(owners: Sequence[Owner], procs: Mapping[str, Sequence[ProcInfo]],
               config: Config) -> dict[str, list[dict[str, Any]]]:
    """Real root → its strays, each a JSON-ready row with the message to show.
    ``procs`` is a process scan made already (real root → processes)."""
    live = {os.path.realpath(o.path): o for o in owners if o.ports}
    if not any(procs.get(root) for root in live):
        return {}  # no process in any worktree: nothing can listen
    from branchyard.system.listeners import listeners_of, stray_listeners
    from branchyard.system.mainports import app_port_name

    ports = {root: o.ports for root, o in live.items()}
    apps = {root: p[app_port_name(config, p)] for root, p in ports.items()}
    names = {os.path.realpath(o.path): o.name for o in owners}
    rows: dict[str, list[dict[str, Any]]] = {}
    for stray in stray_listeners(ports, apps, listeners_of(procs)):
        how = f" (`cd {live[stray.root].path} && branchyard run`)"
        rows.setdefault(stray.root, []).append({
            "pid": stray.pid, "command": stray.command, "port": stray.port,
            "expected": stray.expected, "owner": names.get(stray.owner, stray.owner),
            "message": stray.message(names) + how})
    return rows


def stray_findings(ctx: Context) -> list[Finding]:
    """`doctor`: one report-only finding per dev server on another port than its
    own (main's port counts only once it has one: doctor leases nothing)."""
    from branchyard.api.drift import Finding
    from branchyard.api.mainworktree import main_files_env
    from branchyard.repo import git
    from branchyard.system.mainports import main_ports
    from branchyard.system.processes import processes_by_root

    state = ctx.ledger.read()
    roots = [e.path for e in git.worktrees(ctx.repo.common_dir)
             if not e.bare and not e.prunable and e.path.is_dir()]
    try:
        mine = main_ports(ctx.repo.common_dir, main_files_env(ctx), ctx.config, lease=False)
    except BranchyardError:  # an unreadable registry is a finding of its own
        mine = {}
    owners = [Owner(str(ctx.repo.main_path), "the main worktree", mine),
              *(Owner(r.path, r.branch, r.ports) for r in state.worktrees.values()
                if Path(r.path).is_dir())]
    found = []
    for root, rows in stray_rows(owners, processes_by_root(roots), ctx.config).items():
        name = next((o.name for o in owners if os.path.realpath(o.path) == root), root)
        for row in rows:
            found.append(Finding(
                "stray_listener", f"port {row['port']} (pid {row['pid']})", name,
                row["message"], hint=f"stop it, then `cd {root} && branchyard run`"))
    return found
