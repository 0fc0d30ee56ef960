"""Fixtures for the database tests: the machine's real servers, unique names,
and cleanup of exactly what each test made."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from branchyard.config import Config, DatabaseConfig
from branchyard.db import postgres as pg
from branchyard.identity import derive_identity
from branchyard.repo import RepoInfo
from branchyard.resources.plan import PlanContext
from tests.conftest import make_repo

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def pg_names(prefix: str) -> set[str]:
    with pg.connect(PG_ADMIN) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (prefix + "%",)).fetchall()
    return {r[0] for r in rows}


def wait_for_refills(timeout: float = 120) -> None:
    """Let the detached pool refills this test started finish (they are our
    children), so none creates a database after the test has cleaned up."""
    refills = [p for p in psutil.Process().children(recursive=True)
               if "_refill" in " ".join(_cmdline(p))]
    _, alive = psutil.wait_procs(refills, timeout=timeout)
    assert not alive, f"pool refills still running: {alive}"


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except psutil.Error:
        return []


@pytest.fixture
def uid() -> str:
    """A unique, lowercase prefix for this test's databases."""
    return f"byt{secrets.token_hex(3)}"


@pytest.fixture
def main_db(uid: str) -> Iterator[str]:
    """A main database with a table of 100 rows; every database whose name starts
    with this test's prefix is dropped afterwards (they are all this test's)."""
    name = f"{uid}_main"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, name)
    pg.run_sql(pg_url(name), "CREATE TABLE items (id int PRIMARY KEY, label text)",
               "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
    yield name
    wait_for_refills()
    with pg.connect(PG_ADMIN) as conn:
        for leftover in pg_names(uid):
            pg.drop(conn, leftover)


@pytest.fixture
def project(tmp_path: Path) -> RepoInfo:
    main = make_repo(tmp_path / "app")
    return RepoInfo(common_dir=main / ".git", main_path=main, name="app", project="app")


def plan_ctx(repo: RepoInfo, *entries: DatabaseConfig, branch: str = "feat/x",
             main_env: dict[str, str] | None = None, reseed: bool = False,
             worktree: Path | None = None) -> PlanContext:
    wt = worktree or repo.main_path.parent / f"wt-{branch.replace('/', '-')}"
    wt.mkdir(exist_ok=True)
    return PlanContext(repo=repo, config=Config(database=tuple(entries)),
                       identity=derive_identity(branch), worktree=wt, ports={}, url="",
                       main_env=main_env or {}, reseed=reseed)


REDIS_ADDRESS = "127.0.0.1:6379"
OLD_FIXED_INDEXES = (14, 15)  # what these tests once assumed free
CLAIM_KEY = "__branchyard_test_claim__"
# Checked empty and marked in one step on the server, so two test runs (here or
# in another checkout) never take the same index.
CLAIM_SCRIPT = ("if redis.call('DBSIZE') == 0 then redis.call('SET', KEYS[1], ARGV[1]) "
                "return 1 end return 0")


@dataclass(frozen=True)
class RedisIndex:
    index: int
    key: str  # the mark it carries while the test holds it
    value: str

    @property
    def url(self) -> str:
        return f"redis://{REDIS_ADDRESS}/{self.index}"


class RedisLeases:
    """Empty Redis indexes leased by one test, and branchyard's own lease file (in
    the sealed state dir) pointed at them, so the provider picks exactly these."""

    def __init__(self, databases: int) -> None:
        self.databases = databases
        self.taken: list[RedisIndex] = []

    def take(self, key: str = CLAIM_KEY, value: str = "") -> RedisIndex:
        """An index that was empty, now marked ``key = value`` (default: a test mark;
        pass branchyard's lease marker and an owner to hand it to the provider)."""
        import redis

        value = value or f"test-{secrets.token_hex(4)}"
        for index in range(self.databases - 1, 0, -1):
            if index in {t.index for t in self.taken}:
                continue
            client = redis.Redis.from_url(f"redis://{REDIS_ADDRESS}/{index}")
            try:
                if client.eval(CLAIM_SCRIPT, 1, key, value):
                    self.taken.append(RedisIndex(index, key, value))
                    return self.taken[-1]
            finally:
                client.close()
        pytest.skip(f"every Redis database index on {REDIS_ADDRESS} holds keys")

    def steer(self, *wanted: RedisIndex) -> None:
        """Make branchyard lease only ``wanted`` (every other index is marked as
        holding foreign data in the sealed state dir's lease file)."""
        from branchyard.db import redisdb

        redisdb.record_database_count(REDIS_ADDRESS, self.databases)
        keep = {w.index for w in wanted}
        for index in range(1, self.databases):
            if index not in keep:
                redisdb.mark_foreign(REDIS_ADDRESS, index, "")

    def release(self) -> None:
        """Remove our mark where it is still ours; an index the provider was
        handed is flushed as its own teardown would (it was empty when taken)."""
        import redis

        from branchyard.db import redisdb

        for taken in self.taken:
            client = redis.Redis.from_url(taken.url)
            try:
                if client.get(taken.key) == taken.value.encode():
                    if taken.key == redisdb.MARKER:
                        client.flushdb()
                    else:
                        client.delete(taken.key)
            finally:
                client.close()


@pytest.fixture
def redis_leases() -> Iterator[RedisLeases]:
    """Lease Redis indexes for a test (skipped when Redis is not running)."""
    import redis

    client = redis.Redis.from_url(f"redis://{REDIS_ADDRESS}/0", socket_connect_timeout=2)
    try:
        databases = int(client.config_get("databases").get("databases") or 16)
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {REDIS_ADDRESS}")
    finally:
        client.close()
    leases = RedisLeases(databases)
    try:
        yield leases
    finally:
        leases.release()


def redis_owner(common_dir: Path, branch: str, name: str) -> str:
    """The owner branchyard's Redis provider writes into the index it leases."""
    return f"{common_dir}|{derive_identity(branch).slug}|{name}"


@pytest.fixture
def strangers(uid: str) -> Iterator[list[int]]:
    """Someone else's key in each index the Redis tests once took for granted (the
    real failure: index 15 held another project's keys); only ours is removed."""
    import redis

    put: list[int] = []
    for index in OLD_FIXED_INDEXES:
        client = redis.Redis.from_url(f"redis://{REDIS_ADDRESS}/{index}")
        try:
            if client.set(f"{uid}:stranger", "not yours", nx=True):
                put.append(index)
        except redis.ConnectionError:
            pytest.skip(f"Redis is not running at {REDIS_ADDRESS}")
        finally:
            client.close()
    yield put
    for index in put:
        client = redis.Redis.from_url(f"redis://{REDIS_ADDRESS}/{index}")
        client.delete(f"{uid}:stranger")
        client.close()


def managed_state_home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A state dir of its own for a module's managed cluster (BRANCHYARD_STATE_DIR
    set for the module); the cluster is removed and the variable put back after."""
    from branchyard.db import managed

    home = tmp_path_factory.mktemp(name) / "state"
    saved = os.environ.get("BRANCHYARD_STATE_DIR")
    os.environ["BRANCHYARD_STATE_DIR"] = str(home)
    try:
        yield home
    finally:
        managed.remove_cluster()
        if saved is None:
            os.environ.pop("BRANCHYARD_STATE_DIR", None)
        else:
            os.environ["BRANCHYARD_STATE_DIR"] = saved
