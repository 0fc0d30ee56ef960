"""The one interface every resource provider implements, generic over its
kind's spec (:mod:`branchyard.resources.specs`)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import Spec

S = TypeVar("S", bound=Spec)


class Provider(Protocol[S]):
    kind: str

    def plan(self, ctx: PlanContext) -> list[Allocation[S]]:
        """Pure: the resources this worktree should have."""
        ...

    def exists(self, alloc: Allocation[S]) -> bool: ...

    def found(self, alloc: Allocation[S]) -> bool:
        """Whether a worktree resource of this name is already there although
        branchyard has not recorded it; asked just before it is recorded. What is
        found is recorded as adopted (``Spec.adopted``)."""
        ...

    def create(self, alloc: Allocation[S], ctx: PlanContext) -> bool:
        """Make it; idempotent. Return whether anything changed (False: it was
        already there as planned). Report progress through ``ctx.reporter``.
        Raise a BranchyardError on failure."""
        ...

    def destroy(self, alloc: Allocation[S]) -> None:
        """Remove it; idempotent: already gone is fine. An adopted one is left alone."""
        ...

    def env(self, alloc: Allocation[S]) -> dict[str, str]:
        """Variables the worktree gets from this resource (cheap, no I/O)."""
        ...

    def describe(self, alloc: Allocation[S]) -> dict[str, Any]:
        """What `ls`/`status` show (passwords masked; cheap, no I/O)."""
        ...
