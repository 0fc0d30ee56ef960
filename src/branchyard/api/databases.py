"""The database tools behind `branchyard db …` and `branchyard psql`.

Each function finds the worktree's databases in the ledger (or, for the main
worktree, plans them), and returns frozen results; the CLI renders them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.config import DATABASE_ENGINES
from branchyard.context import Context, open_context
from branchyard.errors import DatabaseError, UsageError, WorktreeError
from branchyard.events import NullReporter, Reporter
from branchyard.identity import Identity
from branchyard.ledger import WorktreeRecord
from branchyard.providers import get_provider
from branchyard.resources.plan import Allocation, PlanContext

if TYPE_CHECKING:
    from branchyard.db.cloning import CloneMethod
    from branchyard.db.snapshot import SnapshotInfo

WARN_RATIO = 0.8


@dataclass(frozen=True)
class DbTarget:
    ctx: Context
    path: Path
    identity: Identity
    record: WorktreeRecord | None  # None: the main worktree
    allocations: tuple[Allocation, ...]

    @property
    def main(self) -> bool:
        return self.record is None


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


def find_target(name: str | None, start: Path | str | None = None) -> DbTarget:
    """The worktree ``name`` (default: the current one; the main worktree when run
    there) and its database allocations."""
    from branchyard.api.targets import record_for

    ctx = open_context(start)
    if name is None and not ctx.loc.in_linked_worktree:
        return _main_target(ctx)
    try:
        record = record_for(ctx, name)
    except WorktreeError as err:
        if name is not None and any(d.name == name for d in ctx.config.database):
            raise UsageError(f"{name!r} is a database entry, not a worktree",
                             hint=f"name the database with `--db {name}` (NAME is the "
                                  "worktree, as in every command)") from err
        if name is not None and _names_main(ctx, name):
            return _main_target(ctx)
        raise
    allocs = tuple(Allocation(r.kind, r.key, r.spec) for r in record.resources
                   if r.kind in DATABASE_ENGINES)
    return DbTarget(ctx, Path(record.path), record.identity, record, allocs)


def _names_main(ctx: Context, name: str) -> bool:
    from branchyard.api.targets import resolve

    try:
        return os.path.realpath(resolve(ctx, name).path) == os.path.realpath(ctx.repo.main_path)
    except WorktreeError:
        return False


def _main_target(ctx: Context) -> DbTarget:
    ident = Identity(branch="", slug="main", subdomain="", index=0)
    return DbTarget(ctx, ctx.repo.main_path, ident, None, main_allocations(ctx, ident))


def main_allocations(ctx: Context, ident: Identity | None = None) -> tuple[Allocation, ...]:
    """The main worktree's databases: its ``[[database]]`` sources themselves."""
    ident = ident or Identity(branch="", slug="main", subdomain="", index=0)
    plan = plan_context(ctx, ctx.repo.main_path, ident)
    kinds = [k for k in DATABASE_ENGINES if any(d.engine == k for d in ctx.config.database)]
    return tuple(a for kind in kinds for a in get_provider(kind).plan(plan))


def plan_context(ctx: Context, worktree: Path, identity: Identity, *, reseed: bool = False,
                 reporter: Reporter | None = None, ports: dict[str, int] | None = None,
                 base_env: dict[str, str] | None = None) -> PlanContext:
    from branchyard.envfile import main_env_files, read_env_files

    main_env = read_env_files(main_env_files(ctx.repo.main_path, ctx.config.env.shared))
    return PlanContext(repo=ctx.repo, config=ctx.config, identity=identity, worktree=worktree,
                       ports=ports or {}, url="", base_env=base_env or {}, main_env=main_env,
                       reseed=reseed, reporter=reporter or NullReporter())


def pick(target: DbTarget, name: str | None, engine: str | None = None) -> Allocation:
    """One database of the target: by config name, else the only (or first) one."""
    allocs = [a for a in target.allocations if engine is None or a.kind == engine]
    if name is not None:
        allocs = [a for a in allocs if a.spec["name"] == name]
    if not allocs:
        known = ", ".join(a.spec["name"] for a in target.allocations) or "none"
        raise UsageError(f"no {engine + ' ' if engine else ''}database "
                         f"{name + ' ' if name else ''}in {target.path}",
                         hint=f"databases of this worktree: {known}")
    return allocs[0]


def url_of(name: str | None, branch: str | None = None) -> tuple[str, Allocation]:
    alloc = pick(find_target(branch), name)
    return str(alloc.spec.get("url", alloc.spec.get("path", ""))), alloc


def status(branch: str | None = None) -> DbStatus:
    """Every database of the worktree, inspected on its server."""
    target = find_target(branch)
    rows = []
    warnings = []
    for alloc in target.allocations:
        row = get_provider(alloc.kind).describe(alloc)
        row.update(INSPECTORS[alloc.kind](alloc))
        rows.append(row)
        warnings.extend(row.pop("warnings", []))
    ident = target.identity
    shown = tuple(snapshots(target.ctx)) if any(a.kind == "postgres"
                                                 for a in target.allocations) else ()
    return DbStatus(str(target.path), ident.branch, ident.slug, ident.subdomain, target.main,
                    tuple(rows), tuple(dict.fromkeys(warnings)), shown)


def _inspect_postgres(alloc: Allocation) -> dict[str, Any]:
    from branchyard.db import postgres as pg
    from branchyard.db.lastmigration import postgres_last_migration
    from branchyard.db.urls import parse_url

    spec = alloc.spec
    out: dict[str, Any] = {"exists": False, "warnings": []}
    with pg.connect(spec["server"]) as conn:
        info = pg.database_info(conn, spec["database"])
        ceiling, used = pg.max_connections(conn), pg.total_connections(conn)
        clone = _clone_method(conn, spec)
    out.update(server_connections=used, max_connections=ceiling, clone=clone.as_json())
    if used >= ceiling * WARN_RATIO:
        out["warnings"].append(f"the server at {parse_url(spec['server']).address} "
                               f"uses {used} of its {ceiling} connections")
    if info is None:
        return out
    tool, last = postgres_last_migration(spec["url"], spec.get("migrations_query", ""))
    out.update(exists=True, size=info.size, connections=info.connections,
               tables=pg.table_count(spec["url"]), migration_tool=tool, last_migration=last)
    if spec.get("role") == "worktree":
        out.update(_snapshot_of(spec))
    return out


def _snapshot_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot a worktree's database is cloned from: how old, main changed since."""
    from branchyard.db import freshness, snapshot
    from branchyard.db.provision import clones, snapshot_source

    if not clones(spec):
        return {}
    src = snapshot_source(spec, str(spec["server"]))
    record = snapshot.current(src)
    if record is None:
        return {}
    fresh = freshness.of(src, record)
    return {"snapshot": {"name": record.name, "text": fresh.text(), **fresh.as_json()}}


def _clone_method(conn: Any, spec: Mapping[str, Any]) -> CloneMethod:
    from branchyard.db import cloning, managed

    state = managed.load_state() if spec.get("managed") else None
    return cloning.of_server(conn, state.data_dir if state else None)


def _inspect_mysql(alloc: Allocation) -> dict[str, Any]:
    from branchyard.db import mysql

    spec = alloc.spec
    with mysql.connect(spec["server"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), COALESCE(sum(data_length + index_length), 0) FROM "
                    "information_schema.tables WHERE table_schema = %s", (spec["database"],))
        tables, size = cur.fetchone() or (0, 0)
        found = mysql.exists(conn, spec["database"])
    return {"exists": found, "tables": int(tables), "size": int(size)}


def _inspect_sqlite(alloc: Allocation) -> dict[str, Any]:
    from branchyard.db import sqlite

    path = Path(alloc.spec["path"])
    if not path.is_file():
        return {"exists": False}
    return {"exists": True, "tables": sqlite.table_count(path), "size": path.stat().st_size}


def _inspect_redis(alloc: Allocation) -> dict[str, Any]:
    from branchyard.db import redisdb

    with redisdb.connect(alloc.spec["url"]) as client:
        marker = 1 if client.exists(redisdb.MARKER) else 0
        return {"exists": True, "keys": int(client.dbsize()) - marker}


INSPECTORS: dict[str, Callable[[Allocation], dict[str, Any]]] = {
    "postgres": _inspect_postgres, "mysql": _inspect_mysql, "sqlite": _inspect_sqlite,
    "redis": _inspect_redis,
}


def reseed(name: str | None, branch: str | None = None, *, refresh: bool = False,
           exclusive: bool = False, reporter: Reporter | None = None) -> list[str]:
    """`db reset` (re-seed from the current snapshot) and `db pull` (``refresh``:
    make a new snapshot from main or the remote first). Returns the databases done."""
    target = find_target(branch)
    if target.main:
        raise UsageError("`db reset`/`db pull` act on a worktree's database, never main's",
                         hint="run it inside a worktree, or name its branch")
    allocs = [a for a in target.allocations if name is None or a.spec["name"] == name]
    if not allocs:
        pick(target, name)
    plan = plan_context(target.ctx, target.path, target.identity, reseed=True,
                        reporter=reporter, base_env=dict(target.record.env)
                        if target.record else {})
    done = []
    for alloc in allocs:
        if refresh and alloc.kind == "postgres":
            _refresh_snapshot(alloc, exclusive, plan.reporter)
        get_provider(alloc.kind).create(alloc, plan)
        done.append(str(alloc.spec["name"]))
    return done


def _refresh_snapshot(alloc: Allocation, exclusive: bool, reporter: Reporter) -> None:
    from branchyard.db import snapshot
    from branchyard.db.provision import clones, server_url, snapshot_source

    if clones(alloc.spec):
        src = snapshot_source(alloc.spec, server_url(alloc.spec))
        snapshot.make(src, exclusive=exclusive, reporter=reporter)


def _cloned_entries(name: str | None) -> tuple[Context, list[Allocation]]:
    from branchyard.db.provision import clones

    ctx = open_context()
    ident = Identity(branch="", slug="main", subdomain="", index=0)
    plan = plan_context(ctx, ctx.repo.main_path, ident)
    allocs = [a for a in get_provider("postgres").plan(plan)
              if (name is None or a.spec["name"] == name) and clones(a.spec)]
    if name is not None and not allocs:
        raise DatabaseError(f"no cloned Postgres database named {name!r} in the config",
                            hint="`branchyard db status` lists the databases")
    return ctx, allocs


def drop_snapshots(name: str | None = None) -> list[str]:
    """`db snapshot --drop`: drop the project's snapshots and warm pools (ledger-owned;
    the next clone makes a new snapshot)."""
    from branchyard.db import snapshot
    from branchyard.db.provision import server_url, snapshot_source

    ctx, allocs = _cloned_entries(name)
    gone = []
    for alloc in allocs:
        src = snapshot_source(alloc.spec, server_url(alloc.spec))
        gone.extend(snapshot.drop_all(ctx.repo.common_dir, src.key))
    return gone


def refresh_snapshots(name: str | None = None, *, exclusive: bool = False,
                      reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """`db snapshot`: a new snapshot of each cloned Postgres database's main."""
    from branchyard.db import pool, snapshot
    from branchyard.db.provision import server_url, snapshot_source

    ctx, allocs = _cloned_entries(name)
    made = []
    for alloc in allocs:
        spec = alloc.spec
        src = snapshot_source(spec, server_url(spec))
        record = snapshot.make(src, exclusive=exclusive, reporter=reporter)
        if src.pool:
            pool.spawn_refill(ctx.repo.common_dir, record.name)
        made.append({"name": spec["name"], "snapshot": record.name, "method": record.method})
    return made


def psql_argv(branch: str | None, args: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """psql against the worktree's database (main's own in main), password in the env."""
    from branchyard.db.postgres import tool
    from branchyard.db.provision import server_url
    from branchyard.db.urls import parse_url

    target = find_target(branch)  # in main (or naming it): main's own database
    alloc = pick(target, None, "postgres")
    server_url(alloc.spec)  # the managed server may need starting
    url = parse_url(alloc.spec["url"])
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    from dataclasses import replace

    return [tool("psql"), "-d", replace(url, password="").render(), *args], env


def snapshot_uses(ctx: Context) -> dict[str, int]:
    """How many of the ledger's worktrees clone from each snapshot key."""
    from branchyard.db.provision import clones, snapshot_source

    uses: dict[str, int] = {}
    for record in ctx.ledger.read().worktrees.values():
        for res in record.resources:
            spec = res.spec
            if res.kind == "postgres" and spec.get("role") == "worktree" and clones(spec):
                key = snapshot_source(spec, str(spec["server"])).key
                uses[key] = uses.get(key, 0) + 1
    return uses


def snapshots(ctx: Context | None = None) -> list[SnapshotInfo]:
    """The project's snapshots with their size and the worktrees cloned from them."""
    from branchyard.db import snapshot

    ctx = ctx or open_context()
    return snapshot.inventory(ctx.repo.common_dir, snapshot_uses(ctx))


def drop_unused_snapshots(ctx: Context | None = None) -> list[str]:
    """`gc --snapshots`: drop the snapshots (and warm pools) no worktree uses."""
    from branchyard.db import snapshot

    ctx = ctx or open_context()
    gone: list[str] = []
    for info in snapshots(ctx):
        if info.in_use == 0:
            gone.extend(snapshot.drop_all(ctx.repo.common_dir, info.key))
    return gone
