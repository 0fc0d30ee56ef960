"""Fixtures for the database tests: the machine's real servers, unique names,
and cleanup of exactly what each test made."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from branchyard.config import Config, DatabaseConfig
from branchyard.db import postgres as pg
from branchyard.identity import derive_identity
from branchyard.plan import PlanContext
from branchyard.repo import RepoInfo
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
