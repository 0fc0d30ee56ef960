"""Postgres: one database per worktree, cloned from the main database's snapshot.

``plan`` derives everything from config and the identity (the managed cluster's
port is read from its state file, reserved on first use); ``create`` seeds;
``destroy`` needs only the ledger's spec and refuses to drop a main database.
"""

from __future__ import annotations

from typing import Any

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import DatabaseError
from branchyard.db import owner, sources
from branchyard.db.urls import mask_url, parse_url
from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import PostgresSpec

KIND = "postgres"
ADMIN_DB = "postgres"


class PostgresProvider:
    kind = KIND

    def plan(self, ctx: PlanContext) -> list[Allocation[PostgresSpec]]:
        return [plan_entry(entry, ctx) for entry in ctx.config.database
                if entry.engine == KIND]

    def exists(self, alloc: Allocation[PostgresSpec]) -> bool:
        from branchyard.db import postgres as pg
        from branchyard.db.provision import server_url

        with pg.connect(server_url(alloc.spec)) as conn:  # starts the managed server
            return pg.exists(conn, alloc.spec.database)

    def found(self, alloc: Allocation[PostgresSpec]) -> bool:
        return alloc.spec.role == "worktree" and self.exists(alloc)

    def create(self, alloc: Allocation[PostgresSpec], ctx: PlanContext) -> bool:
        from branchyard.db.provision import provision

        return provision(alloc.spec, ctx)

    def destroy(self, alloc: Allocation[PostgresSpec]) -> None:
        from branchyard.db.provision import drop_worktree_database

        drop_worktree_database(alloc.spec)

    def env(self, alloc: Allocation[PostgresSpec]) -> dict[str, str]:
        return {alloc.spec.env: alloc.spec.url}

    def describe(self, alloc: Allocation[PostgresSpec]) -> dict[str, Any]:
        spec = alloc.spec
        return {"name": spec.name, "engine": KIND, "database": spec.database,
                "url": mask_url(spec.url), "role": spec.role, "managed": spec.managed,
                "adopted": spec.adopted}


def plan_entry(entry: DatabaseConfig, ctx: PlanContext) -> Allocation[PostgresSpec]:
    """The allocation of one ``[[database]]`` entry for the worktree in ``ctx``."""
    from branchyard.db.postgres import check_name

    main_url, managed = main_database_url(entry, ctx)
    main = parse_url(main_url).database
    is_main = sources.is_main_worktree(ctx.worktree, ctx.repo.main_path)
    server = entry.server or parse_url(main_url).with_database(ADMIN_DB).render()
    holder = owner.owner_for(ctx.repo.common_dir, ctx.worktree)
    shared = owner.is_shared(server, entry.shared)
    target = main if is_main else sources.name_from_template(entry, main, ctx.identity.slug)
    if shared and not is_main:
        target = owner.shared_name(target, holder.short)
    try:
        check_name(target)
    except DatabaseError as exc:
        raise DatabaseError(f"[[database]] {entry.name!r}: {exc.message}", exc.hint) from None
    if not is_main and target == main and _same_server(server, main_url):
        raise sources.refuse_main(entry, target)
    seed_source = ""
    if entry.seed.startswith("dump:"):
        seed_source = sources.resolve(entry.seed[len("dump:"):], ctx.main_env, entry, "seed")
    spec = PostgresSpec(
        name=entry.name, role="main" if is_main else "worktree", server=server,
        database=target, main=main, main_url=main_url,
        url=parse_url(main_url).with_database(target).render(), env=entry.env,
        seed=entry.seed, seed_source=seed_source, setup=tuple(entry.setup), pool=entry.pool,
        managed=managed, common_dir=str(ctx.repo.common_dir),
        migrations_query=entry.migrations_query, refresh=entry.refresh, shared=shared,
        owner=holder, server_config=ctx.config.server if managed else None)
    return Allocation(KIND, f"db:{entry.name}", spec)


def _same_server(a: str, b: str) -> bool:
    return parse_url(a).address == parse_url(b).address


def main_database_url(entry: DatabaseConfig, ctx: PlanContext) -> tuple[str, bool]:
    """The main database's URL, and whether it lives on the managed cluster."""
    if entry.source:
        return sources.resolve(entry.source, ctx.main_env, entry), False
    main = sources.default_main_name(ctx.repo.project, entry)
    if entry.server:
        return parse_url(entry.server).with_database(main).render(), False
    from branchyard.db import managed

    state = managed.reserve(ctx.config.server)
    return parse_url(state.url).with_database(main).render(), True
