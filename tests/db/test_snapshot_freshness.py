"""The golden snapshot's age and freshness (main changed since?), `refresh =
"auto"` when main is idle, against the machine's Postgres at 127.0.0.1:5432."""

from __future__ import annotations

from dataclasses import replace

import psycopg

from branchyard.config.model import DatabaseConfig
from branchyard.core.events import NullReporter
from branchyard.db import postgres as pg
from branchyard.db import records
from branchyard.ledger import Ledger
from branchyard.providers.postgres import PostgresProvider
from branchyard.repo.locate import RepoInfo
from branchyard.resources.plan import PlanContext

from .conftest import pg_url, plan_ctx

PROVIDER = PostgresProvider()


class Messages(NullReporter):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def message(self, text: str) -> None:
        self.texts.append(text)


def _up(project: RepoInfo, main_db: str, branch: str, **kw: object) -> tuple[str, list[str]]:
    entry = DatabaseConfig(name="app", source=pg_url(main_db), **kw)  # type: ignore[arg-type]
    said = Messages()
    ctx: PlanContext = replace(plan_ctx(project, entry, branch=branch), reporter=said)
    [alloc] = PROVIDER.plan(ctx)
    assert PROVIDER.create(alloc, ctx) is True
    return str(alloc.spec.database), said.texts


def _rows(name: str) -> int:
    with pg.connect(pg_url(name)) as conn:
        row = conn.execute("SELECT count(*) FROM items").fetchone()
    return int(row[0]) if row else -1


def _snapshots(project: RepoInfo) -> list[records.SnapshotRecord]:
    return records.snapshots(Ledger(project.common_dir).read())


def test_up_says_how_old_the_snapshot_is_and_whether_main_changed(
        project: RepoInfo, main_db: str) -> None:
    _up(project, main_db, "feat/one")
    [snap] = _snapshots(project)
    assert snap.main_writes >= 100  # the fixture's 100 rows
    _, said = _up(project, main_db, "feat/two")
    assert any(t.startswith(f"snapshot of {main_db!r}: ") and "main is unchanged since" in t
               for t in said), said
    pg.run_sql(pg_url(main_db), "INSERT INTO items VALUES (101, 'new')")
    clone, said = _up(project, main_db, "feat/three")
    assert any("main has changed since" in t and "branchyard db snapshot" in t
               for t in said), said
    assert _rows(clone) == 100  # refresh = "manual": the old snapshot is cloned
    assert [s.name for s in _snapshots(project)] == [snap.name]


def test_auto_refresh_makes_a_new_snapshot_when_main_is_idle(
        project: RepoInfo, main_db: str) -> None:
    _up(project, main_db, "feat/one", refresh="auto")
    [old] = _snapshots(project)
    pg.run_sql(pg_url(main_db), "INSERT INTO items VALUES (101, 'new')")
    clone, _ = _up(project, main_db, "feat/two", refresh="auto")
    assert _rows(clone) == 101
    [new] = _snapshots(project)
    assert new.generation == old.generation + 1
    with pg.connect(pg_url(main_db).rsplit("/", 1)[0] + "/postgres") as conn:
        assert not pg.exists(conn, old.name)


def test_auto_refresh_keeps_the_snapshot_while_main_has_a_session(
        project: RepoInfo, main_db: str) -> None:
    _up(project, main_db, "feat/one", refresh="auto")
    [old] = _snapshots(project)
    pg.run_sql(pg_url(main_db), "INSERT INTO items VALUES (101, 'new')")
    with psycopg.connect(pg_url(main_db), autocommit=True) as dev_server:
        clone, said = _up(project, main_db, "feat/two", refresh="auto")
        assert dev_server.execute("SELECT 1").fetchone() == (1,)  # its session lives on
    assert _rows(clone) == 100
    assert any("stale, but main has 1 session" in t for t in said), said
    assert [s.name for s in _snapshots(project)] == [old.name]
