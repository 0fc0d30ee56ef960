"""Errors name the real cause (a missing role or a wrong password is not "cannot
reach the server"), and a hint never suggests a command that cannot work where
it is given (no "run setup again" after an `up` that was undone)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from branchyard.core.errors import DatabaseError
from branchyard.core.identity import slug_for
from branchyard.db import postgres as pg
from tests.conftest import git

from .conftest import (
    PG_ADMIN,
    Project,
    branches,
    cli,
    cli_json,
    pg_names,
    pg_url,
    worktree_paths,
)


def only_error(project: Project, *args: str) -> dict[str, str]:
    done = cli_json(project.path, *args, code=1)
    [error] = done["errors"]  # type: ignore[misc]
    assert worktree_paths(project.path) == [str(project.path)]  # `up` was undone
    assert not project.ledger.read().worktrees
    return error  # type: ignore[no-any-return]


def test_a_missing_role_is_named_not_an_unreachable_server(project: Project) -> None:
    ghost = f"{project.uid}_ghost"
    toml = project.path / "branchyard.toml"
    toml.write_text(toml.read_text().replace("postgresql://postgres@", f"postgresql://{ghost}@"))
    git("commit", "-qam", "a role that does not exist", cwd=project.path)
    error = only_error(project, "up", "feat/ghost")
    assert error == {
        "code": "database",
        "message": "setup of the new worktree failed, so `up` was undone: Postgres at "
                   f"127.0.0.1:5432 has no role {ghost!r}",
        "hint": f"create it (CREATE ROLE {ghost} LOGIN CREATEDB) or fix the user in the "
                "database URL"}
    assert "feat/ghost" not in branches(project.path)


def test_an_unreachable_server_says_why(uid: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DatabaseError) as caught, pg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres"):
        pass
    assert caught.value.message == (f"cannot reach the Postgres server at 127.0.0.1:{port}: "
                                    "Connection refused")


def test_a_hint_after_an_undone_up_says_up_again(project: Project) -> None:
    toml = project.path / "branchyard.toml"
    toml.write_text('[browser]\nsession_file = "agent-browser.json"\n' + toml.read_text())
    (project.path / "agent-browser.json").write_text("not json\n")
    git("add", "-f", "agent-browser.json", "branchyard.toml", cwd=project.path)
    git("commit", "-qm", "a broken session file", cwd=project.path)
    error = only_error(project, "up", "feat/session")
    assert error["hint"] == "fix or remove the file, then run `branchyard up feat/session` again"


def test_reseeding_an_adopted_database_in_up_says_up_again(project: Project) -> None:
    branch = "feat/reseed-mine"
    mine = f"{project.main_db}_{slug_for(branch)}"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, mine)
    pg.run_sql(pg_url(mine), "CREATE TABLE notes (body text)")
    error = only_error(project, "up", branch, "--reseed")
    assert error["code"] == "unsafe"
    assert error["hint"] == (f"to start over from main, remove it yourself (`DROP DATABASE "
                             f"{mine}`), then run `branchyard up {branch}` again: the copy it "
                             "makes is branchyard's")
    assert mine in pg_names(project.uid)


def test_naming_the_main_worktree_never_hints_at_setup_or_up_there(repo: Path) -> None:
    cli(repo, "up", "feat/a", check=True)
    linked = Path(worktree_paths(repo)[1])
    env = cli(linked, "env", "main")  # main is a worktree like the others: it answers
    assert env.returncode == 0, env.stderr
    assert "BRANCHYARD_URL=http://app.localhost:1355" in env.stdout.splitlines()
    assert "setup" not in env.stderr and "branchyard up" not in env.stderr
    url = cli(linked, "url", "main")
    assert (url.returncode, url.stdout) == (0, "http://app.localhost:1355\n")
    cli(repo, "down", "feat/a", check=True)
