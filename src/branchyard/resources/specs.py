"""What the ledger keeps of each resource: one frozen spec class per kind.

A provider's ``plan`` fills one in from the config and the identity; everything
else (``create``, ``destroy``, ``doctor``, ``db …``, the views) reads only its
fields, so a worktree can be used and released from the ledger alone. The
ledger writes them with :func:`branchyard.resources.codec.to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from branchyard.config.model import ServerConfig

SHORT = 6  # characters of a clone id in a shared server's database names


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A planned or recorded resource of one kind (the subclass)."""

    kind: ClassVar[str] = ""  # each concrete class's (an abstract one: "")
    # There before branchyard first recorded it (made by hand or by another tool):
    # used as it is and never dropped, re-seeded or replaced; teardown only forgets it.
    adopted: bool = False


@dataclass(frozen=True, kw_only=True)
class FilesSpec(Spec):
    """A path of the main worktree linked or copied into the worktree."""

    kind: ClassVar[str] = "files"
    op: str  # "symlink" | "copy"
    rel: str  # relative to both worktrees
    src: str  # the main worktree's
    dst: str  # the worktree's
    required: bool  # named in the config (not only found through .worktreeinclude)


@dataclass(frozen=True, kw_only=True)
class BrowserSpec(Spec):
    kind: ClassVar[str] = "browser"
    profile: str  # the profile directory, in the state dir
    session_file: str  # the worktree's session file; "" = none
    session_name: str


@dataclass(frozen=True, kw_only=True)
class DepsSpec(Spec):
    """A ``[[deps]]`` tree as planned at first setup (see docs/deps.md)."""

    kind: ClassVar[str] = "deps"
    dir: str
    worktree: str
    main: str
    lockfiles: tuple[str, ...]
    install: str
    mode: str
    smoke: str
    lock_hash: str
    main_lock_hash: str
    strategy: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class DatabaseSpec(Spec):
    """What every ``[[database]]`` engine records."""

    name: str  # the [[database]] entry
    role: str  # "main" (the main worktree uses main's own) | "worktree"
    env: str  # the variable the worktree gets
    seed: str
    setup: tuple[str, ...] = ()

    @property
    def env_value(self) -> str:
        """What the worktree's ``env`` variable is set to."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ServerDatabaseSpec(DatabaseSpec):
    """A database on a server (Postgres, MySQL)."""

    server: str  # the admin URL
    database: str  # this worktree's
    main: str  # the main database's name
    main_url: str
    url: str  # this worktree's database

    @property
    def env_value(self) -> str:
        return self.url


@dataclass(frozen=True)
class Owner:
    """The clone, machine and worktree a Postgres database belongs to
    (:mod:`branchyard.db.owner` records it on the server)."""

    clone: str
    machine: str
    path: str

    @property
    def short(self) -> str:
        return self.clone[:SHORT]

    def describe(self) -> str:
        return f"clone {self.short} on {self.machine} ({self.path})"


@dataclass(frozen=True, kw_only=True)
class PostgresSpec(ServerDatabaseSpec):
    kind: ClassVar[str] = "postgres"
    common_dir: str  # the repository's: where its snapshots and pools are recorded
    seed_source: str = ""  # a dump: seed's resolved URL
    pool: int = 0
    managed: bool = False  # on branchyard's managed server
    migrations_query: str = ""
    refresh: str = "manual"
    shared: bool = False  # the server is shared by several clones: names carry a clone id
    owner: Owner | None = None  # None: recorded before owners were (this clone's)
    server_config: ServerConfig | None = None  # managed: the [server] it was planned with


@dataclass(frozen=True, kw_only=True)
class MysqlSpec(ServerDatabaseSpec):
    kind: ClassVar[str] = "mysql"


@dataclass(frozen=True, kw_only=True)
class SqliteSpec(DatabaseSpec):
    kind: ClassVar[str] = "sqlite"
    path: str  # this worktree's database file
    main_path: str
    value: str  # the env value: main's reference with this file's name

    @property
    def env_value(self) -> str:
        return self.value


@dataclass(frozen=True, kw_only=True)
class RedisSpec(DatabaseSpec):
    kind: ClassVar[str] = "redis"
    url: str  # with this worktree's index
    index: int
    main_index: int
    prefix: str  # a key prefix on main's index ("" = an index of its own)
    prefix_env: str  # the variable the prefix goes in
    owner: str  # the lease's owner, also the marker's value in the index

    @property
    def env_value(self) -> str:
        return self.url


# kind → class: what the ledger's ``kind`` of a resource says its spec is.
SPECS: dict[str, type[Spec]] = {cls.kind: cls for cls in (
    FilesSpec, PostgresSpec, MysqlSpec, SqliteSpec, RedisSpec, BrowserSpec, DepsSpec)}
