"""The one interface every resource provider implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from branchyard.config import Config
from branchyard.events import NullReporter, Reporter
from branchyard.identity import Identity


@dataclass(frozen=True)
class RepoInfo:
    """Where a repository is: absolute paths, valid from any of its worktrees."""

    common_dir: Path  # <git-common-dir>
    main_path: Path  # the main worktree (for a bare repo: the bare directory)
    name: str  # repository directory name
    project: str  # DNS label of the project name
    bare: bool = False


@dataclass(frozen=True)
class PlanContext:
    """Everything a provider may look at to plan a worktree's resources."""

    repo: RepoInfo
    config: Config
    identity: Identity
    worktree: Path
    ports: Mapping[str, int]
    url: str
    base_env: Mapping[str, str] = field(default_factory=dict)  # identity/ports/url vars
    main_env: Mapping[str, str] = field(default_factory=dict)  # the main worktree's env files
    reseed: bool = False  # `setup --reseed`: seed databases even when they have tables
    reporter: Reporter = field(default_factory=NullReporter)


@dataclass(frozen=True)
class Allocation:
    """A planned resource: what to create, and everything needed to destroy it
    later from the ledger alone. ``spec`` must be JSON-serialisable."""

    kind: str
    key: str  # unique within a worktree, e.g. "postgres:app"
    spec: Mapping[str, Any]


class Provider(Protocol):
    kind: str

    def plan(self, ctx: PlanContext) -> list[Allocation]:
        """Pure: the resources this worktree should have."""
        ...

    def exists(self, alloc: Allocation) -> bool: ...

    def create(self, alloc: Allocation, ctx: PlanContext) -> bool:
        """Make it; idempotent. Return whether anything changed (False: it was
        already there as planned). Report progress through ``ctx.reporter``.
        Raise a BranchyardError on failure."""
        ...

    def destroy(self, alloc: Allocation) -> None:
        """Remove it; idempotent: already gone is fine."""
        ...

    def env(self, alloc: Allocation) -> dict[str, str]:
        """Variables the worktree gets from this resource (cheap, no I/O)."""
        ...

    def describe(self, alloc: Allocation) -> dict[str, Any]:
        """What `ls`/`status` show (passwords masked; cheap, no I/O)."""
        ...
