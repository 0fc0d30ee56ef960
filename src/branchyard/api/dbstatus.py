"""`branchyard db status`: each database of a worktree, inspected on its server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.api.databases import find_target
from branchyard.providers import get_provider
from branchyard.resources.plan import Allocation
from branchyard.resources.specs import MysqlSpec, PostgresSpec, RedisSpec, SqliteSpec

if TYPE_CHECKING:
    from branchyard.db.cloning import CloneMethod
    from branchyard.db.snapshot import SnapshotInfo

WARN_RATIO = 0.8


@dataclass(frozen=True)
class DbStatus:
    worktree: str
    branch: str
    slug: str
    subdomain: str
    main: bool
    databases: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    snapshots: tuple[SnapshotInfo, ...] = ()  # the project's, with size and users


def status(branch: str | None = None) -> DbStatus:
    """Every database of the worktree, inspected on its server."""
    from branchyard.api.snapshots import snapshots

    target = find_target(branch)
    rows = []
    warnings = []
    for alloc in target.allocations:
        row = get_provider(alloc.kind).describe(alloc)
        row.update(INSPECTORS[alloc.kind](alloc))
        rows.append(row)
        warnings.extend(row.pop("warnings", []))
    ident = target.identity
    shown = tuple(snapshots(target.ctx)) if any(isinstance(a.spec, PostgresSpec)
                                                 for a in target.allocations) else ()
    return DbStatus(str(target.path), ident.branch, ident.slug, ident.subdomain, target.main,
                    tuple(rows), tuple(dict.fromkeys(warnings)), shown)


def _inspect_postgres(alloc: Allocation[PostgresSpec]) -> dict[str, Any]:
    from branchyard.db import postgres as pg
    from branchyard.db.lastmigration import postgres_last_migration
    from branchyard.db.urls import parse_url

    spec = alloc.spec
    out: dict[str, Any] = {"exists": False, "warnings": []}
    with pg.connect(spec.server) as conn:
        info = pg.database_info(conn, spec.database)
        ceiling, used = pg.max_connections(conn), pg.total_connections(conn)
        clone = _clone_method(conn, spec)
    out.update(server_connections=used, max_connections=ceiling, clone=clone.as_json())
    if used >= ceiling * WARN_RATIO:
        out["warnings"].append(f"the server at {parse_url(spec.server).address} "
                               f"uses {used} of its {ceiling} connections")
    if info is None:
        return out
    tool, last = postgres_last_migration(spec.url, spec.migrations_query)
    out.update(exists=True, size=info.size, connections=info.connections,
               tables=pg.table_count(spec.url), migration_tool=tool, last_migration=last)
    if spec.role == "worktree":
        out.update(_snapshot_of(spec))
    return out


def _snapshot_of(spec: PostgresSpec) -> dict[str, Any]:
    """The snapshot a worktree's database is cloned from: how old, main changed since."""
    from branchyard.db import freshness, snapshot
    from branchyard.db.provision import clones, snapshot_source

    if not clones(spec):
        return {}
    src = snapshot_source(spec, spec.server)
    record = snapshot.current(src)
    if record is None:
        return {}
    fresh = freshness.of(src, record)
    return {"snapshot": {"name": record.name, "text": fresh.text(), **fresh.as_json()}}


def _clone_method(conn: Any, spec: PostgresSpec) -> CloneMethod:
    from branchyard.db import cloning, serverstate

    state = serverstate.load_state() if spec.managed else None
    return cloning.of_server(conn, state.data_dir if state else None)


def _inspect_mysql(alloc: Allocation[MysqlSpec]) -> dict[str, Any]:
    from branchyard.db import mysql

    spec = alloc.spec
    with mysql.connect(spec.server) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), COALESCE(sum(data_length + index_length), 0) FROM "
                    "information_schema.tables WHERE table_schema = %s", (spec.database,))
        tables, size = cur.fetchone() or (0, 0)
        found = mysql.exists(conn, spec.database)
    return {"exists": found, "tables": int(tables), "size": int(size)}


def _inspect_sqlite(alloc: Allocation[SqliteSpec]) -> dict[str, Any]:
    from branchyard.db import sqlite

    path = Path(alloc.spec.path)
    if not path.is_file():
        return {"exists": False}
    return {"exists": True, "tables": sqlite.table_count(path), "size": path.stat().st_size}


def _inspect_redis(alloc: Allocation[RedisSpec]) -> dict[str, Any]:
    from branchyard.db import redisdb

    with redisdb.connect(alloc.spec.url) as client:
        marker = 1 if client.exists(redisdb.MARKER) else 0
        return {"exists": True, "keys": int(client.dbsize()) - marker}


# kind → its inspector, each taking the allocations of its kind's spec
INSPECTORS: dict[str, Callable[[Allocation[Any]], dict[str, Any]]] = {
    "postgres": _inspect_postgres, "mysql": _inspect_mysql, "sqlite": _inspect_sqlite,
    "redis": _inspect_redis,
}
