"""RedisProvider against the machine's Redis at 127.0.0.1:6379, on indexes each
test leases (empty, checked and marked): another project's keys in any fixed
index — the `strangers` fixture puts some where these tests once looked — change
nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import DatabaseError
from branchyard.db import redisdb
from branchyard.providers.redis import RedisProvider
from branchyard.repo.locate import RepoInfo

from .conftest import REDIS_ADDRESS, RedisIndex, RedisLeases, plan_ctx, redis_owner

PROVIDER = RedisProvider()
ENTRY = DatabaseConfig(name="cache", engine="redis", source="env:REDIS_URL", env="REDIS_URL")


@pytest.fixture
def main_index(redis_leases: RedisLeases, strangers: list[int]) -> RedisIndex:
    """The main worktree's Redis index (leased: empty but for its mark)."""
    return redis_leases.take()


@pytest.fixture
def main_keys(uid: str, main_index: RedisIndex) -> Iterator[list[str]]:
    client = redis.Redis.from_url(main_index.url)
    keys = [f"{uid}:k{i}" for i in range(5)]
    for key in keys:
        client.set(key, "v")
    yield keys
    client.delete(*keys)
    client.close()


def for_provider(redis_leases: RedisLeases, project: RepoInfo) -> RedisIndex:
    """An index leased for the provider: marked with the owner it will write."""
    return redis_leases.take(redisdb.MARKER, redis_owner(project.common_dir, "feat/x", "cache"))


def test_leased_index_gets_a_copy_and_only_it_is_flushed(
        project: RepoInfo, redis_leases: RedisLeases, main_index: RedisIndex,
        main_keys: list[str]) -> None:
    target = for_provider(redis_leases, project)
    redis_leases.steer(target)
    ctx = plan_ctx(project, ENTRY, main_env={"REDIS_URL": main_index.url})
    [alloc] = PROVIDER.plan(ctx)
    assert alloc.spec.index == target.index
    assert PROVIDER.env(alloc) == {"REDIS_URL": target.url}
    leased = redis.Redis.from_url(target.url)
    try:
        assert PROVIDER.create(alloc, ctx) is True
        copied = leased.keys(f"{main_keys[0][:9]}*")
        assert sorted(k.decode() if isinstance(k, bytes) else k for k in copied) == main_keys
        assert PROVIDER.plan(ctx)[0].spec.index == target.index  # same owner, same lease
        PROVIDER.destroy(alloc)
        assert leased.dbsize() == 0
        main = redis.Redis.from_url(main_index.url)
        assert main.exists(*main_keys) == len(main_keys)
        main.close()
    finally:
        leased.close()
    assert redisdb.leased_indexes()[REDIS_ADDRESS] == {}


def test_an_index_with_foreign_keys_is_refused_and_skipped(
        project: RepoInfo, redis_leases: RedisLeases, main_index: RedisIndex,
        main_keys: list[str], uid: str) -> None:
    first, second = sorted([redis_leases.take(), redis_leases.take()],
                           key=lambda t: -t.index)  # the provider leases from the top
    redis_leases.steer(first, second)
    leased = redis.Redis.from_url(first.url)
    leased.set(f"{uid}:someone-else", "1")
    try:
        ctx = plan_ctx(project, ENTRY, main_env={"REDIS_URL": main_index.url})
        [alloc] = PROVIDER.plan(ctx)
        assert alloc.spec.index == first.index
        with pytest.raises(DatabaseError, match="did not put there"):
            PROVIDER.create(alloc, ctx)
        PROVIDER.destroy(alloc)  # the undo: must not flush someone else's keys
        assert leased.get(f"{uid}:someone-else") == b"1"
        assert PROVIDER.plan(ctx)[0].spec.index == second.index
    finally:
        leased.delete(f"{uid}:someone-else")
        leased.close()


def test_single_database_server_gets_a_key_prefix(
        project: RepoInfo, main_index: RedisIndex, main_keys: list[str]) -> None:
    redisdb.record_database_count(REDIS_ADDRESS, 1)  # as a server with `databases 1`
    ctx = plan_ctx(project, ENTRY, main_env={"REDIS_URL": main_index.url})
    [alloc] = PROVIDER.plan(ctx)
    prefix = f"{ctx.identity.slug}:"
    assert PROVIDER.env(alloc) == {"REDIS_URL": main_index.url, "REDIS_KEY_PREFIX": prefix}
    assert PROVIDER.create(alloc, ctx) is False
    main = redis.Redis.from_url(main_index.url)
    try:
        main.set(prefix + "session", "x")
        PROVIDER.destroy(alloc)
        assert main.exists(prefix + "session") == 0
        assert main.exists(*main_keys) == len(main_keys)
    finally:
        main.close()


def test_a_lease_file_without_a_version_is_read_and_rewritten_versioned() -> None:
    path = Path(os.environ["BRANCHYARD_STATE_DIR"]) / "redis-leases.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"10.0.0.9:6379": {"databases": 16, "leases": {"3": "o#a"}}}))
    assert redisdb.leased_indexes() == {"10.0.0.9:6379": {"3": "o#a"}}
    assert redisdb.lease_index("10.0.0.9:6379", "o#a", 0) == 3
    redisdb.release_index("10.0.0.9:6379", "o#a")
    doc = json.loads(path.read_text())
    assert doc == {"version": 1, "servers": {"10.0.0.9:6379": {"databases": 16, "leases": {}}}}
    assert path.stat().st_mode & 0o777 == 0o600
