"""MySQL/MariaDB: one database per worktree, cloned from main, dropped on teardown."""

from __future__ import annotations

from typing import Any

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import ConfigError, DatabaseError
from branchyard.db import sources
from branchyard.db.hooks import run_database_hook
from branchyard.db.urls import mask_url, parse_url
from branchyard.resources.plan import Allocation, PlanContext, adopted_note, adopted_refusal
from branchyard.resources.specs import MysqlSpec

KIND = "mysql"


class MysqlProvider:
    kind = KIND

    def plan(self, ctx: PlanContext) -> list[Allocation[MysqlSpec]]:
        return [plan_entry(entry, ctx) for entry in ctx.config.database
                if entry.engine == KIND]

    def exists(self, alloc: Allocation[MysqlSpec]) -> bool:
        from branchyard.db import mysql

        with mysql.connect(alloc.spec.server) as conn:
            return mysql.exists(conn, alloc.spec.database)

    def found(self, alloc: Allocation[MysqlSpec]) -> bool:
        return alloc.spec.role == "worktree" and self.exists(alloc)

    def create(self, alloc: Allocation[MysqlSpec], ctx: PlanContext) -> bool:
        from branchyard.db import mysql

        spec = alloc.spec
        target, main = spec.database, spec.main
        with mysql.connect(spec.server) as conn:
            if spec.role == "main":
                if not mysql.exists(conn, main):
                    raise _main_missing(spec)
                return False
            if spec.adopted and mysql.exists(conn, target):
                if ctx.reseed:
                    raise adopted_refusal(target, f"`DROP DATABASE {target}`")
                ctx.reporter.message(adopted_note(target))
                return False
            tables = mysql.table_count(conn, target)
            if tables and not ctx.reseed:
                ctx.reporter.message(f"{target}: {tables} tables already; not seeding")
                return False
            mysql.drop(conn, target)  # empty, or --reseed: ours to replace
            if spec.seed == "clone" and not mysql.exists(conn, main):
                raise _main_missing(spec)
            if spec.seed == "clone":
                mysql.create_like(conn, target, main)
            else:
                mysql.create(conn, target)
        try:
            _seed(spec, ctx)
        except BaseException:
            with mysql.connect(spec.server) as conn:
                mysql.drop(conn, target)  # a half-loaded clone is never left behind
            raise
        for command in spec.setup:
            run_database_hook(command, spec, ctx, "database setup")
        return True

    def destroy(self, alloc: Allocation[MysqlSpec]) -> None:
        from branchyard.db import mysql

        spec = alloc.spec
        if spec.role == "main" or spec.database == spec.main or spec.adopted:
            return
        with mysql.connect(spec.server) as conn:
            mysql.drop(conn, spec.database)

    def env(self, alloc: Allocation[MysqlSpec]) -> dict[str, str]:
        return {alloc.spec.env: alloc.spec.url}

    def describe(self, alloc: Allocation[MysqlSpec]) -> dict[str, Any]:
        spec = alloc.spec
        return {"name": spec.name, "engine": KIND, "database": spec.database,
                "url": mask_url(spec.url), "role": spec.role, "adopted": spec.adopted}


def plan_entry(entry: DatabaseConfig, ctx: PlanContext) -> Allocation[MysqlSpec]:
    from branchyard.db.mysql import check_name

    if not entry.source:
        raise ConfigError(f"[[database]] {entry.name!r}: a mysql database needs `source`",
                          hint='e.g. source = "env:DATABASE_URL"')
    main_url = sources.resolve(entry.source, ctx.main_env, entry)
    main = parse_url(main_url).database
    is_main = sources.is_main_worktree(ctx.worktree, ctx.repo.main_path)
    target = main if is_main else sources.name_from_template(entry, main, ctx.identity.slug)
    try:
        check_name(target)
    except DatabaseError as exc:
        raise DatabaseError(f"[[database]] {entry.name!r}: {exc.message}", exc.hint) from None
    server = entry.server or parse_url(main_url).with_database("").render()
    if not is_main and target == main and \
            parse_url(server).address == parse_url(main_url).address:
        raise sources.refuse_main(entry, target)
    spec = MysqlSpec(name=entry.name, role="main" if is_main else "worktree", server=server,
                     database=target, main=main, main_url=main_url,
                     url=parse_url(main_url).with_database(target).render(), env=entry.env,
                     seed=entry.seed, setup=tuple(entry.setup))
    return Allocation(KIND, f"db:{entry.name}", spec)


def _main_missing(spec: MysqlSpec) -> DatabaseError:
    return DatabaseError(
        f"[[database]] {spec.name!r}: the main database {spec.main!r} does not exist on "
        f"the MySQL server at {parse_url(spec.server).address}",
        hint="create it, fix `source`, or set seed = \"empty\"")


def _seed(spec: MysqlSpec, ctx: PlanContext) -> None:
    seed = spec.seed
    if seed == "clone":
        _clone(spec, ctx)
    elif seed.startswith("command:"):
        run_database_hook(seed[len("command:"):], spec, ctx, "seed")
    elif seed != "empty":
        raise DatabaseError(f"[[database]] {spec.name!r}: seed {seed!r} is not supported "
                            "for mysql", hint="use clone, empty or command:<cmd>")


def _clone(spec: MysqlSpec, ctx: PlanContext) -> None:
    """Inside the server when main is plain tables on the same server (fast);
    otherwise a streamed mysqldump | mysql (views, triggers, routines, events)."""
    from branchyard.db import mysql

    same = parse_url(spec.main_url).address == parse_url(spec.server).address
    with mysql.connect(spec.server) as conn:
        if same and mysql.server_side_copyable(conn, spec.main):
            tables = mysql.copy_server_side(conn, spec.main, spec.database)
            ctx.reporter.message(f"{spec.database}: copied {tables} tables of "
                                 f"{spec.main!r} inside the server")
            return
    ctx.reporter.message(f"{spec.database}: cloning {spec.main!r} (mysqldump)")
    mysql.clone(spec.main_url, spec.url)
