"""Databases branchyard did not create: adopted, used as they are, never dropped
(by `down`, `down --force`, `teardown`, `gc`, `doctor --fix`); and worktree
database names that would be main's are refused before anything is made."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from branchyard.core.identity import slug_for
from branchyard.db import postgres as pg
from branchyard.db.mysql import quote_ident
from branchyard.resources.specs import DatabaseSpec, ServerDatabaseSpec
from tests.conftest import git

from .conftest import (
    PG_ADMIN,
    Project,
    branches,
    cli,
    cli_json,
    finding_kinds,
    pg_names,
    pg_url,
    worktree_paths,
)


def made_by_hand(project: Project, branch: str) -> str:
    """`createdb <the name branchyard derives for branch>` with a table and a row."""
    name = f"{project.main_db}_{slug_for(branch)}"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, name)
    pg.run_sql(pg_url(name), "CREATE TABLE notes (body text)",
               "INSERT INTO notes VALUES ('mine')")
    return name


def notes(name: str) -> list[str]:
    with pg.connect(pg_url(name)) as conn:
        return [r[0] for r in conn.execute("SELECT body FROM notes").fetchall()]


def spec_of(project: Project, branch: str) -> DatabaseSpec:
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    [spec] = [r.spec for r in record.resources if r.kind in ("postgres", "mysql", "sqlite")]
    assert isinstance(spec, DatabaseSpec)
    return spec


def database_of(project: Project, branch: str) -> str:
    spec = spec_of(project, branch)
    assert isinstance(spec, ServerDatabaseSpec)
    return spec.database


def path_of(project: Project, branch: str) -> Path:
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    return Path(record.path)


def test_a_postgres_database_made_by_hand_is_adopted_and_never_dropped(
        project: Project) -> None:
    branch = "feat/adopt"
    mine = made_by_hand(project, branch)
    done = cli(project.path, "up", branch, check=True)
    assert f"{mine}: there before branchyard (adopted" in done.stderr
    assert spec_of(project, branch).adopted is True
    [listed] = [w for w in cli_json(project.path, "ls")["worktrees"]  # type: ignore[union-attr]
                if w["branch"] == branch]  # type: ignore[index]
    assert listed["databases"][0]["adopted"] is True  # type: ignore[index]

    down = cli_json(project.path, "down", branch)
    assert down["released"] == ["browser profile"]
    assert down["kept"] == [{"resource": "postgres app", "database": mine, "reason": "adopted",
                             "message": "branchyard did not create it, so it is kept"}]
    assert notes(mine) == ["mine"]

    for how in ("down --force", "teardown", "gc", "doctor --fix of a crashed up"):
        if how == "doctor --fix of a crashed up":
            crashed = cli(project.path, "up", branch, fault="resource.created")
            assert crashed.returncode == -9
            assert finding_kinds(cli_json(project.path, "doctor", code=1)) == ["interrupted_up"]
            cli(project.path, "doctor", "--fix", check=True)
        else:
            cli(project.path, "up", branch, check=True)
            path = path_of(project, branch)
            if how == "down --force":
                (path / "scratch.txt").write_text("dirty\n")
                out = cli(project.path, "down", branch, "--force", check=True).stdout
                assert f"kept       postgres app ({mine}): adopted" in out
            elif how == "teardown":
                cli(path, "teardown", check=True)
                git("worktree", "remove", "--force", str(path), cwd=project.path)
            else:
                shutil.rmtree(path)
                cli(project.path, "gc", check=True)
        assert notes(mine) == ["mine"], how
        assert not project.ledger.read().worktrees, how
    assert pg_names(project.uid) >= {project.main_db, mine}


def test_an_adopted_database_is_never_reseeded(project: Project) -> None:
    branch = "feat/keep-mine"
    mine = made_by_hand(project, branch)
    cli(project.path, "up", branch, check=True)
    path = path_of(project, branch)
    for args in (("setup", "--reseed"), ("db", "reset")):
        done = cli_json(path, *args, code=1)
        [error] = done["errors"]  # type: ignore[misc]
        assert error["message"] == (  # type: ignore[index]
            f"{mine} was there before branchyard set this worktree up (adopted), so "
            "branchyard never drops or replaces it")
        assert notes(mine) == ["mine"]
    cli(project.path, "down", branch, check=True)
    assert notes(mine) == ["mine"]


def test_a_database_dropped_by_hand_is_branchyards_once_it_makes_it_again(
        project: Project) -> None:
    branch = "feat/handover"
    mine = made_by_hand(project, branch)
    cli(project.path, "up", branch, check=True)
    path = path_of(project, branch)
    with pg.connect(PG_ADMIN) as conn:
        pg.drop(conn, mine)
    cli(path, "setup", check=True)  # clones main: now branchyard's own
    assert spec_of(project, branch).adopted is False
    cli(project.path, "down", branch, check=True)
    assert mine not in pg_names(project.uid)


def sqlite_project(project: Project, source: str) -> None:
    toml = project.path / "branchyard.toml"
    toml.write_text(toml.read_text().split("[[database]]")[0] + '[[database]]\nname = "agent"\n'
                    f'engine = "sqlite"\nsource = "{source}"\n')
    git("commit", "-qam", "sqlite", cwd=project.path)


def sqlite_file(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES (?)", (body,))
    conn.commit()
    conn.close()


def test_a_sqlite_file_that_was_there_is_adopted_and_kept(project: Project,
                                                          tmp_path: Path) -> None:
    main_file = tmp_path / "data" / "agent.db"
    sqlite_file(main_file, "main")
    sqlite_project(project, f"file:{main_file}")
    branch = "feat/sqlite-mine"
    mine = main_file.with_name(f"agent-{slug_for(branch)}.db")
    sqlite_file(mine, "mine")
    cli(project.path, "up", branch, check=True)
    assert spec_of(project, branch).adopted is True
    down = cli_json(project.path, "down", branch)
    assert [k["reason"] for k in down["kept"]] == ["adopted"]  # type: ignore[index, union-attr]
    assert mine.is_file() and sqlite3.connect(mine).execute(
        "SELECT body FROM notes").fetchall() == [("mine",)]


def test_an_adopted_sqlite_file_inside_the_worktree_needs_force_to_go(
        project: Project) -> None:
    sqlite_file(project.path / "data" / "agent.db", "main")
    sqlite_project(project, "file:./data/agent.db")
    (project.path / ".gitignore").write_text(".env*\ndata/\n")
    git("commit", "-qam", "ignore data", cwd=project.path)
    wt = project.path.parent / "app.by-hand"
    git("worktree", "add", "-q", "-b", "feat/by-hand", str(wt), cwd=project.path)
    mine = wt / "data" / f"agent-{slug_for('feat/by-hand')}.db"
    sqlite_file(mine, "mine")
    cli(wt, "setup", check=True)
    cli(wt, "teardown", check=True)
    assert mine.is_file()
    cli(wt, "setup", check=True)
    refused = cli_json(project.path, "down", "feat/by-hand", code=1)
    [error] = refused["errors"]  # type: ignore[misc]
    assert error["code"] == "unsafe"  # type: ignore[index]
    assert error["message"] == (  # type: ignore[index]
        f"{wt} holds {mine}, a database branchyard did not create (adopted); removing "
        "the worktree would delete it")
    assert mine.is_file() and str(wt) in worktree_paths(project.path)
    forced = cli_json(project.path, "down", "feat/by-hand", "--force")
    assert forced["kept"] == [{  # type: ignore[comparison-overlap]
        "resource": "sqlite agent", "database": str(mine), "reason": "adopted",
        "message": "branchyard did not create it; it was inside the removed worktree "
                   "and went with it"}]
    assert not mine.exists()


@pytest.fixture
def mysql_main(project: Project) -> Iterator[str]:
    name = f"{project.uid}_shop"
    with pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(name)}")
    yield name
    with pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata "
                    "WHERE schema_name LIKE %s", (project.uid + "%",))
        for (leftover,) in cur.fetchall():
            cur.execute(f"DROP DATABASE {quote_ident(leftover)}")


def test_a_mysql_database_made_by_hand_is_adopted_and_kept(project: Project,
                                                           mysql_main: str) -> None:
    toml = project.path / "branchyard.toml"
    toml.write_text(toml.read_text() + '[[database]]\nname = "shop"\nengine = "mysql"\n'
                    f'source = "mysql://root@127.0.0.1:3306/{mysql_main}"\nenv = "SHOP_URL"\n')
    git("commit", "-qam", "mysql", cwd=project.path)
    branch = "feat/mysql-mine"
    mine = f"{mysql_main}_{slug_for(branch)}"
    with pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(mine)}")
        cur.execute(f"CREATE TABLE {quote_ident(mine)}.notes (body TEXT)")
        cur.execute(f"INSERT INTO {quote_ident(mine)}.notes VALUES ('mine')")
    cli(project.path, "up", branch, check=True)
    down = cli_json(project.path, "down", branch)
    assert [k["resource"] for k in down["kept"]] == ["mysql shop"]  # type: ignore[index, union-attr]
    with pymysql.connect(host="127.0.0.1", port=3306, user="root") as conn, \
            conn.cursor() as cur:
        cur.execute(f"SELECT body FROM {quote_ident(mine)}.notes")
        assert cur.fetchall() == (("mine",),)


def nothing_made(project: Project, branch: str) -> None:
    assert worktree_paths(project.path) == [str(project.path)]
    assert branch not in branches(project.path)
    state = project.ledger.read()
    assert not state.worktrees and not state.sections.get("intents")
    assert pg_names(project.uid) == {project.main_db}


@pytest.mark.parametrize("template", ["{main}", "{uid}_main"])
def test_a_worktree_database_named_like_main_is_refused_before_anything_is_made(
        project: Project, template: str) -> None:
    toml = project.path / "branchyard.toml"
    toml.write_text(toml.read_text().replace(
        "pool = 0\n", f'pool = 0\ndatabase = "{template.replace("{uid}", project.uid)}"\n'))
    git("commit", "-qam", "database = main", cwd=project.path)
    done = cli_json(project.path, "up", "feat/same", code=1)
    [error] = done["errors"]  # type: ignore[misc]
    assert error == {  # type: ignore[comparison-overlap]
        "code": "config",
        "message": f"[[database]] 'app': the worktree's database would be "
                   f"{project.main_db!r}, the main database itself",
        "hint": 'put {slug} in `database` (the default is "{main}_{slug}"), so that each '
                "worktree gets its own"}
    nothing_made(project, "feat/same")


def test_a_sqlite_target_equal_to_the_source_is_refused(project: Project,
                                                        tmp_path: Path) -> None:
    main_file = tmp_path / "data" / "agent.db"
    sqlite_file(main_file, "main")
    sqlite_project(project, f"file:{main_file}")
    toml = project.path / "branchyard.toml"
    toml.write_text(toml.read_text() + 'database = "{main}"\n')
    git("commit", "-qam", "same file", cwd=project.path)
    done = cli_json(project.path, "up", "feat/same-file", code=1)
    [error] = done["errors"]  # type: ignore[misc]
    assert error["message"] == (  # type: ignore[index]
        f"[[database]] 'agent': the worktree's database would be {str(main_file)!r}, "
        "the main database itself")
    nothing_made(project, "feat/same-file")
    assert sqlite3.connect(main_file).execute("SELECT body FROM notes").fetchall() == [
        ("main",)]


def test_doctor_reports_a_worktree_database_dropped_by_hand_and_fix_recreates_it(
        project: Project) -> None:
    branch = "feat/dropped"
    cli(project.path, "up", branch, check=True)
    name = database_of(project, branch)
    with pg.connect(PG_ADMIN) as conn:
        pg.drop(conn, name)
    report = cli_json(project.path, "doctor", code=1)
    [finding] = report["findings"]  # type: ignore[misc]
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    assert finding == {  # type: ignore[comparison-overlap]
        "kind": "missing_database", "subject": f"postgres app of worktree {branch!r}",
        "owner": f"ledger entry {record.slug}",
        "why": f"database {name!r} is gone from the server at 127.0.0.1:5432 "
               "(dropped outside branchyard)",
        "fix": f"run `branchyard setup` in {record.path}: it makes the database again, "
               "seeded as configured", "hint": "", "gone": False,
        "ref": [record.slug, "db:app"]}
    cli(project.path, "doctor", "--fix", check=True)
    with pg.connect(pg_url(name)) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (10,)
    assert cli_json(project.path, "doctor")["findings"] == []
    cli(project.path, "down", branch, check=True)
    assert pg_names(project.uid) == {project.main_db} | {
        n for n in pg_names(project.uid) if "__snap_" in n}


class Relay:
    """A TCP relay to the real Postgres, so a test can take "the server" away and
    bring it back on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", 5432))
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() of the thread on Linux
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.open:
            with contextlib.suppress(OSError):
                s.close()


def test_a_down_whose_server_is_unreachable_is_partly_done(project: Project) -> None:
    relay = Relay()
    try:
        toml = project.path / "branchyard.toml"
        toml.write_text(toml.read_text().replace(":5432/", f":{relay.port}/"))
        git("commit", "-qam", "through a relay", cwd=project.path)
        branch = "feat/far"
        cli(project.path, "up", branch, check=True)
        name = database_of(project, branch)
        relay.close()
        done = cli(project.path, "down", branch, "--json")
        assert done.returncode == 4, done.stdout + done.stderr
        report = json.loads(done.stdout)
        address = f"127.0.0.1:{relay.port}"
        assert (report["ok"], report["partial"], report["removed_worktree"]) == (
            False, True, True)
        [kept] = report["kept"]
        assert (kept["resource"], kept["database"], kept["reason"]) == (
            "postgres app", name, "failed")
        assert kept["message"].startswith(
            f"not released (cannot reach the Postgres server at {address}: ")
        assert kept["message"].endswith("still in the ledger for `branchyard doctor --fix`")
        first = report["errors"][0]
        assert first == {
            "code": "partial",
            "message": f"{branch} is down, but 1 resource could not be released: "
                       f"postgres app ({name}); the ledger keeps it",
            "hint": "once the cause is fixed (an unreachable server: once it is back), run "
                    "`branchyard doctor --fix` to release it"}
        assert name in pg_names(project.uid)
        relay = Relay(relay.port)
        cli(project.path, "doctor", "--fix", check=True)
        assert name not in pg_names(project.uid)
        assert not project.ledger.read().worktrees
    finally:
        relay.close()
