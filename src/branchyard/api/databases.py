"""The database tools behind `branchyard db …` and `branchyard psql`: which
worktree and database they act on, its URL, `db reset`/`db pull`, psql.

Each function finds the worktree's databases in the ledger (or, for the main
worktree, plans them), and returns frozen results; the CLI renders them.
`db status` is :mod:`branchyard.api.dbstatus`, `db snapshot`
:mod:`branchyard.api.snapshots`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from branchyard.config.model import DATABASE_ENGINES
from branchyard.context import Context, open_context
from branchyard.core.errors import UsageError, WorktreeError
from branchyard.core.events import NullReporter, Reporter
from branchyard.core.identity import Identity
from branchyard.ledger import WorktreeRecord
from branchyard.providers import get_provider
from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import DatabaseSpec, PostgresSpec, SqliteSpec

D = TypeVar("D", bound=DatabaseSpec)
MAIN = Identity(branch="", slug="main", subdomain="", index=0)  # the main worktree's


@dataclass(frozen=True)
class DbTarget:
    ctx: Context
    path: Path
    identity: Identity
    record: WorktreeRecord | None  # None: the main worktree
    allocations: tuple[Allocation[DatabaseSpec], ...]

    @property
    def main(self) -> bool:
        return self.record is None


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
                   if isinstance(r.spec, DatabaseSpec))
    return DbTarget(ctx, Path(record.path), record.identity, record, allocs)


def _names_main(ctx: Context, name: str) -> bool:
    from branchyard.api.targets import resolve

    try:
        return os.path.realpath(resolve(ctx, name).path) == os.path.realpath(ctx.repo.main_path)
    except WorktreeError:
        return False


def _main_target(ctx: Context) -> DbTarget:
    return DbTarget(ctx, ctx.repo.main_path, MAIN, None, main_allocations(ctx))


def main_allocations(ctx: Context) -> tuple[Allocation[DatabaseSpec], ...]:
    """The main worktree's databases: its ``[[database]]`` sources themselves."""
    plan = plan_context(ctx, ctx.repo.main_path, MAIN)
    kinds = [k for k in DATABASE_ENGINES if any(d.engine == k for d in ctx.config.database)]
    return tuple(a for kind in kinds for a in get_provider(kind).plan(plan))


def plan_context(ctx: Context, worktree: Path, identity: Identity, *, reseed: bool = False,
                 reporter: Reporter | None = None,
                 base_env: dict[str, str] | None = None) -> PlanContext:
    """What a provider plans (and re-seeds) the databases of ``worktree`` with."""
    from branchyard.envfiles.files import main_env_files, read_env_files

    main_env = read_env_files(main_env_files(ctx.repo.main_path, ctx.config.env.shared))
    return PlanContext(repo=ctx.repo, config=ctx.config, identity=identity, worktree=worktree,
                       ports={}, url="", base_env=base_env or {}, main_env=main_env,
                       reseed=reseed, reporter=reporter or NullReporter())


def pick(target: DbTarget, name: str | None, engine: type[D]) -> Allocation[D]:
    """One database of the target of the ``engine`` spec class (``DatabaseSpec``:
    any): by config name, else the only (or first) one."""
    allocs = [Allocation(a.kind, a.key, a.spec) for a in target.allocations
              if isinstance(a.spec, engine) and (name is None or a.spec.name == name)]
    if not allocs:
        known = ", ".join(a.spec.name for a in target.allocations) or "none"
        what = f"{engine.kind} " if engine.kind else ""
        raise UsageError(f"no {what}database {name + ' ' if name else ''}in {target.path}",
                         hint=f"databases of this worktree: {known}")
    return allocs[0]


def url_of(name: str | None, branch: str | None = None
           ) -> tuple[str, Allocation[DatabaseSpec]]:
    """A database's URL (SQLite: its file)."""
    alloc = pick(find_target(branch), name, DatabaseSpec)
    spec = alloc.spec
    return (spec.path if isinstance(spec, SqliteSpec) else spec.env_value), alloc


def reseed(name: str | None, branch: str | None = None, *, refresh: bool = False,
           exclusive: bool = False, reporter: Reporter | None = None) -> list[str]:
    """`db reset` (re-seed from the current snapshot) and `db pull` (``refresh``:
    make a new snapshot from main or the remote first). Returns the databases done."""
    target = find_target(branch)
    if target.main:
        raise UsageError("`db reset`/`db pull` act on a worktree's database, never main's",
                         hint="run it inside a worktree, or name its branch")
    allocs = [a for a in target.allocations if name is None or a.spec.name == name]
    if not allocs:
        pick(target, name, DatabaseSpec)
    plan = plan_context(target.ctx, target.path, target.identity, reseed=True,
                        reporter=reporter, base_env=dict(target.record.env)
                        if target.record else {})
    done = []
    for alloc in allocs:
        if refresh and isinstance(alloc.spec, PostgresSpec):
            _refresh_snapshot(alloc.spec, exclusive, plan.reporter)
        get_provider(alloc.kind).create(alloc, plan)
        done.append(alloc.spec.name)
    return done


def _refresh_snapshot(spec: PostgresSpec, exclusive: bool, reporter: Reporter) -> None:
    from branchyard.db import snapshot
    from branchyard.db.provision import clones, server_url, snapshot_source

    if clones(spec):
        src = snapshot_source(spec, server_url(spec))
        snapshot.make(src, exclusive=exclusive, reporter=reporter)


def psql_argv(branch: str | None, args: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """psql against the worktree's database (main's own in main), password in the env."""
    from branchyard.db.pgclient import tool
    from branchyard.db.provision import server_url
    from branchyard.db.urls import parse_url

    target = find_target(branch)  # in main (or naming it): main's own database
    spec = pick(target, None, PostgresSpec).spec
    server_url(spec)  # the managed server may need starting
    url = parse_url(spec.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    from dataclasses import replace

    return [tool("psql"), "-d", replace(url, password="").render(), *args], env
