"""The values a worktree's resources are planned with: a :class:`PlanContext`
in, :class:`Allocation` records out (what the ledger keeps for each resource)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from branchyard.config.model import Config
from branchyard.core.errors import UnsafeError
from branchyard.core.events import NullReporter, Reporter
from branchyard.core.identity import Identity
from branchyard.repo.locate import RepoInfo
from branchyard.resources.specs import Spec

S_co = TypeVar("S_co", bound=Spec, covariant=True)


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
class Allocation(Generic[S_co]):
    """A planned resource: what to create, and everything needed to destroy it
    later from the ledger alone (``spec``, of the class ``specs.SPECS`` names for
    ``kind``)."""

    kind: str
    key: str  # unique within a worktree, e.g. "db:app"
    spec: S_co


def adopted_note(what: str) -> str:
    """What `setup` says when it uses an adopted database as it is."""
    return (f"{what}: there before branchyard (adopted: used as it is, kept by "
            "down/teardown); not seeding")


def adopted_refusal(what: str, remove: str) -> UnsafeError:
    """The error for re-seeding an adopted database (``remove``: how a person drops it)."""
    return UnsafeError(
        f"{what} was there before branchyard set this worktree up (adopted), so "
        "branchyard never drops or replaces it",
        hint=f"to start over from main, remove it yourself ({remove}), then run "
             "`branchyard setup` in the worktree: the copy it makes is branchyard's")
