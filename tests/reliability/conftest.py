"""Fixtures for the reliability tests: a project with a real Postgres database
per worktree, the CLI as a real subprocess, and a check of the whole world
(git, the database server, the lease registry, the ledger, the process table)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from branchyard.db import postgres as pg
from branchyard.ledger import Ledger
from branchyard.system import ports
from branchyard.system.mainports import is_main_owner
from tests.conftest import git, make_repo

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLI_TIMEOUT = 90


def pg_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def pg_names(prefix: str) -> set[str]:
    with pg.connect(PG_ADMIN) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                            (prefix,)).fetchall()
    return {r[0] for r in rows}


def drop_prefixed(prefix: str) -> None:
    """Drop the databases whose names start with a test's own unique prefix."""
    with pg.connect(PG_ADMIN) as conn:
        for name in pg_names(prefix):
            pg.drop(conn, name)


@dataclass(frozen=True)
class Project:
    path: Path  # the main worktree
    uid: str  # every database of this test starts with it
    main_db: str

    @property
    def common(self) -> Path:
        return self.path / ".git"

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.common)


def config_text(main_db: str, *, pool: int = 0) -> str:
    return f"""\
[project]
name = "shop"
[ports]
names = ["PORT", "API_PORT"]
[[database]]
name = "app"
source = "{pg_url(main_db)}"
pool = {pool}
"""


def make_project(path: Path, uid: str, *, pool: int = 0, branch: str = "main") -> Project:
    main_db = f"{uid}_main"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, main_db)
    pg.run_sql(pg_url(main_db), "CREATE TABLE items (id int PRIMARY KEY)",
               "INSERT INTO items SELECT generate_series(1, 10)")
    repo = make_repo(path, branch)
    (repo / "branchyard.toml").write_text(config_text(main_db, pool=pool))
    git("add", "branchyard.toml", cwd=repo)
    git("commit", "-qm", "config", cwd=repo)
    return Project(repo, uid, main_db)


@pytest.fixture
def uid() -> str:
    return f"byr{secrets.token_hex(3)}"


@pytest.fixture
def project(tmp_path: Path, uid: str) -> Iterator[Project]:
    """A repository whose worktrees each get a clone of a test-made main database."""
    yield make_project(tmp_path / "app", uid)
    drop_prefixed(uid)


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra)
    return env


def cli(cwd: Path, *args: str, fault: str = "", check: bool = False,
        timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``branchyard ARGS`` as a real process (``BRANCHYARD_FAULT=fault``)."""
    env = cli_env(BRANCHYARD_FAULT=fault) if fault else cli_env()
    done = subprocess.run([sys.executable, "-m", "branchyard", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"branchyard {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def cli_json(cwd: Path, *args: str, code: int | None = 0) -> dict[str, object]:
    """The JSON document of ``branchyard ARGS --json`` (exit code checked unless None)."""
    done = cli(cwd, *args, "--json")
    assert code is None or done.returncode == code, \
        f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    data: dict[str, object] = json.loads(done.stdout)
    return data


def spawn(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "branchyard", *args], cwd=cwd,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def worktree_paths(repo: Path) -> list[str]:
    out = git("worktree", "list", "--porcelain", cwd=repo)
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def branches(repo: Path) -> set[str]:
    return set(git("branch", "--format=%(refname:short)", cwd=repo).split())


def pids_inside(root: Path) -> list[int]:
    import psutil

    real = os.path.realpath(root)
    found = []
    for proc in psutil.process_iter(["pid", "cwd"]):
        cwd = (proc.info.get("cwd") or "").removesuffix(" (deleted)")
        if cwd == real or cwd.startswith(real + os.sep):
            found.append(proc.info["pid"])
    return found


def background(cwd: Path) -> int:
    """Start a long sleep inside ``cwd`` that is not our child (as a dev server
    started from an agent's shell would be); its pid."""
    out = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], cwd=cwd,
                         capture_output=True, text=True, check=True, timeout=10).stdout
    return int(out.strip())


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def end(pid: int) -> None:
    """Kill a process this test started, if it still runs."""
    if alive(pid):
        os.kill(pid, 9)


def assert_world_consistent(project: Project, *, live: Sequence[str] = (),
                            unmanaged: Sequence[Path] = (), foreign: Sequence[str] = ()
                            ) -> None:
    """Everything of ours has an owner, and every owner's things exist.

    ``live`` names the branches that must still be up, ``unmanaged`` worktrees
    that stay without branchyard (after `teardown`), ``foreign`` databases the
    test made itself (which branchyard must leave alone). Checks git (worktrees,
    branches), the database server, the lease registry, the ledger and the
    leftover directories.
    """
    state = project.ledger.read()
    assert not state.sections.get("intents"), state.sections.get("intents")
    records = list(state.worktrees.values())
    assert sorted(r.branch for r in records) == sorted(live)
    # git: the main worktree plus exactly the live ones; no half-made worktree
    paths = {os.path.realpath(p) for p in worktree_paths(project.path)}
    expected = {os.path.realpath(project.path), *(os.path.realpath(r.path) for r in records),
                *(os.path.realpath(p) for p in unmanaged)}
    assert paths == expected
    for record in records:
        assert record.state == "ready" and Path(record.path).is_dir()
        assert all(r.state == "ready" for r in record.resources)
    # databases: ours are the main one, recorded snapshots/pool spares, live clones
    from branchyard.db import records as dbrec

    allowed = {project.main_db, *foreign}
    allowed |= {s.name for s in dbrec.snapshots(state) if s.state == "ready"}
    allowed |= {p.name for p in dbrec.pool(state) if p.state == "ready"}
    clones = {r.spec.database for w in records for r in w.resources if r.kind == "postgres"}
    assert len(clones) == len(records)
    assert pg_names(project.uid) == allowed | clones
    assert all(s.state == "ready" for s in dbrec.snapshots(state))
    # leases: exactly the live worktrees' ports, each owned by its entry
    mine = [lease for lease in ports.all_leases()  # main's own lease (`ls` took it) aside
            if lease.owner.startswith(f"{project.common}#") and not is_main_owner(lease.owner)]
    by_owner = {lease.owner.rpartition("#")[2] for lease in mine}
    assert by_owner == {r.slug for r in records}
    assert sorted(lease.port for lease in mine) == sorted(
        p for r in records for p in r.ports.values())
    # processes: nothing runs inside a worktree that is gone
    for parent in {project.path.parent}:
        for child in parent.iterdir():
            if child.name.startswith("app.") and os.path.realpath(child) not in paths:
                raise AssertionError(f"leftover directory {child}")


def finding_kinds(report: dict[str, object]) -> list[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f["kind"] for f in findings]
