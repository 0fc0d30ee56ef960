"""`branchyard db …` and `branchyard psql` on a real repository and worktree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from branchyard import api
from branchyard.cli.main import main
from branchyard.db import cloning
from branchyard.db import postgres as pg

from .conftest import PG_ADMIN, RedisLeases, pg_names, pg_url, redis_owner


@pytest.fixture
def worktree(repo: Path, main_db: str) -> Path:
    (repo / ".env").write_text(f"DATABASE_URL={pg_url(main_db)}\n")
    (repo / "branchyard.toml").write_text(
        '[[database]]\nname = "app"\nsource = "env:DATABASE_URL"\n')
    os.chdir(repo)
    result = api.up(api.UpRequest("feat/cli"))
    path = Path(result.setup.path)
    os.chdir(path)
    return path


def down(repo: Path) -> None:
    os.chdir(repo)
    api.down(api.DownRequest("feat/cli", force=True))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    args = list(argv)
    args.insert(args.index("--") if "--" in args else len(args), "--json")
    code = main(args)
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is (code == 0), doc
    return doc  # type: ignore[no-any-return]


def test_db_status_url_and_psql(worktree: Path, repo: Path, main_db: str, uid: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    clone = f"{main_db}_feat_cli_"
    doc = run_json(capsys, "db", "status")
    [row] = doc["databases"]
    assert row["database"].startswith(clone) and row["exists"] is True
    assert row["tables"] == 1 and row["migration_tool"] == ""
    assert row["url"] == pg_url(row["database"])
    assert row["clone"] == _clone_method(PG_ADMIN).as_json()
    assert doc["worktree"]["branch"] == "feat/cli"
    url = run_json(capsys, "db", "url", "--db", "app")
    assert url["url"] == pg_url(row["database"])
    entry = run_json(capsys, "db", "url", "app")  # NAME is a worktree, as everywhere
    assert entry["errors"][0]["message"] == "'app' is a database entry, not a worktree"
    assert "--db app" in entry["errors"][0]["hint"]
    out = run_json(capsys, "psql", "--", "-Atc", "SELECT count(*) FROM items")
    assert out["stdout"] == "100\n"
    os.chdir(repo)  # the main worktree: psql opens main's own database
    mine = run_json(capsys, "psql", "--", "-Atc", "SELECT current_database()")
    assert mine["stdout"] == main_db + "\n"
    by_branch = run_json(capsys, "psql", "feat/cli", "--", "-Atc", "SELECT current_database()")
    assert by_branch["stdout"] == row["database"] + "\n"
    down(repo)
    assert not {n for n in pg_names(uid) if n.startswith(clone)}


def test_db_reset_replaces_the_worktree_data(worktree: Path, repo: Path, main_db: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    url = run_json(capsys, "db", "url", "--raw")["url"]
    pg.run_sql(str(url), "DELETE FROM items")
    assert run_json(capsys, "db", "reset")["databases"] == ["app"]
    with pg.connect(str(url)) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (100,)
    pg.run_sql(pg_url(main_db), "INSERT INTO items VALUES (500, 'new in main')")
    assert run_json(capsys, "db", "pull")["databases"] == ["app"]
    with pg.connect(str(url)) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (101,)
    os.chdir(repo)  # from the main worktree, NAME says which worktree
    pg.run_sql(pg_url(main_db), "INSERT INTO items VALUES (501, 'newer in main')")
    assert run_json(capsys, "db", "pull", "feat/cli", "--db", "app")["databases"] == ["app"]
    with pg.connect(str(url)) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (102,)
    assert run_json(capsys, "db", "reset", "feat-cli")["databases"] == ["app"]  # subdomain
    assert run_json(capsys, "db", "url", "feat/cli", "--raw")["url"] == url
    down(repo)


def test_migration_detection(worktree: Path, repo: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    url = str(run_json(capsys, "db", "url", "--raw")["url"])
    pg.run_sql(url, "CREATE TABLE _prisma_migrations (migration_name text, "
                    "finished_at timestamptz)",
               "INSERT INTO _prisma_migrations VALUES ('20240101_init', now() - "
               "interval '1 day'), ('20240202_users', now())")
    [row] = run_json(capsys, "db", "status")["databases"]
    assert (row["migration_tool"], row["last_migration"]) == ("prisma", "20240202_users")
    down(repo)


def test_db_snapshot_refresh_and_drop(worktree: Path, repo: Path, main_db: str, uid: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "db", "snapshot")["snapshots"]
    assert [(s["name"], s["method"]) for s in first] == [("app", "template")]
    older = {n for n in pg_names(uid) if "__snap_" in n}
    second = run_json(capsys, "db", "snapshot")["snapshots"]
    snaps = {n for n in pg_names(uid) if "__snap_" in n}
    assert snaps == {second[0]["snapshot"]} and not snaps & older
    dropped = run_json(capsys, "db", "snapshot", "--drop")["dropped"]
    assert dropped == [second[0]["snapshot"]]
    assert not {n for n in pg_names(uid) if "__snap_" in n}
    down(repo)


def test_db_status_of_sqlite_and_redis(repo: Path, capsys: pytest.CaptureFixture[str],
                                      strangers: list[int], redis_leases: RedisLeases) -> None:
    import sqlite3

    from branchyard.db import redisdb

    main_index = redis_leases.take()
    target = redis_leases.take(redisdb.MARKER,
                               redis_owner((repo / ".git").resolve(), "feat/kinds", "cache"))
    redis_leases.steer(target)

    (repo / "data").mkdir()
    conn = sqlite3.connect(repo / "data" / "agent.db")
    conn.execute("CREATE TABLE runs (id INTEGER)")
    conn.commit()
    conn.close()
    (repo / ".env").write_text("DATABASE_URL=file:./data/agent.db\n"
                               f"REDIS_URL={main_index.url}\n")
    (repo / "branchyard.toml").write_text(
        '[[database]]\nname = "agent"\nengine = "sqlite"\nsource = "env:DATABASE_URL"\n\n'
        '[[database]]\nname = "cache"\nengine = "redis"\nsource = "env:REDIS_URL"\n'
        'env = "REDIS_URL"\n')
    os.chdir(repo)
    path = Path(api.up(api.UpRequest("feat/kinds")).setup.path)
    os.chdir(path)
    rows = {r["name"]: r for r in run_json(capsys, "db", "status")["databases"]}
    slug = rows["agent"]["database"].removeprefix("agent-").removesuffix(".db")
    assert rows["agent"]["url"] == f"file:./data/agent-{slug}.db"
    assert (rows["agent"]["exists"], rows["agent"]["tables"]) == (True, 1)
    # main's only key, the lease mark of this test, was copied
    assert (rows["cache"]["database"], rows["cache"]["keys"]) == (str(target.index), 1)
    os.chdir(repo)
    api.down(api.DownRequest("feat/kinds", force=True))
    assert not path.exists()


def _clone_method(url: str, data_dir: Path | None = None) -> cloning.CloneMethod:
    with pg.connect(url) as conn:
        return cloning.of_server(conn, data_dir)


def test_main_worktree_databases_in_db_status_ls_and_psql(
        repo: Path, main_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres:pw-of-main@127.0.0.1:5432/{main_db}"
    (repo / ".env").write_text(f"DATABASE_URL={url}\n")
    (repo / "branchyard.toml").write_text(
        '[[database]]\nname = "app"\nsource = "env:DATABASE_URL"\n')
    os.chdir(repo)
    doc = run_json(capsys, "db", "status")
    [row] = doc["databases"]
    assert (doc["worktree"]["main"], row["database"], row["exists"]) == (True, main_db, True)
    assert row["tables"] == 1
    by_name = run_json(capsys, "db", "status", "main")  # NAME may be main's branch too
    assert [r["database"] for r in by_name["databases"]] == [main_db]
    [main_view] = [w for w in run_json(capsys, "ls")["worktrees"] if w["main"]]
    [shown] = main_view["databases"]
    assert (shown["name"], shown["engine"], shown["database"]) == ("app", "postgres", main_db)
    assert "pw-of-main" not in json.dumps(main_view)  # masked
    status = run_json(capsys, "status")["worktree"]
    assert [d["database"] for d in status["databases"]] == [main_db]
    out = run_json(capsys, "psql", "--", "-Atc", "SELECT count(*) FROM items")
    assert out["stdout"] == "100\n"


def test_env_in_main_gives_a_database_named_only_in_the_config(
        repo: Path, main_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "branchyard.toml").write_text(
        f'[[database]]\nname = "app"\nsource = "{pg_url(main_db)}"\nenv = "APP_DB_URL"\n')
    (repo / ".env").write_text("OTHER=1\n")
    os.chdir(repo)
    env = run_json(capsys, "env")["env"]
    assert (env["APP_DB_URL"], env["OTHER"]) == (pg_url(main_db), "1")
    (repo / ".env").write_text("APP_DB_URL=postgresql://mine@127.0.0.1:5432/own\n")
    env = run_json(capsys, "env")["env"]
    assert env["APP_DB_URL"] == "postgresql://mine@127.0.0.1:5432/own"  # main's file wins
