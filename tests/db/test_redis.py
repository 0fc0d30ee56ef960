"""RedisProvider against the machine's Redis at 127.0.0.1:6379 (indexes 14 and 15)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from branchyard.config import DatabaseConfig
from branchyard.db import redisdb
from branchyard.errors import DatabaseError
from branchyard.providers.base import RepoInfo
from branchyard.providers.redis import RedisProvider

from .conftest import plan_ctx

PROVIDER = RedisProvider()
MAIN_URL = "redis://127.0.0.1:6379/14"
ENTRY = DatabaseConfig(name="cache", engine="redis", source="env:REDIS_URL", env="REDIS_URL")


@pytest.fixture
def main_keys(uid: str) -> Iterator[list[str]]:
    client = redis.Redis.from_url(MAIN_URL)
    keys = [f"{uid}:k{i}" for i in range(5)]
    for key in keys:
        client.set(key, "v")
    yield keys
    client.delete(*keys)
    client.close()


def test_leased_index_gets_a_copy_and_only_it_is_flushed(
        project: RepoInfo, main_keys: list[str]) -> None:
    ctx = plan_ctx(project, ENTRY, main_env={"REDIS_URL": MAIN_URL})
    [alloc] = PROVIDER.plan(ctx)
    assert alloc.spec["index"] == 15
    assert PROVIDER.env(alloc) == {"REDIS_URL": "redis://127.0.0.1:6379/15"}
    leased = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    assert leased.dbsize() == 0, "index 15 must be free for this test"
    try:
        assert PROVIDER.create(alloc, ctx) is True
        copied = leased.keys(f"{main_keys[0][:9]}*")
        assert sorted(k.decode() if isinstance(k, bytes) else k for k in copied) == main_keys
        assert PROVIDER.plan(ctx)[0].spec["index"] == 15  # same owner, same lease
        PROVIDER.destroy(alloc)
        assert leased.dbsize() == 0
        main = redis.Redis.from_url(MAIN_URL)
        assert main.exists(*main_keys) == len(main_keys)
        main.close()
    finally:
        leased.close()
    assert redisdb.leased_indexes()["127.0.0.1:6379"] == {}


def test_an_index_with_foreign_keys_is_refused_and_skipped(
        project: RepoInfo, main_keys: list[str], uid: str) -> None:
    leased = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    leased.set(f"{uid}:someone-else", "1")
    try:
        ctx = plan_ctx(project, ENTRY, main_env={"REDIS_URL": MAIN_URL})
        [alloc] = PROVIDER.plan(ctx)
        with pytest.raises(DatabaseError, match="did not put there"):
            PROVIDER.create(alloc, ctx)
        PROVIDER.destroy(alloc)  # the undo: must not flush someone else's keys
        assert leased.get(f"{uid}:someone-else") == b"1"
        assert PROVIDER.plan(ctx)[0].spec["index"] == 13
    finally:
        leased.delete(f"{uid}:someone-else")
        leased.close()


def test_single_database_server_gets_a_key_prefix(
        project: RepoInfo, main_keys: list[str]) -> None:
    from branchyard.db import redisdb

    redisdb.record_database_count("127.0.0.1:6379", 1)  # as a server with `databases 1`
    ctx = plan_ctx(project, ENTRY, main_env={"REDIS_URL": MAIN_URL})
    [alloc] = PROVIDER.plan(ctx)
    prefix = f"{ctx.identity.slug}:"
    assert PROVIDER.env(alloc) == {"REDIS_URL": MAIN_URL, "REDIS_KEY_PREFIX": prefix}
    assert PROVIDER.create(alloc, ctx) is False
    main = redis.Redis.from_url(MAIN_URL)
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
