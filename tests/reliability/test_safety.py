"""Hostile names are just names, passwords never show outside `env`, servers
listen on loopback only."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from branchyard.db import postgres as pg
from tests.conftest import git

from .conftest import (
    PG_ADMIN,
    Project,
    alive,
    assert_world_consistent,
    background,
    cli,
    cli_env,
    cli_json,
    config_text,
    pg_names,
)

HOSTILE = ["x;DROP$IFS\"DATABASE\"$IFS{canary}", "x';DROP-DATABASE-{canary};--",
           "$(touch$IFS\"pwned1\")", "`touch$IFS\"pwned2\"`", ";touch$IFS\"pwned3\";",
           "feat/\"quoted\"&&touch$IFS\"pwned4\""]
# python-dotenv expands ${…} wherever it is, and node and sh have no escape it
# undoes: no env file can give these back, so `up` refuses them before anything.
UNWRITABLE = ["x;DROP${IFS}DATABASE${IFS}{canary}", "$(touch${IFS}pwned5)",
              "feat/it's\"both\""]
HOOK = 'printf "%s\\n" "$BRANCHYARD_BRANCH" >> "$HOOK_OUT"'


def pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("pwned*")]


def test_hostile_branch_names_are_just_names(project: Project, tmp_path: Path) -> None:
    canary = f"{project.uid}_y"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, canary)
    (project.path / "branchyard.toml").write_text(
        config_text(project.main_db) + f"[hooks]\nsetup = [{json.dumps(HOOK)}]\n")
    git("commit", "-qam", "hook", cwd=project.path)
    out = tmp_path / "hook-out.txt"
    names = [n.replace("{canary}", canary) for n in HOSTILE]
    for name in names:
        done = subprocess.run(
            [sys.executable, "-m", "branchyard", "up", name], cwd=project.path, check=False,
            env=cli_env(HOOK_OUT=str(out)), capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, (name, done.stderr)
        record = project.ledger.read().by_branch(name)
        assert record is not None and record.branch == name
        wt = Path(record.path)
        # the shell forms branchyard writes never run what is inside a value
        shell = cli(wt, "env", "--format", "shell", check=True).stdout
        sourced = subprocess.run(
            ["sh", "-c", f'{shell}\nprintf "%s" "$BRANCHYARD_BRANCH"'], cwd=tmp_path,
            capture_output=True, text=True, timeout=10, check=True).stdout
        assert sourced == name
        dotenv = subprocess.run(
            ["sh", "-c", 'set -a; . ./.env.development.local; printf "%s" "$BRANCHYARD_BRANCH"'],
            cwd=wt, capture_output=True, text=True, timeout=10, check=True).stdout
        assert dotenv == name
    assert out.read_text().splitlines() == names
    for name in [n.replace("{canary}", canary) for n in UNWRITABLE]:
        refused = cli(project.path, "up", name)
        assert refused.returncode == 1
        assert f"error: the branch name {name!r} cannot be used: " in refused.stderr
        assert "tools reading the worktree's env file would not get it back" in refused.stderr
        assert project.ledger.read().by_branch(name) is None
        assert git("branch", "--list", name, cwd=project.path) == ""
    assert pwned(tmp_path, project.path.parent, Path.home()) == []
    assert canary in pg_names(project.uid)
    assert_world_consistent(project, live=names, foreign=[canary])
    for name in names:
        cli(project.path, "down", name, check=True)
    assert_world_consistent(project, foreign=[canary])
    assert pwned(tmp_path) == []


def test_passwords_are_masked_everywhere_but_env(project: Project) -> None:
    secret = "s3cretPW42"
    url = f"postgresql://postgres:{secret}@127.0.0.1:5432/{project.main_db}"
    (project.path / "branchyard.toml").write_text(
        config_text(project.main_db).replace(f'"postgresql://postgres@127.0.0.1:5432/'
                                             f'{project.main_db}"', json.dumps(url)))
    git("commit", "-qam", "password", cwd=project.path)
    outputs = []
    for args in (["up", "feat/m"], ["up", "feat/n", "--json"], ["ls"], ["ls", "--json"],
                 ["status", "feat/m"], ["status", "feat/m", "--json"], ["doctor"],
                 ["doctor", "--json"], ["db", "status", "feat/m"],
                 ["db", "status", "feat/m", "--json"], ["down", "feat/n", "--json"]):
        done = cli(project.path, *args)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append((args, done.stdout + done.stderr))
    leaked = [args for args, text in outputs if secret in text]
    assert leaked == []
    listed = cli_json(project.path, "ls")["worktrees"]
    [db] = next(w for w in listed if w["branch"] == "feat/m")["databases"]  # type: ignore[union-attr, index]
    assert db["url"].startswith("postgresql://postgres:****@127.0.0.1:5432/")
    env = cli_json(project.path, "env", "feat/m")["env"]
    assert secret in env["DATABASE_URL"]  # type: ignore[index]
    cli(project.path, "down", "feat/m", check=True)
    assert_world_consistent(project)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_addresses(pid: int) -> set[str]:
    import psutil

    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


def test_the_proxy_listens_on_loopback_only(repo: Path) -> None:
    port = free_port()
    started = cli_json(repo, "proxy", "start", "--port", str(port))
    pid = started["proxy"]["pid"]  # type: ignore[index]
    try:
        assert listening_addresses(pid) <= {"127.0.0.1", "::1"}
        assert listening_addresses(pid)
    finally:
        cli(repo, "proxy", "stop", check=True)
    assert not alive(pid)


@pytest.mark.parametrize("where", ["My Projects/ünïcødé dir", "x" * 90 + "/" + "y" * 90])
def test_spaces_unicode_and_long_paths_in_the_repo_path(tmp_path: Path, uid: str,
                                                        where: str) -> None:
    from .conftest import drop_prefixed, make_project

    proj = make_project(tmp_path / where / "app", uid)
    try:
        cli(proj.path, "up", "feat/ü x".replace(" ", "-"), check=True)
        listed = cli_json(proj.path, "ls")
        assert [w["state"] for w in listed["worktrees"]] == ["main", "ready"]  # type: ignore[union-attr, index]
        assert cli_json(proj.path, "doctor")["findings"] == []
        cli(proj.path, "down", "feat/ü-x", check=True)
        assert_world_consistent(proj)
    finally:
        drop_prefixed(uid)


def test_stop_never_kills_the_caller_or_its_ancestors(repo: Path) -> None:
    cli(repo, "up", "feat/s", check=True)
    wt = next(p for p in repo.parent.iterdir() if p.name.startswith("app.feat_s"))
    server = background(wt)
    # an agent's shell sits inside the worktree and runs `stop` from there
    script = f'cd {shlex.quote(str(wt))} && {shlex.quote(sys.executable)} -m branchyard stop ' \
             '--json && echo "shell survived"'
    done = subprocess.run(["bash", "-c", script], env=cli_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("shell survived")
    stopped = json.loads(done.stdout[:done.stdout.rindex("}") + 1])["stopped"]
    assert [p["pid"] for p in stopped] == [server] and not alive(server)
    cli(repo, "down", "feat/s", check=True)
