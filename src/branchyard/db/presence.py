"""Which recorded worktree databases are gone from their server (dropped by hand):
what `doctor` reports as ``missing_database``.

One connection per server, whatever the number of worktrees; a managed server
that is not running is not started (``doctor`` reports it on its own), and a
server that cannot be reached is named, not raised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchyard.core.errors import DatabaseError
from branchyard.db.urls import parse_url
from branchyard.resources.plan import Allocation
from branchyard.resources.specs import DatabaseSpec, PostgresSpec, ServerDatabaseSpec, SqliteSpec


@dataclass(frozen=True)
class Presence:
    gone: tuple[Allocation[DatabaseSpec], ...]  # recorded, and not on the server
    unreachable: tuple[tuple[str, DatabaseError], ...]  # (address, why) not checked


def absent(allocs: Sequence[Allocation[DatabaseSpec]]) -> Presence:
    """The allocations of ``allocs`` whose database no longer exists."""
    gone: list[Allocation[DatabaseSpec]] = []
    unreachable: list[tuple[str, DatabaseError]] = []
    by_kind: dict[str, list[Allocation[DatabaseSpec]]] = defaultdict(list)
    for alloc in allocs:
        if alloc.spec.role == "worktree" and alloc.kind in CHECKS:
            by_kind[alloc.kind].append(alloc)
    for kind, group in by_kind.items():
        found, failed = CHECKS[kind](group)
        gone += found
        unreachable += failed
    return Presence(tuple(gone), tuple(unreachable))


Outcome = tuple[list[Allocation[DatabaseSpec]], list[tuple[str, DatabaseError]]]


def _by_server(allocs: Sequence[Allocation[ServerDatabaseSpec]],
               names: Callable[[str, list[str]], set[str]]) -> Outcome:
    servers: dict[str, list[Allocation[ServerDatabaseSpec]]] = defaultdict(list)
    for alloc in allocs:
        servers[alloc.spec.server].append(alloc)
    gone: list[Allocation[DatabaseSpec]] = []
    failed: list[tuple[str, DatabaseError]] = []
    for server, group in servers.items():
        try:
            present = names(server, [a.spec.database for a in group])
        except DatabaseError as err:
            failed.append((parse_url(server).address, err))
            continue
        gone += [a for a in group if a.spec.database not in present]
    return gone, failed


def _postgres(allocs: Sequence[Allocation[PostgresSpec]]) -> Outcome:
    from branchyard.db import managed

    running = managed.status().running
    return _by_server([a for a in allocs if running or not a.spec.managed], _postgres_names)


def _postgres_names(server: str, wanted: list[str]) -> set[str]:
    from branchyard.db import postgres as pg

    with pg.connect(server) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                            (wanted,)).fetchall()
    return {str(r[0]) for r in rows}


def _mysql(allocs: Sequence[Allocation[ServerDatabaseSpec]]) -> Outcome:
    return _by_server(allocs, _mysql_names)


def _mysql_names(server: str, wanted: list[str]) -> set[str]:
    from branchyard.db import mysql

    with mysql.connect(server) as conn:
        return {name for name in wanted if mysql.exists(conn, name)}


def _sqlite(allocs: Sequence[Allocation[SqliteSpec]]) -> Outcome:
    return [a for a in allocs if not Path(a.spec.path).is_file()], []


# Redis is not here: a leased index always exists, empty or not. Keyed by kind,
# each check takes the allocations of its kind's spec.
CHECKS: dict[str, Callable[[Sequence[Allocation[Any]]], Outcome]] = {
    "postgres": _postgres, "mysql": _mysql, "sqlite": _sqlite,
}
