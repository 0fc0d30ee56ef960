"""Codex, Cursor and Conductor: each script read from the file `agents init`
wrote and run the way the app runs it — `sh -c` in the worktree the app made
(detached HEAD for Codex and Cursor), with the app's environment variables."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from branchyard.system import ports
from tests.conftest import git
from tests.reliability.conftest import Project, assert_world_consistent, pg_names

from .conftest import app_env, sh, wire


def codex_environment(project: Project) -> dict[str, Any]:
    return tomllib.loads((project.path / ".codex/environments/environment.toml").read_text())


def detached_worktree(project: Project, path: Path) -> Path:
    """A worktree as Codex and Cursor make them: detached at the main branch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "-q", "--detach", str(path), "main", cwd=project.path)
    return path


def leases(project: Project) -> list[int]:
    return sorted(lease.port for lease in ports.all_leases()
                  if lease.owner.startswith(f"{project.common}#"))


def test_codex_setup_run_and_cleanup(agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "codex")
    environment = codex_environment(project)
    home = project.path.parent / "codex-home"
    # Codex puts each thread's worktree at $CODEX_HOME/worktrees/<id>/<repo name>
    made = [detached_worktree(project, home / "worktrees" / tid / "app")
            for tid in ("a1b2", "c3d4")]
    for wt in made:
        env = app_env(shim, CODEX_WORKTREE_PATH=str(wt), CODEX_SOURCE_TREE_PATH=str(project.path))
        done = sh(environment["setup"]["script"], wt, env)
        assert done.returncode == 0, done.stderr
    records = [project.ledger.read().by_path(wt) for wt in made]
    assert all(r is not None for r in records)
    assert len({r.slug for r in records}) == 2  # same directory name, two identities
    assert len({r.ports["PORT"] for r in records}) == 2
    for wt, record in zip(made, records, strict=True):
        assert f"PORT={record.ports['PORT']}\n" in (wt / ".env.development.local").read_text()
        assert (wt / "secrets.txt").read_text() == "s3cret\n"  # .worktreeinclude
    assert_world_consistent(project, live=[r.branch for r in records])

    first, env = made[0], app_env(shim, CODEX_WORKTREE_PATH=str(made[0]),
                                  CODEX_SOURCE_TREE_PATH=str(project.path))
    [run] = [a["command"] for a in environment["actions"] if a["name"] == "Run"]
    done = sh(run, project.path, env)  # the cd in the action makes the cwd not matter
    assert done.returncode == 0, done.stderr
    assert (first / "ran.txt").read_text() == f"{records[0].ports['PORT']}\n"
    [open_url] = [a["command"] for a in environment["actions"] if a["name"] == "Open"]
    assert open_url.endswith("branchyard url --open")

    for wt in made:
        env = app_env(shim, CODEX_WORKTREE_PATH=str(wt), CODEX_SOURCE_TREE_PATH=str(project.path))
        done = sh(environment["cleanup"]["script"], wt, env)
        assert done.returncode == 0, done.stderr
        assert wt.is_dir()  # Codex removes the directory itself, after cleanup
    assert leases(project) == []
    clones = {r.spec.database for rec in records for r in rec.resources
              if r.kind == "postgres"}
    assert len(clones) == 2 and not clones & pg_names(project.uid)
    assert_world_consistent(project, unmanaged=made)


def test_cursor_setup_worktree(agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "cursor")
    config = json.loads((project.path / ".cursor/worktrees.json").read_text())
    wt = detached_worktree(project, project.path.parent / "cursor-home/worktrees/app/k3j2")
    env = app_env(shim, ROOT_WORKTREE_PATH=str(project.path))
    for command in config["setup-worktree-unix"]:  # in order, in the new worktree
        done = sh(command, wt, env)
        assert done.returncode == 0, done.stderr
    record = project.ledger.read().by_path(wt)
    assert record is not None and record.subdomain == "k3j2"
    assert f"PORT={record.ports['PORT']}\n" in (wt / ".env.development.local").read_text()
    assert_world_consistent(project, live=[record.branch])
    assert sh("branchyard teardown", wt, env).returncode == 0
    assert leases(project) == []
    assert_world_consistent(project, unmanaged=[wt])


def test_conductor_setup_run_and_archive(agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "conductor")
    scripts = tomllib.loads((project.path / ".conductor/settings.toml").read_text())["scripts"]
    wt = project.path.parent / "conductor/workspaces/app/lisbon"
    wt.parent.mkdir(parents=True)
    git("worktree", "add", "-q", "-b", "lisbon", str(wt), cwd=project.path)
    base = _free_block()
    env = app_env(shim, CONDUCTOR_ROOT_PATH=str(project.path),
                  CONDUCTOR_WORKSPACE_PATH=str(wt), CONDUCTOR_WORKSPACE_NAME="lisbon",
                  CONDUCTOR_PORT=str(base))
    done = sh(scripts["setup"], wt, env)
    assert done.returncode == 0, done.stderr
    record = project.ledger.read().by_path(wt)
    assert record.ports == {"PORT": base, "API_PORT": base + 1}  # Conductor's block
    done = sh(scripts["run"], wt, env)
    assert done.returncode == 0, done.stderr
    assert (wt / "ran.txt").read_text() == f"{base}\n"
    assert_world_consistent(project, live=["lisbon"])
    assert sh(scripts["archive"], wt, env).returncode == 0
    assert leases(project) == []
    assert_world_consistent(project, unmanaged=[wt])


def _free_block() -> int:
    for base in range(20000, 32000, 10):  # below the ephemeral range: no client takes it
        if all(ports.is_free(base + i) for i in range(10)):
            return base
    raise AssertionError("no free block of 10 ports")
