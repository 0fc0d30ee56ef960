"""The values a worktree's resources are planned with: a :class:`PlanContext`
in, :class:`Allocation` records out (what the ledger keeps for each resource)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from branchyard.config import Config
from branchyard.events import NullReporter, Reporter
from branchyard.identity import Identity
from branchyard.repo import RepoInfo


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
