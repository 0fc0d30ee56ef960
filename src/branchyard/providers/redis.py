"""Redis: a database index leased per worktree, flushed (only that index) on
teardown; a key prefix when the server has a single database."""

from __future__ import annotations

from typing import Any

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import ConfigError, DatabaseError
from branchyard.db import sources
from branchyard.db.hooks import run_database_hook
from branchyard.db.urls import mask_url, parse_url
from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import RedisSpec

KIND = "redis"


class RedisProvider:
    kind = KIND

    def plan(self, ctx: PlanContext) -> list[Allocation[RedisSpec]]:
        return [plan_entry(entry, ctx) for entry in ctx.config.database
                if entry.engine == KIND]

    def found(self, alloc: Allocation[RedisSpec]) -> bool:
        # An index is never adopted: one holding keys without branchyard's marker is
        # refused (and skipped from then on), so flushdb only ever hits our own keys.
        return False

    def exists(self, alloc: Allocation[RedisSpec]) -> bool:
        from branchyard.db import redisdb

        spec = alloc.spec
        if spec.role == "main" or spec.prefix:
            return True
        with redisdb.connect(spec.url) as client:
            return spec.index < redisdb.database_count(client)

    def create(self, alloc: Allocation[RedisSpec], ctx: PlanContext) -> bool:
        from branchyard.db import redisdb

        spec = alloc.spec
        if spec.role == "main":
            return False
        with redisdb.connect(spec.url) as client:
            _check_index(spec, client)
            if spec.prefix:
                return False  # a shared index: nothing to copy into a prefix
            _check_owner(spec, client)
            if client.dbsize() > 1 and not ctx.reseed:
                ctx.reporter.message(f"redis db {spec.index}: has keys; not seeding")
                return False
            client.flushdb()
            client.set(redisdb.MARKER, spec.owner)
            if spec.seed == "clone":
                copied = redisdb.copy_keys(_main_url(spec), spec.index)
                ctx.reporter.message(f"redis db {spec.index}: copied {copied} keys "
                                     f"from db {spec.main_index}")
        for command in spec.setup:
            run_database_hook(command, spec, ctx, "database setup")
        return True

    def destroy(self, alloc: Allocation[RedisSpec]) -> None:
        from branchyard.db import redisdb

        spec = alloc.spec
        if spec.role == "main":
            return
        address = parse_url(spec.url).address
        if spec.prefix:
            with redisdb.connect(spec.url) as client:
                redisdb.delete_prefix(client, spec.prefix)
        elif spec.index != spec.main_index:
            with redisdb.connect(spec.url) as client:
                if redisdb.owns(client, spec.owner):
                    client.flushdb()  # this connection selected the leased index only
        redisdb.release_index(address, spec.owner)

    def env(self, alloc: Allocation[RedisSpec]) -> dict[str, str]:
        spec = alloc.spec
        env = {spec.env: spec.url}
        if spec.prefix:
            env[spec.prefix_env] = spec.prefix
        return env

    def describe(self, alloc: Allocation[RedisSpec]) -> dict[str, Any]:
        spec = alloc.spec
        return {"name": spec.name, "engine": KIND, "database": str(spec.index),
                "url": mask_url(spec.url), "prefix": spec.prefix, "role": spec.role}


def plan_entry(entry: DatabaseConfig, ctx: PlanContext) -> Allocation[RedisSpec]:
    from branchyard.db import redisdb

    if not entry.source:
        raise ConfigError(f"[[database]] {entry.name!r}: a redis database needs `source`",
                          hint='e.g. source = "env:REDIS_URL"')
    main = parse_url(sources.resolve(entry.source, ctx.main_env, entry))
    main_index = int(main.database or 0)
    is_main = sources.is_main_worktree(ctx.worktree, ctx.repo.main_path)
    owner = redisdb.lease_owner(ctx.repo.common_dir, ctx.identity.slug, entry.name)
    index = main_index if is_main else redisdb.lease_index(main.address, owner, main_index)
    prefix = f"{ctx.identity.slug}:" if not is_main and index == main_index else ""
    spec = RedisSpec(name=entry.name, role="main" if is_main else "worktree",
                     url=main.with_database(str(index)).render(), index=index,
                     main_index=main_index, env=entry.env, prefix=prefix,
                     prefix_env=_prefix_var(entry.env), owner=owner, seed=entry.seed,
                     setup=tuple(entry.setup))
    return Allocation(KIND, f"db:{entry.name}", spec)


def _main_url(spec: RedisSpec) -> str:
    return parse_url(spec.url).with_database(str(spec.main_index)).render()


def _prefix_var(env: str) -> str:
    return (env.removesuffix("_URL") or env) + "_KEY_PREFIX"


def _check_index(spec: RedisSpec, client: Any) -> None:
    from branchyard.db import redisdb

    count = redisdb.database_count(client)
    if spec.index < count:
        return
    address = parse_url(spec.url).address
    redisdb.record_database_count(address, count)
    raise DatabaseError(
        f"the Redis server at {address} has {count} database(s); index {spec.index} "
        "does not exist",
        hint="run `branchyard setup` again: the worktree now gets a key prefix "
             f"({spec.prefix_env}) on database 0 instead")


def _check_owner(spec: RedisSpec, client: Any) -> None:
    """Refuse an index holding someone else's keys (and never lease it again)."""
    from branchyard.db import redisdb

    if client.dbsize() == 0 or redisdb.owns(client, spec.owner):
        return
    address = parse_url(spec.url).address
    redisdb.mark_foreign(address, spec.index, spec.owner)
    raise DatabaseError(
        f"Redis database {spec.index} on {address} holds keys branchyard did not put there",
        hint="run `branchyard setup` again: that index is now skipped")
