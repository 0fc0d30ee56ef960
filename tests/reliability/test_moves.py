"""A worktree moved (`git worktree move`, or `mv` + `git worktree repair`) is
re-homed in the ledger, never wiped: same ports, same database, its files still
resolve, and `down` at the new path releases everything."""

from __future__ import annotations

import json
import os
from pathlib import Path

from branchyard.resources.codec import to_json
from branchyard.system import ports
from branchyard.system.mainports import is_main_owner
from tests.conftest import git

from .conftest import (
    Project,
    alive,
    assert_world_consistent,
    background,
    cli,
    cli_json,
    end,
    finding_kinds,
    pg_names,
)

EXTRA_CONFIG = """\
[env]
shared = [".env.local"]
[browser]
session_file = "agent-browser.json"
"""


def up_with_files(project: Project, branch: str) -> Path:
    """`up` with a shared env file (a symlink to main's) and a session file."""
    (project.path / "branchyard.toml").write_text(
        (project.path / "branchyard.toml").read_text() + EXTRA_CONFIG)
    (project.path / ".env.local").write_text("SECRET=s3cret\n")
    git("commit", "-qam", "shared env", cwd=project.path)
    cli(project.path, "up", branch, check=True)
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    return Path(record.path)


def holdings(project: Project, branch: str) -> tuple[dict[str, int], str]:
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    [db] = [r.spec.database for r in record.resources if r.kind == "postgres"]
    return dict(record.ports), str(db)


def leased(project: Project) -> list[int]:
    return sorted(lease.port for lease in ports.all_leases()  # main's own lease aside
                  if lease.owner.startswith(f"{project.common}#")
                  and not is_main_owner(lease.owner))


def assert_rehomed(project: Project, branch: str, old: Path, new: Path,
                   before: tuple[dict[str, int], str]) -> None:
    """The ledger entry, `ls`, `status` and `env` all say: same world, new path."""
    record = project.ledger.read().by_branch(branch)
    assert record is not None and record.path == str(new) and record.state == "ready"
    assert str(old) not in json.dumps([to_json(r.spec) for r in record.resources] + [record.env])
    session = next(r for r in record.resources if r.kind == "browser").spec.session_file
    assert session == str(new / "agent-browser.json") and Path(session).is_file()
    assert (new / ".env.local").read_text() == "SECRET=s3cret\n"  # the symlink resolves
    port_map, db = before
    listed = cli_json(project.path, "ls")["worktrees"]
    assert isinstance(listed, list)
    assert [(w["branch"], w["path"], w["state"]) for w in listed] == [
        ("main", str(project.path), "main"), (branch, str(new), "ready")]
    assert listed[1]["ports"] == port_map
    assert [d["database"] for d in listed[1]["databases"]] == [db]
    status = cli_json(project.path, "status", branch)["worktree"]
    assert isinstance(status, dict)
    assert (status["path"], status["state"], status["ports"]) == (str(new), "ready", port_map)
    env = cli_json(new, "env")["env"]
    assert isinstance(env, dict)
    assert env["PORT"] == str(port_map["PORT"]) and env["DATABASE_URL"].endswith(f"/{db}")
    assert db in pg_names(project.uid) and leased(project) == sorted(port_map.values())


def test_a_worktree_moved_by_git_is_rehomed_never_wiped(project: Project) -> None:
    old = up_with_files(project, "feat/move")
    before = holdings(project, "feat/move")
    pid = background(old)  # a dev server: its cwd moves with the directory
    try:
        new = project.path.parent / "elsewhere" / "feat-move"
        new.parent.mkdir()
        git("worktree", "move", str(old), str(new), cwd=project.path)
        assert_rehomed(project, "feat/move", old, new, before)
        listed = cli_json(project.path, "ls")["worktrees"]
        assert isinstance(listed, list) and listed[1]["processes"] == [pid]
        assert finding_kinds(cli_json(project.path, "doctor")) == []
        fixed = cli_json(project.path, "doctor", "--fix")
        assert fixed["healthy"] is True and fixed["repairs"] == []
        assert_rehomed(project, "feat/move", old, new, before)
        cli(new, "setup", check=True)  # idempotent at the new path: nothing made twice
        ran = cli(new, "run", "--", "sh", "-c", 'echo "$PORT $DATABASE_URL"', check=True)
        assert ran.stdout.split()[0] == str(before[0]["PORT"])
        assert ran.stdout.split()[1].endswith(f"/{before[1]}")
        assert_rehomed(project, "feat/move", old, new, before)
        assert_world_consistent(project, live=["feat/move"])
        cli(project.path, "down", "feat/move", check=True)
        assert not new.exists() and not alive(pid)
    finally:
        end(pid)
    assert before[1] not in pg_names(project.uid) and leased(project) == []
    assert_world_consistent(project)


def test_a_worktree_moved_by_mv_and_repaired_is_rehomed(project: Project) -> None:
    old = up_with_files(project, "feat/mv")
    before = holdings(project, "feat/mv")
    # an entry written before branchyard recorded git's worktree id: found by its branch
    data = json.loads(project.ledger.path.read_text())
    for entry in data["worktrees"].values():
        entry.pop("git_id", None)
    project.ledger.path.write_text(json.dumps(data))
    new = project.path.parent / "moved-by-hand"
    os.rename(old, new)
    # until git knows (`git worktree repair`), the old path is all there is: doctor says so
    report = cli_json(project.path, "doctor", code=1)
    assert finding_kinds(report) == ["missing_worktree"]
    assert "run `git worktree repair` in its new place" in report["findings"][0]["hint"]  # type: ignore[index]
    git("worktree", "repair", cwd=new)
    # doctor --fix is the first command to see it: it re-homes, and drops nothing
    fixed = cli_json(project.path, "doctor", "--fix")
    assert finding_kinds(fixed) == ["rehomed_worktree"]
    [finding] = fixed["findings"]  # type: ignore[misc]
    assert finding["subject"] == f"worktree 'feat/mv' at {new}"
    assert finding["why"] == f"it was moved from {old} (git worktree id {old.name})"
    assert finding["fix"] == "" and fixed["healthy"] is True and fixed["repairs"] == []
    assert_rehomed(project, "feat/mv", old, new, before)
    assert_world_consistent(project, live=["feat/mv"])
    cli(project.path, "down", str(new), check=True)  # named by its new path
    assert not new.exists() and before[1] not in pg_names(project.uid)
    assert_world_consistent(project)


def test_a_new_worktree_that_reuses_the_id_of_a_removed_one_is_not_taken_for_it(
        project: Project) -> None:
    old = up_with_files(project, "feat/gone")
    git("worktree", "remove", str(old), cwd=project.path)
    # git names the new worktree's metadata after its directory: the same id again
    other = project.path.parent / "other" / old.name
    other.parent.mkdir()
    git("worktree", "add", "-q", "-b", "feat/other", str(other), cwd=project.path)
    listed = cli_json(project.path, "ls")["worktrees"]
    assert isinstance(listed, list)
    assert sorted((w["branch"], w["state"]) for w in listed) == [
        ("feat/gone", "missing"), ("feat/other", "unmanaged"), ("main", "main")]
    record = project.ledger.read().by_branch("feat/gone")
    assert record is not None and record.path == str(old)
    cli(project.path, "gc", check=True)
    assert_world_consistent(project, unmanaged=[other])
