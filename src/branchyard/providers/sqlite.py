"""SQLite: each worktree gets its own copy of the main database file, and the
env var is rewritten to point at it (``file:./data/agent.db`` →
``file:./data/agent-<slug>.db``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import ConfigError, DatabaseError
from branchyard.db import sources
from branchyard.db.hooks import run_database_hook
from branchyard.resources.plan import Allocation, PlanContext, adopted_note, adopted_refusal
from branchyard.resources.specs import SqliteSpec

KIND = "sqlite"
DEFAULT_TEMPLATE = DatabaseConfig(name="").database
SQLITE_TEMPLATE = "{main}-{slug}"  # the file-name convention of the seed


class SqliteProvider:
    kind = KIND

    def plan(self, ctx: PlanContext) -> list[Allocation[SqliteSpec]]:
        return [plan_entry(entry, ctx) for entry in ctx.config.database
                if entry.engine == KIND]

    def exists(self, alloc: Allocation[SqliteSpec]) -> bool:
        return Path(alloc.spec.path).is_file()

    def found(self, alloc: Allocation[SqliteSpec]) -> bool:
        return alloc.spec.role == "worktree" and self.exists(alloc)

    def create(self, alloc: Allocation[SqliteSpec], ctx: PlanContext) -> bool:
        from branchyard.db import sqlite

        spec = alloc.spec
        path = Path(spec.path)
        if spec.role == "main":
            return False
        if spec.adopted and path.is_file():
            if ctx.reseed:
                raise adopted_refusal(str(path), f"`rm {path}`")
            ctx.reporter.message(adopted_note(path.name))
            return False
        tables = sqlite.table_count(path)
        if tables and not ctx.reseed:
            ctx.reporter.message(f"{path.name}: {tables} tables already; not seeding")
            return False
        sqlite.remove_database(path)
        _seed(spec, path, ctx)
        for command in spec.setup:
            run_database_hook(command, spec, ctx, "database setup")
        return True

    def destroy(self, alloc: Allocation[SqliteSpec]) -> None:
        from branchyard.db import sqlite

        spec = alloc.spec
        if spec.role == "main" or _same(spec.path, spec.main_path) or spec.adopted:
            return
        sqlite.remove_database(Path(spec.path))

    def env(self, alloc: Allocation[SqliteSpec]) -> dict[str, str]:
        return {alloc.spec.env: alloc.spec.value}

    def describe(self, alloc: Allocation[SqliteSpec]) -> dict[str, Any]:
        spec = alloc.spec
        return {"name": spec.name, "engine": KIND, "database": Path(spec.path).name,
                "url": spec.value, "path": spec.path, "role": spec.role,
                "adopted": spec.adopted}


def plan_entry(entry: DatabaseConfig, ctx: PlanContext) -> Allocation[SqliteSpec]:
    from branchyard.db.sqlite import parse_ref, renamed

    if not entry.source:
        raise ConfigError(f"[[database]] {entry.name!r}: a sqlite database needs `source`",
                          hint='e.g. source = "env:DATABASE_URL" or "data/app.db"')
    ref = parse_ref(sources.resolve(entry.source, ctx.main_env, entry))
    main_file = ref.resolve(ctx.repo.main_path)
    is_main = sources.is_main_worktree(ctx.worktree, ctx.repo.main_path)
    if is_main:
        mine, path = ref, main_file
    else:
        template = SQLITE_TEMPLATE if entry.database == DEFAULT_TEMPLATE else entry.database
        stem = sources.name_from_template(
            DatabaseConfig(name=entry.name, database=template), Path(ref.path).stem,
            ctx.identity.slug)
        mine = renamed(ref, stem)
        # a relative location is read from the worktree; an absolute one sits beside main's
        path = mine.resolve(ctx.worktree if not os.path.isabs(ref.path) else Path("/"))
        if _same(str(path), str(main_file)):
            raise sources.refuse_main(entry, str(main_file))
    spec = SqliteSpec(name=entry.name, role="main" if is_main else "worktree", path=str(path),
                      main_path=str(main_file), value=mine.render(), env=entry.env,
                      seed=entry.seed, setup=tuple(entry.setup))
    return Allocation(KIND, f"db:{entry.name}", spec)


def _seed(spec: SqliteSpec, path: Path, ctx: PlanContext) -> None:
    from branchyard.db import sqlite

    seed = spec.seed
    if seed == "clone":
        method = sqlite.copy_database(Path(spec.main_path), path)
        ctx.reporter.message(f"{path.name}: copied from {Path(spec.main_path).name} "
                             f"({method})")
    elif seed == "empty" or seed.startswith("command:"):
        sqlite.create_empty(path)
        if seed.startswith("command:"):
            run_database_hook(seed[len("command:"):], spec, ctx, "seed")
    else:
        raise DatabaseError(f"[[database]] {spec.name!r}: seed {seed!r} is not supported "
                            "for sqlite", hint="use clone, empty or command:<cmd>")



def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
