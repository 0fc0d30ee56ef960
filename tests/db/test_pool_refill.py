"""The warm pool refills after a burst of clones, not during it: a spare is made
once no CREATE DATABASE naming the snapshot has run for a moment, one at a time."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from branchyard.config.model import DatabaseConfig
from branchyard.db import pool, records
from branchyard.db import postgres as pg
from branchyard.ledger import Ledger
from branchyard.providers.postgres import PostgresProvider
from branchyard.repo.locate import RepoInfo

from .conftest import PG_ADMIN, pg_url, plan_ctx, wait_for_refills

PROVIDER = PostgresProvider()


def test_a_refill_waits_until_no_clone_runs(project: RepoInfo, main_db: str, uid: str) -> None:
    entry = DatabaseConfig(name="app", source=pg_url(main_db), pool=1)
    ctx = plan_ctx(project, entry)
    [alloc] = PROVIDER.plan(ctx)
    PROVIDER.create(alloc, ctx)  # a miss: makes the snapshot, starts a detached refill
    wait_for_refills()
    ledger = Ledger(project.common_dir)
    [snap] = records.snapshots(ledger.read())
    for spare in records.pool(ledger.read()):  # start from an empty pool
        with pg.connect(PG_ADMIN) as conn:
            pg.drop(conn, spare.name)
        with ledger.update() as state:
            records.forget_pool(state, spare.name)
    # A statement naming the snapshot that runs ~5 s: Postgres waits that long for
    # the sessions of a busy template to leave.
    busy = f"{snap.name}_busy"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, busy)
    ended: list[float] = []

    def slow_clone() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn, \
                pytest.raises(psycopg.Error):
            conn.execute(f'CREATE DATABASE "{uid}_slow" TEMPLATE "{busy}"')
        ended.append(time.monotonic())

    with psycopg.connect(pg_url(busy)):
        clone = threading.Thread(target=slow_clone)
        clone.start()
        time.sleep(0.5)
        assert pool.refill(project.common_dir, snap.name) == 1
        made = time.monotonic()
        clone.join()
    assert ended and made >= ended[0] + pool.QUIET_FOR * 0.9
    assert [p.state for p in records.pool(ledger.read())] == ["ready"]
    PROVIDER.destroy(alloc)


def test_a_refill_waits_while_an_up_is_setting_up(project: RepoInfo, main_db: str) -> None:
    from branchyard.ledger import WorktreeRecord

    entry = DatabaseConfig(name="app", source=pg_url(main_db), pool=1)
    ctx = plan_ctx(project, entry)
    [alloc] = PROVIDER.plan(ctx)
    PROVIDER.create(alloc, ctx)
    wait_for_refills()
    ledger = Ledger(project.common_dir)
    [snap] = records.snapshots(ledger.read())
    for spare in records.pool(ledger.read()):
        with pg.connect(PG_ADMIN) as conn:
            pg.drop(conn, spare.name)
        with ledger.update() as state:
            records.forget_pool(state, spare.name)
    with ledger.update() as state:  # another `up` of the burst, still setting up
        state.worktrees["other"] = WorktreeRecord("other", "other", "other", 9, "/nowhere")
    made: list[int] = []
    refill = threading.Thread(target=lambda: made.append(
        pool.refill(project.common_dir, snap.name, quiet_for=0.3)))
    refill.start()
    time.sleep(2)
    assert made == [] and records.pool(ledger.read())[0].state == "pending"
    with ledger.update() as state:
        state.worktrees["other"].state = "ready"
    refill.join(timeout=60)
    assert made == [1] and [p.state for p in records.pool(ledger.read())] == ["ready"]
    with ledger.update() as state:
        state.worktrees.pop("other")
    PROVIDER.destroy(alloc)
