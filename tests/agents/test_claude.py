"""Claude Code's WorktreeCreate / WorktreeRemove hooks, run as Claude Code runs
them: the command from .claude/settings.json, `sh -c` in the project directory,
the payload on stdin, Claude Code's environment variables."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from branchyard.db import postgres as pg
from branchyard.system import ports
from tests.conftest import git
from tests.reliability.conftest import Project, assert_world_consistent, pg_url

from .conftest import app_env, sh, wire

SESSION = "3f8e1c2a-0000-4000-8000-000000000001"


def hook(project: Project, event: str) -> str:
    settings = json.loads((project.path / ".claude/settings.json").read_text())
    [group] = settings["hooks"][event]
    [entry] = group["hooks"]
    assert entry["type"] == "command"
    command: str = entry["command"]
    return command


def claude_env(project: Project, shim: Path) -> dict[str, str]:
    return app_env(shim, CLAUDE_PROJECT_DIR=str(project.path), CLAUDECODE="1",
                   CLAUDE_CODE_ENTRYPOINT="cli", CLAUDE_CODE_SESSION_ID=SESSION)


def payload(project: Project, event: str, **fields: str) -> str:
    base: dict[str, Any] = {
        "session_id": SESSION, "cwd": str(project.path), "hook_event_name": event,
        "transcript_path": str(project.path.parent / "transcript.jsonl"),
        "isolation_type": "worktree"}  # a field this version of branchyard does not know
    return json.dumps({**base, **fields})


def fire(project: Project, shim: Path, event: str, **fields: str
         ) -> subprocess.CompletedProcess[str]:
    return sh(hook(project, event), project.path, claude_env(project, shim),
              payload(project, event, **fields))


def record_at(project: Project, path: Path) -> Any:
    return project.ledger.read().by_path(path)


SHAPES = {
    "name": lambda p: ({"name": "feat-a"}, None),
    "worktree_name": lambda p: ({"worktree_name": "feat-b", "source_ref": "main",
                                 "base_path": str(p.path / ".claude/worktrees")},
                                p.path / ".claude/worktrees/feat-b"),
    "worktree_path": lambda p: ({"worktree_path": str(p.path.parent / "exact-c"),
                                 "base_ref": "main"}, p.path.parent / "exact-c"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_create_then_remove_each_payload_shape(agent_project: Project, shim: Path,
                                               shape: str) -> None:
    project = agent_project
    wire(project, shim, "--only", "claude")
    fields, where = SHAPES[shape](project)
    done = fire(project, shim, "WorktreeCreate", **fields)
    assert done.returncode == 0, done.stderr
    # stdout is the contract: the absolute path, alone on one line
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stdout == lines[0] + "\n", done.stdout
    path = Path(lines[0])
    assert path.is_absolute() and path.is_dir()
    if where is not None:
        assert path == where
    record = record_at(project, path)
    assert record is not None
    assert record.branch == {"name": "feat-a", "worktree_name": "feat-b",
                             "worktree_path": "exact-c"}[shape]
    # its world: ports, env file, a cloned database, the .worktreeinclude file
    env_text = (path / ".env.development.local").read_text()
    assert f"PORT={record.ports['PORT']}\n" in env_text
    [db] = [r.spec.database for r in record.resources if r.kind == "postgres"]
    assert f"DATABASE_URL={pg_url(db)}" in env_text
    assert _count(db) == 10
    assert (path / "secrets.txt").read_text() == "s3cret\n"
    assert "ready" in done.stderr  # progress went to stderr
    assert_world_consistent(project, live=[record.branch])

    gone = fire(project, shim, "WorktreeRemove", worktree_path=str(path))
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout == ""
    assert f"removed {path}" in gone.stderr
    assert not path.exists()
    assert db not in _databases(project)
    assert not [lease for lease in ports.all_leases()
                if lease.owner.startswith(f"{project.common}#")]
    assert_world_consistent(project)


def test_remove_keeps_a_worktree_with_changes(agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "claude")
    path = Path(fire(project, shim, "WorktreeCreate", name="wip").stdout.strip())
    (path / "notes.md").write_text("unfinished\n")
    record = record_at(project, path)
    [db] = [r.spec.database for r in record.resources if r.kind == "postgres"]

    kept = fire(project, shim, "WorktreeRemove", worktree_path=str(path))
    assert kept.returncode == 0, kept.stderr
    assert f"kept {path}: it has uncommitted or untracked changes (notes.md)" in kept.stderr
    assert (path / "notes.md").read_text() == "unfinished\n"
    # everything else was released: database, ports, ledger entry
    assert db not in _databases(project)
    assert record_at(project, path) is None
    assert_world_consistent(project, unmanaged=[path])
    git("worktree", "remove", "--force", str(path), cwd=project.path)


def test_a_second_create_for_the_same_name_resumes_it(agent_project: Project,
                                                      shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "claude")
    first = fire(project, shim, "WorktreeCreate", name="again")
    second = fire(project, shim, "WorktreeCreate", name="again")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert_world_consistent(project, live=["again"])
    fire(project, shim, "WorktreeRemove", worktree_path=first.stdout.strip())


def test_stdin_left_open_is_read_as_soon_as_the_object_is_complete(
        agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "claude")
    proc = subprocess.Popen(["sh", "-c", hook(project, "WorktreeCreate")], cwd=project.path,
                            env=claude_env(project, shim), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    text = payload(project, "WorktreeCreate", name="open-stdin")
    proc.stdin.write(text[:25])  # in two pieces, and stdin is never closed
    proc.stdin.flush()
    time.sleep(0.2)  # the first piece arrives alone
    proc.stdin.write(text[25:])
    proc.stdin.flush()
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no path on stdout while stdin stayed open"
        path = proc.stdout.readline().strip()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert Path(path).is_dir()
    fire(project, shim, "WorktreeRemove", worktree_path=path)
    assert_world_consistent(project)


def test_failures_exit_non_zero_with_a_clear_message_and_leave_nothing(
        agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "claude")
    env = claude_env(project, shim)
    no_name = sh(hook(project, "WorktreeCreate"), project.path, env,
                 payload(project, "WorktreeCreate"))
    assert no_name.returncode == 2 and no_name.stdout == ""
    assert no_name.stderr.startswith("error: the WorktreeCreate payload has no name, "
                                     "worktree_name or worktree_path\n")
    not_json = sh(hook(project, "WorktreeCreate"), project.path, env, "hello")
    assert not_json.returncode == 2 and not_json.stdout == ""
    assert not_json.stderr.startswith("error: the payload on stdin is not JSON")
    bad = fire(project, shim, "WorktreeCreate", name="bad..name")
    assert bad.returncode == 1 and bad.stdout == ""
    assert "error: 'bad..name' is not a valid branch name" in bad.stderr
    assert_world_consistent(project)


def test_detached_worktree_of_another_tool_is_removed_by_its_directory(
        agent_project: Project, shim: Path) -> None:
    project = agent_project
    wire(project, shim, "--only", "claude")
    path = project.path.parent / "detached-x"
    git("worktree", "add", "-q", "--detach", str(path), cwd=project.path)
    done = sh("branchyard setup", path, app_env(shim))
    assert done.returncode == 0, done.stderr
    assert record_at(project, path).subdomain == "detached-x"
    gone = fire(project, shim, "WorktreeRemove", worktree_path=str(path))
    assert gone.returncode == 0, gone.stderr
    assert not path.exists()
    assert_world_consistent(project)


@pytest.mark.skipif(shutil.which(os.environ.get("BRANCHYARD_TEST_CLAUDE", "claude")) is None,
                    reason="the Claude Code CLI is not installed (npm i -g "
                           "@anthropic-ai/claude-code, or set BRANCHYARD_TEST_CLAUDE to it)")
def test_real_claude_code_fires_the_hook_for_worktree(agent_project: Project,
                                                      shim: Path) -> None:
    """`claude -p --worktree NAME` runs WorktreeCreate before it asks for a login
    (checked with Claude Code 2.1.197), so this runs without an account."""
    project = agent_project
    wire(project, shim, "--only", "claude")
    claude = shutil.which(os.environ.get("BRANCHYARD_TEST_CLAUDE", "claude"))
    assert claude is not None
    env = app_env(shim, HOME=str(project.path.parent / "claude-home"))
    for key in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDECODE"):
        env.pop(key, None)
    done = subprocess.run([claude, "-p", "--worktree", "from-claude", "say hi"],
                          cwd=project.path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180, check=False)
    [record] = project.ledger.read().worktrees.values()
    assert record.branch == "from-claude", done.stdout + done.stderr
    assert Path(record.path).is_dir()
    assert_world_consistent(project, live=["from-claude"])
    removed = fire(project, shim, "WorktreeRemove", worktree_path=record.path)
    assert removed.returncode == 0, removed.stderr
    assert_world_consistent(project)


def _count(db: str) -> int:
    with pg.connect(pg_url(db)) as conn:
        row = conn.execute("SELECT count(*) FROM items").fetchone()
    assert row is not None
    return int(row[0])


def _databases(project: Project) -> set[str]:
    from tests.reliability.conftest import pg_names

    return pg_names(project.uid)


def test_create_with_the_clone_pool_on(pooled_project: Project, shim: Path) -> None:
    """With `pool = 1` a later create claims the warm spare: each worktree still
    gets its own database with main's rows, and removal drops exactly it."""
    from tests.reliability.test_crashes import wait_for_refills_of

    project = pooled_project
    wire(project, shim, "--only", "claude")
    made = []
    for name in ("pool-a", "pool-b"):
        done = fire(project, shim, "WorktreeCreate", name=name)
        assert done.returncode == 0, done.stderr
        made.append(Path(done.stdout.strip()))
        wait_for_refills_of(project.common)  # the spare for the next one
    dbs = [r.spec.database for p in made for r in record_at(project, p).resources
           if r.kind == "postgres"]
    assert len(set(dbs)) == 2 and all(_count(db) == 10 for db in dbs)
    assert_world_consistent(project, live=["pool-a", "pool-b"])
    for path in made:
        assert fire(project, shim, "WorktreeRemove", worktree_path=str(path)).returncode == 0
    assert not set(dbs) & _databases(project)
    assert_world_consistent(project)
