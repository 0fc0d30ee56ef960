"""What the dashboard shows, as frozen values: the yard, its repositories, their worktrees."""

from __future__ import annotations

from dataclasses import dataclass

from branchyard.dashboard.services_view import ServiceCard
from branchyard.merge.locks import Lock
from branchyard.merge.queue import QueueEntry


@dataclass(frozen=True)
class DatabaseCard:
    name: str  # the [[database]] entry
    engine: str
    database: str  # the database (or file, or Redis index) on its server
    size: int | None = None  # bytes; None: unknown (not fetched, or not a size)
    snapshot_age: float | None = None  # seconds since the snapshot it was cloned from


@dataclass(frozen=True)
class Radar:
    """The conflict radar's last result for one worktree (``branchyard conflicts``)."""

    conflicts_with: tuple[str, ...] = ()
    migrations_with: tuple[str, ...] = ()
    locked_paths: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def clear(self) -> bool:
        return not (self.conflicts_with or self.migrations_with or self.locked_paths)


@dataclass(frozen=True)
class WorktreeCard:
    branch: str
    path: str
    slug: str
    main: bool
    state: str
    url: str
    base: str
    ports: tuple[tuple[str, int], ...] = ()
    processes: int = 0
    dirty_files: tuple[str, ...] = ()  # at most MAX_DIRTY of them
    dirty_count: int = 0
    ahead: int | None = None  # commits on the worktree not in its base; None: unknown
    behind: int | None = None
    radar: Radar | None = None  # None: out of date (a HEAD or base moved since)
    locks: tuple[str, ...] = ()
    services: tuple[ServiceCard, ...] = ()
    databases: tuple[DatabaseCard, ...] = ()


@dataclass(frozen=True)
class RepoCard:
    project: str
    common_dir: str
    main_path: str
    worktrees: tuple[WorktreeCard, ...] = ()
    queue: tuple[QueueEntry, ...] = ()
    locks: tuple[Lock, ...] = ()
    error: str = ""  # why the repository could not be read


@dataclass(frozen=True)
class Yard:
    repos: tuple[RepoCard, ...]
    taken_at: float

    def repo(self, common_dir: str) -> RepoCard | None:
        return next((r for r in self.repos if r.common_dir == common_dir), None)

    def worktree(self, path: str) -> tuple[RepoCard, WorktreeCard] | None:
        for repo in self.repos:
            for wt in repo.worktrees:
                if wt.path == path:
                    return repo, wt
        return None
