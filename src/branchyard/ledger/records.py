"""What the ledger holds: a record per worktree with its resources (typed
specs, :mod:`branchyard.resources.specs`) and processes, and how each is written
as JSON."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from branchyard.core.identity import Identity
from branchyard.core.paths import is_inside
from branchyard.resources.codec import from_json, to_json
from branchyard.resources.specs import Spec


@dataclass
class ResourceRecord:
    """One resource a provider made (or is about to make) for a worktree."""

    kind: str
    key: str
    spec: Spec  # of the class resources.specs.SPECS names for ``kind``
    state: str = "pending"  # pending → ready → destroying


@dataclass
class ProcessRecord:
    pid: int
    argv: list[str]
    started: float
    pgid: int = 0
    create_time: float = 0.0  # psutil's, to tell a reused pid apart
    runner: int = 0  # the `branchyard run` wrapper waiting for it: branchyard's own
    runner_create_time: float = 0.0


@dataclass
class WorktreeRecord:
    slug: str
    subdomain: str
    branch: str
    index: int
    path: str
    base: str = ""
    created_branch: bool = False
    created_worktree: bool = False
    state: str = "provisioning"  # provisioning → ready → tearing_down
    ports: dict[str, int] = field(default_factory=dict)
    resources: list[ResourceRecord] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    processes: list[ProcessRecord] = field(default_factory=list)
    hooks_done: str = ""
    created_at: float = field(default_factory=time.time)
    git_id: str = ""  # git's worktree id (<git-common-dir>/worktrees/<id>): survives a move

    @property
    def identity(self) -> Identity:
        return Identity(self.branch, self.slug, self.subdomain, self.index)

    def resource(self, key: str) -> ResourceRecord | None:
        return next((r for r in self.resources if r.key == key), None)

    def move_to(self, new: str) -> None:
        """Re-home the entry: its path, and every recorded path inside the old one
        (the files it made, a database file, a session file) now under ``new``."""
        old, self.path = self.path, new
        for res in self.resources:
            res.spec = from_json(res.kind, _moved(to_json(res.spec), old, new))
        self.env = _moved(self.env, old, new)


def _moved(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        if is_inside(value, old):
            return new + value[len(old):]
        return value
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, old, new) for v in value]
    return value


@dataclass(frozen=True)
class Move:
    """A worktree git now records at another path, with the same id and branch."""

    slug: str
    branch: str
    old: str
    new: str
    git_id: str


@dataclass
class LedgerState:
    worktrees: dict[str, WorktreeRecord] = field(default_factory=dict)
    # Areas other than worktrees (queue, locks, pools, snapshots, proxy…) keep
    # their own JSON documents here, each under its own name.
    sections: dict[str, Any] = field(default_factory=dict)
    moved: list[Move] = field(default_factory=list)  # re-homed by this read; not stored

    def by_path(self, path: Path | str) -> WorktreeRecord | None:
        wanted = os.path.realpath(path)
        return next((w for w in self.worktrees.values()
                     if os.path.realpath(w.path) == wanted), None)

    def by_branch(self, branch: str) -> WorktreeRecord | None:
        return next((w for w in self.worktrees.values() if w.branch == branch), None)


def worktree_of(data: dict[str, Any]) -> WorktreeRecord:
    """A worktree entry as the ledger's JSON holds it (any schema)."""
    fields = dict(data)
    fields["resources"] = [_resource(r) for r in fields.get("resources", [])]
    fields["processes"] = [ProcessRecord(**p) for p in fields.get("processes", [])]
    return WorktreeRecord(**fields)


def _resource(data: dict[str, Any]) -> ResourceRecord:
    kind = data["kind"]
    return ResourceRecord(kind, data["key"], from_json(kind, data["spec"]),
                          data.get("state", "pending"))


def worktree_json(record: WorktreeRecord) -> dict[str, Any]:
    """The entry as the ledger writes it (its specs through resources.codec)."""
    data = asdict(record)
    data["resources"] = [{"kind": r.kind, "key": r.key, "spec": to_json(r.spec),
                          "state": r.state} for r in record.resources]
    return data
