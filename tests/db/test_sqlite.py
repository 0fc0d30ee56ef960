"""SqliteProvider on real files, including a main database being written in WAL mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import DatabaseError
from branchyard.db.sqlite import copy_database
from branchyard.providers.sqlite import SqliteProvider
from branchyard.repo.locate import RepoInfo

from .conftest import plan_ctx

PROVIDER = SqliteProvider()
ENTRY = DatabaseConfig(name="agent", engine="sqlite", source="env:DATABASE_URL")


def make_main(path: Path, rows: int, *, wal: bool = False) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # keep the commits in the -wal file
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, note TEXT)")
    conn.executemany("INSERT INTO runs (note) VALUES (?)", [(f"run {i}",) for i in range(rows)])
    return conn


def rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


def test_file_url_is_rewritten_and_copied(project: RepoInfo) -> None:
    main_file = project.main_path / "data" / "agent.db"
    make_main(main_file, 50).close()
    ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": "file:./data/agent.db"})
    [alloc] = PROVIDER.plan(ctx)
    slug = ctx.identity.slug
    assert PROVIDER.env(alloc) == {"DATABASE_URL": f"file:./data/agent-{slug}.db"}
    copy = ctx.worktree / "data" / f"agent-{slug}.db"
    assert alloc.spec.path == str(copy)
    assert PROVIDER.create(alloc, ctx) is True
    assert rows(copy) == 50
    assert PROVIDER.create(alloc, ctx) is False  # has tables: kept
    PROVIDER.destroy(alloc)
    PROVIDER.destroy(alloc)
    assert not copy.exists() and rows(main_file) == 50
    assert list(copy.parent.iterdir()) == []


def test_wal_main_being_written_is_copied_consistently(project: RepoInfo) -> None:
    main_file = project.main_path / "agent.db"
    writer = make_main(main_file, 200, wal=True)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO runs (note) VALUES ('uncommitted')")
    try:
        assert Path(f"{main_file}-wal").stat().st_size > 0
        ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": "agent.db"})
        [alloc] = PROVIDER.plan(ctx)
        PROVIDER.create(alloc, ctx)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    copy = Path(alloc.spec.path)
    assert rows(copy) == 200  # the committed rows from the -wal, not the open transaction
    assert not Path(f"{copy}-wal").exists()
    PROVIDER.destroy(alloc)


def test_missing_main_file_is_a_clear_error(project: RepoInfo) -> None:
    ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": "sqlite:///data/none.db"})
    [alloc] = PROVIDER.plan(ctx)
    with pytest.raises(DatabaseError, match="does not exist"):
        PROVIDER.create(alloc, ctx)
    assert not Path(alloc.spec.path).exists()
    assert list(Path(alloc.spec.path).parent.glob("*partial")) == []


@pytest.mark.parametrize(("wal", "message", "hint"), [
    (False, "reading {main} failed: file is not a database",
     "is it a SQLite database? Is another program holding an exclusive lock?"),
    (True, "copying {main} with the SQLite backup API failed: file is not a database",
     "check the disk space and that the file is a SQLite database"),
], ids=["locked-copy", "backup"])
def test_a_main_file_that_is_not_sqlite_is_a_clear_error(
        tmp_path: Path, wal: bool, message: str, hint: str) -> None:
    main = tmp_path / "main.db"
    main.write_bytes(b"not a database, " * 512)
    if wal:
        Path(f"{main}-wal").write_bytes(b"")
    target = tmp_path / "copy" / "wt.db"

    with pytest.raises(DatabaseError) as caught:
        copy_database(main, target)

    assert (caught.value.message, caught.value.hint) == (message.format(main=main), hint)
    assert list(target.parent.iterdir()) == []  # no partial copy left


def test_main_worktree_keeps_main_file(project: RepoInfo) -> None:
    main_file = project.main_path / "agent.db"
    make_main(main_file, 3).close()
    ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": "agent.db"},
                   worktree=project.main_path)
    [alloc] = PROVIDER.plan(ctx)
    assert alloc.spec.role == "main"
    PROVIDER.destroy(alloc)
    assert rows(main_file) == 3


def test_an_adopted_file_is_found_and_never_removed(project: RepoInfo) -> None:
    from dataclasses import replace

    from branchyard.resources.plan import Allocation

    make_main(project.main_path / "data" / "agent.db", 3).close()
    ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": "file:./data/agent.db"})
    [alloc] = PROVIDER.plan(ctx)
    assert PROVIDER.found(alloc) is False
    make_main(Path(alloc.spec.path), 1).close()
    assert PROVIDER.found(alloc) is True
    adopted = Allocation(alloc.kind, alloc.key, replace(alloc.spec, adopted=True))
    assert PROVIDER.create(adopted, ctx) is False
    PROVIDER.destroy(adopted)
    assert rows(Path(alloc.spec.path)) == 1
