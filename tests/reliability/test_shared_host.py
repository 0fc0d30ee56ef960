"""Two clones of one repository (two machines, two users: each its own state dir)
on one Postgres server: each worktree database records its owner on the server,
names on a shared server carry the clone id, and no clone's `down`, `gc` or
`doctor --fix` ever drops a database the other one holds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchyard.core.identity import slug_for
from branchyard.db import owner
from branchyard.db import postgres as pg
from branchyard.db.provision import drop_worktree_database
from branchyard.resources.specs import SHORT, Owner, PostgresSpec
from tests.conftest import git

from .conftest import PG_ADMIN, Project, cli_env, drop_prefixed, make_project, pg_names, pg_url


class Clone:
    """One clone of the project, with a branchyard state dir of its own."""

    def __init__(self, path: Path, state: Path) -> None:
        self.path = path
        self.state = state

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "branchyard", *args], cwd=self.path,
                              env=cli_env(BRANCHYARD_STATE_DIR=str(self.state)),
                              capture_output=True, text=True, timeout=120, check=False)

    def json(self, *args: str, code: int = 0) -> dict[str, object]:
        done = self.run(*args, "--json")
        assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        data: dict[str, object] = json.loads(done.stdout)
        return data

    @property
    def clone_id(self) -> str:
        return owner.clone_id(self.path / ".git")


def _clones(tmp_path: Path, uid: str, *, shared: bool) -> tuple[Project, Clone, Clone]:
    project = make_project(tmp_path / "a", uid)
    if shared:
        toml = project.path / "branchyard.toml"
        toml.write_text(toml.read_text() + "shared = true\n")
        git("commit", "-qam", "shared server", cwd=project.path)
    git("clone", "-q", str(project.path), str(tmp_path / "b"), cwd=tmp_path)
    return project, Clone(project.path, tmp_path / "state-a"), \
        Clone(tmp_path / "b", tmp_path / "state-b")


@pytest.fixture
def shared_pair(tmp_path: Path, uid: str) -> Iterator[tuple[Project, Clone, Clone]]:
    yield _clones(tmp_path, uid, shared=True)
    drop_prefixed(uid)


@pytest.fixture
def local_pair(tmp_path: Path, uid: str) -> Iterator[tuple[Project, Clone, Clone]]:
    yield _clones(tmp_path, uid, shared=False)
    drop_prefixed(uid)


def _owner_of(name: str) -> Owner | None:
    with pg.connect(PG_ADMIN) as conn:
        return owner.read(conn, name)


def _rows(name: str) -> int:
    with pg.connect(pg_url(name)) as conn:
        row = conn.execute("SELECT count(*) FROM items").fetchone()
    return int(row[0]) if row else -1


def test_on_a_shared_server_each_clone_gets_its_own_database_and_drops_only_it(
        shared_pair: tuple[Project, Clone, Clone]) -> None:
    project, a, b = shared_pair
    a.json("up", "feat/x")
    b.json("up", "feat/x")
    assert a.clone_id != b.clone_id
    base = f"{project.main_db}_{slug_for('feat/x')}"
    name_a, name_b = f"{base}_{a.clone_id[:SHORT]}", f"{base}_{b.clone_id[:SHORT]}"
    assert pg_names(f"{project.main_db}_feat_x") == {name_a, name_b}
    held_a, held_b = _owner_of(name_a), _owner_of(name_b)
    assert held_a is not None and held_a.clone == a.clone_id
    assert held_b is not None and held_b.clone == b.clone_id
    assert held_b.path.startswith(str(b.path.parent))
    pg.run_sql(pg_url(name_b), "INSERT INTO items VALUES (11)")

    a.json("down", "feat/x")
    assert pg_names(f"{project.main_db}_feat_x") == {name_b}
    assert _rows(name_b) == 11
    b.json("down", "feat/x")
    assert pg_names(f"{project.main_db}_feat_x") == set()


def test_a_database_another_clone_holds_is_never_used_nor_dropped(
        local_pair: tuple[Project, Clone, Clone]) -> None:
    project, a, b = local_pair
    name = f"{project.main_db}_{slug_for('feat/y')}"
    a.json("up", "feat/y")
    pg.run_sql(pg_url(name), "INSERT INTO items VALUES (11)")
    refused = b.run("up", "feat/y")
    assert refused.returncode != 0
    assert "belongs to another clone of this repository" in refused.stderr
    assert "shared = true" in refused.stderr
    for args in (("down", "feat/y", "--force"), ("gc",), ("doctor", "--fix")):
        b.run(*args)
        assert _rows(name) == 11, args
    held = _owner_of(name)
    assert held is not None and held.clone == a.clone_id
    a.json("down", "feat/y")
    assert pg_names(name) == set()


def test_a_ledger_record_naming_another_clones_database_does_not_drop_it(
        local_pair: tuple[Project, Clone, Clone]) -> None:
    project, a, b = local_pair
    name = f"{project.main_db}_{slug_for('feat/z')}"
    a.json("up", "feat/z")
    spec = PostgresSpec(name="app", role="worktree", env="DATABASE_URL", seed="clone",
                        server=PG_ADMIN, database=name, main=project.main_db,
                        main_url=pg_url(project.main_db), url=pg_url(name),
                        common_dir=str(b.path / ".git"),
                        owner=Owner(b.clone_id, "b", str(b.path)))
    with pytest.raises(owner.HeldElsewhereError, match="belongs to another clone"):
        drop_worktree_database(spec)
    assert _rows(name) == 10
    a.json("down", "feat/z")
    with pg.connect(PG_ADMIN) as conn:
        assert not pg.exists(conn, name)


def _hand_to(name: str, holder: Clone) -> None:
    """As if the other clone had made it (the name-race a ledger cannot see)."""
    with pg.connect(PG_ADMIN) as conn:
        owner.record(conn, name, Owner(holder.clone_id, "machine-a", str(holder.path)))


def test_down_and_doctor_keep_a_recorded_database_the_server_says_is_another_clones(
        local_pair: tuple[Project, Clone, Clone]) -> None:
    project, a, b = local_pair
    name = f"{project.main_db}_{slug_for('feat/q')}"
    b.json("up", "feat/q")
    _hand_to(name, a)
    down = b.json("down", "feat/q")
    [kept] = down["kept"]  # type: ignore[misc]
    assert kept["reason"] == "held_elsewhere" and kept["database"] == name  # type: ignore[index]
    assert "belongs to another clone" in kept["message"]  # type: ignore[index]
    assert _rows(name) == 10

    other = f"{project.main_db}_{slug_for('feat/r')}"
    b.json("up", "feat/r")
    crashed = subprocess.run(
        [sys.executable, "-m", "branchyard", "down", "feat/r"], cwd=b.path,
        env=cli_env(BRANCHYARD_STATE_DIR=str(b.state), BRANCHYARD_FAULT="teardown.destroying"),
        capture_output=True, text=True, timeout=120, check=False)
    assert crashed.returncode != 0
    _hand_to(other, a)
    b.json("doctor", "--fix", code=0)
    assert _rows(other) == 10
    assert b.json("doctor")["healthy"] is True  # forgotten by b, not retried forever
