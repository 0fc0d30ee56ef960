"""PostgresProvider against the machine's Postgres at 127.0.0.1:5432."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import ConfigError, DatabaseError
from branchyard.db import pool, records
from branchyard.db import postgres as pg
from branchyard.ledger import Ledger
from branchyard.providers.postgres import PostgresProvider
from branchyard.repo.locate import RepoInfo

from .conftest import PG_ADMIN, pg_names, pg_url, plan_ctx

PROVIDER = PostgresProvider()


def entry(main: str, **kw: object) -> DatabaseConfig:
    return DatabaseConfig(name="app", source="env:DATABASE_URL", **kw)  # type: ignore[arg-type]


def count_rows(name: str) -> int:
    with pg.connect(pg_url(name)) as conn:
        row = conn.execute("SELECT count(*) FROM items").fetchone()
    return int(row[0]) if row else -1


def allow_conn(name: str) -> bool:
    with pg.connect(PG_ADMIN) as conn:
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_clone_has_main_rows_and_destroy_drops_only_the_clone(
        project: RepoInfo, main_db: str, uid: str) -> None:
    ctx = plan_ctx(project, entry(main_db), main_env={"DATABASE_URL": pg_url(main_db)})
    [alloc] = PROVIDER.plan(ctx)
    target = alloc.spec.database
    assert target == f"{main_db}_{ctx.identity.slug}"
    assert PROVIDER.env(alloc) == {"DATABASE_URL": pg_url(target)}
    assert PROVIDER.create(alloc, ctx) is True
    assert count_rows(target) == 100
    snaps = records.snapshots(Ledger(project.common_dir).read())
    assert [s.state for s in snaps] == ["ready"]
    assert snaps[0].name in pg_names(uid) and not allow_conn(snaps[0].name)
    PROVIDER.destroy(alloc)
    PROVIDER.destroy(alloc)  # already gone is fine
    assert pg_names(uid) == {main_db, snaps[0].name}
    assert count_rows(main_db) == 100


def test_existing_tables_are_kept_unless_reseed(project: RepoInfo, main_db: str) -> None:
    env = {"DATABASE_URL": pg_url(main_db)}
    ctx = plan_ctx(project, entry(main_db), main_env=env)
    [alloc] = PROVIDER.plan(ctx)
    PROVIDER.create(alloc, ctx)
    pg.run_sql(alloc.spec.url, "INSERT INTO items VALUES (1000, 'mine')")
    assert PROVIDER.create(alloc, ctx) is False
    assert count_rows(alloc.spec.database) == 101
    again = plan_ctx(project, entry(main_db), main_env=env, reseed=True)
    assert PROVIDER.create(alloc, again) is True
    assert count_rows(alloc.spec.database) == 100


def test_pool_hit_claims_a_spare_by_rename(project: RepoInfo, main_db: str, uid: str) -> None:
    env = {"DATABASE_URL": pg_url(main_db)}
    ctx = plan_ctx(project, entry(main_db, pool=1), main_env=env)
    [first] = PROVIDER.plan(ctx)
    PROVIDER.create(first, ctx)  # miss: clones, then starts a detached refill
    ledger = Ledger(project.common_dir)
    deadline = __import__("time").monotonic() + 30
    while not [p for p in records.pool(ledger.read()) if p.state == "ready"]:
        assert __import__("time").monotonic() < deadline, "the pool was not refilled"
        pool.refill(project.common_dir, records.snapshots(ledger.read())[0].name)
    [spare] = records.pool(ledger.read())
    assert not allow_conn(spare.name)
    ctx2 = plan_ctx(project, entry(main_db, pool=1), main_env=env, branch="feat/y")
    [second] = PROVIDER.plan(ctx2)
    PROVIDER.create(second, ctx2)
    assert spare.name not in pg_names(uid) or \
        [p.name for p in records.pool(ledger.read())] != [spare.name]
    assert count_rows(second.spec.database) == 100
    assert allow_conn(second.spec.database)
    for alloc in (first, second):
        PROVIDER.destroy(alloc)


def test_detached_refill_fills_the_pool(project: RepoInfo, main_db: str, uid: str) -> None:
    import time

    from branchyard.db import snapshot

    src = snapshot.SnapshotSource(project.common_dir, PG_ADMIN, pg_url(main_db), pool=2)
    snap = snapshot.ensure(src)
    pid = pool.spawn_refill(project.common_dir, snap.name)
    assert pid > 0
    # background work: a burst of `up`s on few cores is not slowed by its startup
    assert os.getpriority(os.PRIO_PROCESS, pid) == pool.REFILL_NICENESS
    ledger = Ledger(project.common_dir)
    deadline = time.monotonic() + 60
    while len([p for p in records.pool(ledger.read()) if p.state == "ready"]) < 2:
        assert time.monotonic() < deadline, "the detached refill did not fill the pool"
        time.sleep(0.05)
    names = {p.name for p in records.pool(ledger.read())}
    assert names <= pg_names(uid)
    assert snapshot.drop_all(project.common_dir, src.key) == [snap.name]
    assert pg_names(uid) == {main_db}


def test_a_burst_of_claims_starts_one_refill(project: RepoInfo, main_db: str) -> None:
    """Eight `up`s claiming at once each ask for a refill before the first refill
    process has started (0.3 s of interpreter startup, longer on busy cores): one
    process is started, not one per `up` (each would cost the burst its startup)."""
    from branchyard.db import snapshot

    from .conftest import wait_for_refills

    src = snapshot.SnapshotSource(project.common_dir, PG_ADMIN, pg_url(main_db), pool=1)
    snap = snapshot.ensure(src)
    pids = [pool.spawn_refill(project.common_dir, snap.name) for _ in range(8)]
    assert len([p for p in pids if p > 0]) == 1, pids
    wait_for_refills()
    assert not pool.refill_running(project.common_dir, snap.name)
    # the refill has ended: the next claim starts a new one
    assert pool.spawn_refill(project.common_dir, snap.name) > 0
    wait_for_refills()
    # a marker left by a refill that was killed (its pid gone) is replaced
    gone = subprocess.Popen(["true"])
    gone.wait()
    marker = project.common_dir / "branchyard" / f"pool-{snap.name}.spawned"
    marker.write_text(str(gone.pid))
    assert pool.spawn_refill(project.common_dir, snap.name) > 0
    wait_for_refills()
    assert not marker.exists()
    assert snapshot.drop_all(project.common_dir, src.key) == [snap.name]


def test_new_snapshot_retires_the_old_one_and_its_pool(
        project: RepoInfo, main_db: str, uid: str) -> None:
    from branchyard.db import snapshot

    src = snapshot.SnapshotSource(project.common_dir, PG_ADMIN, pg_url(main_db), pool=1)
    old = snapshot.ensure(src)
    pool.refill(project.common_dir, old.name)
    new = snapshot.make(src)
    assert new.generation == old.generation + 1
    assert pg_names(uid) == {main_db, new.name}
    assert records.pool(Ledger(project.common_dir).read()) == []


def test_busy_main_is_snapshotted_by_dump_and_exclusive_ends_sessions(
        project: RepoInfo, main_db: str) -> None:
    from branchyard.db import snapshot

    src = snapshot.SnapshotSource(project.common_dir, PG_ADMIN, pg_url(main_db))
    with pg.connect(pg_url(main_db)) as busy:
        made = snapshot.make(src)
        assert made.method == "dump"
        assert not busy.closed
        exclusive = snapshot.make(src, exclusive=True)
    assert exclusive.method == "template"
    assert count_rows(main_db) == 100


def test_name_too_long_is_refused_at_plan(project: RepoInfo, main_db: str) -> None:
    long_entry = entry(main_db, database="{main}_{slug}_" + "x" * 40)
    ctx = plan_ctx(project, long_entry, main_env={"DATABASE_URL": pg_url(main_db)})
    with pytest.raises(DatabaseError, match="Postgres allows at most 63"):
        PROVIDER.plan(ctx)


def test_missing_env_source_names_the_variable(project: RepoInfo) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        PROVIDER.plan(plan_ctx(project, entry("x")))


def test_main_database_missing_is_a_clear_error(project: RepoInfo, uid: str) -> None:
    ctx = plan_ctx(project, entry("x"), main_env={"DATABASE_URL": pg_url(f"{uid}_nope")})
    [alloc] = PROVIDER.plan(ctx)
    with pytest.raises(DatabaseError, match=f"main database '{uid}_nope' does not exist"):
        PROVIDER.create(alloc, ctx)
    assert pg_names(uid) == set()


def test_server_down_names_host_and_port(project: RepoInfo) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/app"
    ctx = plan_ctx(project, entry("x"), main_env={"DATABASE_URL": url})
    [alloc] = PROVIDER.plan(ctx)
    with pytest.raises(DatabaseError) as info:
        PROVIDER.create(alloc, ctx)
    assert f"127.0.0.1:{port}" in info.value.message
    assert "branchyard server start" in info.value.hint


def test_empty_seed_then_setup_commands_get_the_url(project: RepoInfo, main_db: str) -> None:
    cfg = entry(main_db, seed="empty", env="WORLD_URL", database="{main}_world_{slug}",
                setup=('psql "$WORLD_URL" -qc "CREATE TABLE world (id int)"',))
    ctx = plan_ctx(project, cfg, main_env={"DATABASE_URL": pg_url(main_db)})
    [alloc] = PROVIDER.plan(ctx)
    assert PROVIDER.create(alloc, ctx) is True
    assert pg.table_count(alloc.spec.url) == 1
    assert PROVIDER.create(alloc, ctx) is False  # has tables: setup is not run again
    PROVIDER.destroy(alloc)


def test_dump_seed_pulls_from_a_remote_url(project: RepoInfo, main_db: str, uid: str) -> None:
    remote = f"postgresql://postgres@localhost:5432/{main_db}"  # another address: dumped
    cfg = DatabaseConfig(name="app", server=PG_ADMIN, seed=f"dump:{remote}",
                         database=f"{uid}_pulled_{{slug}}")
    ctx = plan_ctx(project, cfg)
    [alloc] = PROVIDER.plan(ctx)
    PROVIDER.create(alloc, ctx)
    assert count_rows(alloc.spec.database) == 100
    [snap] = records.snapshots(Ledger(project.common_dir).read())
    assert snap.method == "dump"
    PROVIDER.destroy(alloc)
    from branchyard.db import snapshot

    snapshot.drop_all(project.common_dir, snap.key)  # the snapshot is not under uid


def test_main_worktree_gets_main_and_destroy_never_drops_it(
        project: RepoInfo, main_db: str) -> None:
    ctx = plan_ctx(project, entry(main_db), main_env={"DATABASE_URL": pg_url(main_db)},
                   worktree=project.main_path)
    [alloc] = PROVIDER.plan(ctx)
    assert alloc.spec.role == "main" and alloc.spec.database == main_db
    assert PROVIDER.create(alloc, ctx) is False
    PROVIDER.destroy(alloc)
    forged = replace(alloc.spec, role="worktree")  # a tampered record naming main
    PROVIDER.destroy(type(alloc)(alloc.kind, alloc.key, forged))
    assert count_rows(main_db) == 100


def test_interrupted_clone_leaves_nothing(project: RepoInfo, main_db: str, uid: str,
                                          tmp_path: Path) -> None:
    """Ctrl-C while CREATE DATABASE runs: the statement is cancelled, nothing stays."""
    import signal
    import subprocess
    import sys
    import time

    pg.run_sql(pg_url(main_db), "CREATE TABLE bulk AS SELECT g AS id, repeat('x', 200) AS pad "
               "FROM generate_series(1, 400000) g")
    target = f"{uid}_interrupted"
    script = tmp_path / "clone.py"
    script.write_text(
        "from branchyard.db import postgres as pg\n"
        f"with pg.connect({PG_ADMIN!r}) as conn:\n"
        f"    pg.create(conn, {target!r}, template={main_db!r})\n")
    child = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE,
                             env=dict(os.environ))
    deadline = time.monotonic() + 20
    with pg.connect(PG_ADMIN) as conn:
        while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE "
                               "'CREATE DATABASE%%' AND query LIKE %s",
                               (f"%{target}%",)).fetchone():
            assert child.poll() is None, "the clone finished before it could be interrupted"
            assert time.monotonic() < deadline
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert b"KeyboardInterrupt" in err
    assert target not in pg_names(uid)


def test_doctor_finds_and_removes_unfinished_pool_and_snapshot_records(
        project: RepoInfo, main_db: str, uid: str) -> None:
    from branchyard.db import snapshot, upkeep
    from branchyard.db.records import PoolRecord

    src = snapshot.SnapshotSource(project.common_dir, PG_ADMIN, pg_url(main_db))
    snap = snapshot.ensure(src)
    crashed = PoolRecord(name=f"{uid}__pool_crashed", server=PG_ADMIN, snapshot=snap.name,
                         created=0.0)
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, crashed.name, template=snap.name, allow_connections=False)
    with Ledger(project.common_dir).update() as state:
        records.put_pool(state, crashed)
    [orphan] = upkeep.find_orphans(project.common_dir)
    assert (orphan.kind, orphan.name) == ("pool", crashed.name)
    assert upkeep.remove_orphans(project.common_dir, [orphan]) == [crashed.name]
    assert crashed.name not in pg_names(uid)
    assert upkeep.find_orphans(project.common_dir) == []
    assert snap.name in pg_names(uid)


def test_parallel_ups_make_one_snapshot(project: RepoInfo, main_db: str, uid: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from branchyard.db import snapshot

    src = snapshot.SnapshotSource(project.common_dir, PG_ADMIN, pg_url(main_db))
    with ThreadPoolExecutor(3) as workers:
        made = list(workers.map(lambda _: snapshot.ensure(src), range(3)))
    assert len({m.name for m in made}) == 1
    assert [n for n in pg_names(uid) if "__snap_" in n] == [made[0].name]


def test_command_seed_runs_with_the_new_url(project: RepoInfo, main_db: str) -> None:
    cfg = entry(main_db, seed='command:psql "$DATABASE_URL" -qc "CREATE TABLE fixture (id int)"')
    ctx = plan_ctx(project, cfg, main_env={"DATABASE_URL": pg_url(main_db)})
    [alloc] = PROVIDER.plan(ctx)
    assert PROVIDER.create(alloc, ctx) is True
    with pg.connect(alloc.spec.url) as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables "
                                            "WHERE schemaname = 'public'")}
    assert names == {"fixture"}  # a command seed starts empty, not from main
    PROVIDER.destroy(alloc)


def test_an_adopted_database_is_found_and_never_destroyed(project: RepoInfo,
                                                          main_db: str) -> None:
    from branchyard.core.errors import UnsafeError
    from branchyard.resources.plan import Allocation

    ctx = plan_ctx(project, entry(main_db), main_env={"DATABASE_URL": pg_url(main_db)})
    [alloc] = PROVIDER.plan(ctx)
    assert PROVIDER.found(alloc) is False
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, alloc.spec.database)
    assert PROVIDER.found(alloc) is True
    adopted = Allocation(alloc.kind, alloc.key, replace(alloc.spec, adopted=True))
    assert PROVIDER.create(adopted, ctx) is False  # used as it is, even empty
    with pytest.raises(UnsafeError):
        PROVIDER.create(adopted, plan_ctx(project, entry(main_db), reseed=True,
                                          main_env={"DATABASE_URL": pg_url(main_db)}))
    PROVIDER.destroy(adopted)
    with pg.connect(PG_ADMIN) as conn:
        assert pg.exists(conn, alloc.spec.database)
