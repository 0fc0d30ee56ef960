"""The one interface every resource provider implements."""

from __future__ import annotations

from typing import Any, Protocol

from branchyard.resources.plan import Allocation, PlanContext


class Provider(Protocol):
    kind: str

    def plan(self, ctx: PlanContext) -> list[Allocation]:
        """Pure: the resources this worktree should have."""
        ...

    def exists(self, alloc: Allocation) -> bool: ...

    def found(self, alloc: Allocation) -> bool:
        """Whether a worktree resource of this name is already there although
        branchyard has not recorded it; asked just before it is recorded. What is
        found is recorded as adopted (:data:`ADOPTED`)."""
        ...

    def create(self, alloc: Allocation, ctx: PlanContext) -> bool:
        """Make it; idempotent. Return whether anything changed (False: it was
        already there as planned). Report progress through ``ctx.reporter``.
        Raise a BranchyardError on failure."""
        ...

    def destroy(self, alloc: Allocation) -> None:
        """Remove it; idempotent: already gone is fine. An adopted one is left alone."""
        ...

    def env(self, alloc: Allocation) -> dict[str, str]:
        """Variables the worktree gets from this resource (cheap, no I/O)."""
        ...

    def describe(self, alloc: Allocation) -> dict[str, Any]:
        """What `ls`/`status` show (passwords masked; cheap, no I/O)."""
        ...
