"""Telling what a killed `up` or `down` left from a person's work.

A killed `up` leaves a worktree whose checkout never finished: `doctor --fix`
removes it only when everything in it is the commit's own (no index, every
file byte for byte the commit's, one of them possibly cut short); anything a
person may have made keeps it. A killed `down` leaves a half-removed worktree,
said to be 'removing' (never 'ready') until `doctor --fix` or `down` again
finishes the removal the user asked for.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from branchyard.api import intents
from branchyard.api.intents import Intent
from tests.conftest import git

from .conftest import (
    Project,
    assert_world_consistent,
    branches,
    cli,
    cli_json,
    finding_kinds,
)

KILLED = -signal.SIGKILL
FILES = {"src/a.txt": b"alpha\n" * 50, "src/b.txt": b"beta\n" * 50, "docs/c.md": b"# c\n"}


@pytest.fixture
def repo_files(project: Project) -> Project:
    for rel, data in FILES.items():
        (project.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (project.path / rel).write_bytes(data)
    git("add", "-A", cwd=project.path)
    git("commit", "-qm", "files", cwd=project.path)
    return project


def committed(project: Project) -> dict[str, bytes]:
    names = git("ls-tree", "-r", "--name-only", "HEAD", cwd=project.path).splitlines()
    return {n: (project.path / n).read_bytes() for n in names}


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def killed_up(project: Project, files: dict[str, bytes]) -> Path:
    """A worktree as an `up` killed in its checkout leaves it: added without a
    checkout, no index, ``files`` on disk, and the dead `up`'s intent."""
    sha = git("rev-parse", "HEAD", cwd=project.path)
    path = project.path.parent / "app.half"
    git("worktree", "add", "-q", "--no-checkout", "-b", "feat/half", str(path), "main",
        cwd=project.path)
    for rel, data in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    intent = Intent(op="up", path=str(path), pid=dead_pid(), create_time=1.0,
                    branch="feat/half", created_branch=True, base_sha=sha, checkout_sha=sha)
    with project.ledger.update() as state:
        intents.put(state, intent)
    return path


def fix(project: Project) -> dict[str, object]:
    report = cli_json(project.path, "doctor", code=1)
    assert finding_kinds(report) == ["interrupted_up"]
    return cli_json(project.path, "doctor", "--fix", code=None)


def repair_text(report: dict[str, object]) -> str:
    repairs = report["repairs"]
    assert isinstance(repairs, list)
    return "; ".join(str(r["done"]) for r in repairs)


@pytest.mark.parametrize("case", ["nothing yet", "some, one cut short", "all, no index",
                                  "index being written"])
def test_an_unfinished_checkout_is_removed(repo_files: Project, case: str) -> None:
    files = committed(repo_files)
    if case == "nothing yet":
        files = {}
    elif case != "all, no index":
        files = {k: files[k] for k in ("README.md", "docs/c.md", "src/a.txt")}
        files["src/a.txt"] = files["src/a.txt"][:7] if case.startswith("some") else b""
    path = killed_up(repo_files, files)
    if case == "index being written":
        (repo_files.common / "worktrees" / path.name / "index.lock").write_bytes(b"DIRC")
    fixed = fix(repo_files)
    assert fixed["healthy"] is True, fixed
    assert f"removed the worktree {path}" in repair_text(fixed)
    assert not path.exists() and "feat/half" not in branches(repo_files.path)
    assert_world_consistent(repo_files)


PERSON_MADE = {
    "a new file": {"notes.txt": b"my notes\n"},
    "an edited file": {"src/a.txt": b"my own version\n"},
    "an ignored file": {".env": b"SECRET=mine\n"},  # .gitignore has .env*
    "two files cut short": {"src/a.txt": b"alp", "src/b.txt": b"be"},
    "a file grown longer": {"docs/c.md": b"# c\nmore of mine\n"},
}


@pytest.mark.parametrize("case", sorted(PERSON_MADE))
def test_a_persons_work_in_a_half_made_worktree_is_kept(repo_files: Project,
                                                        case: str) -> None:
    files = {**committed(repo_files), **PERSON_MADE[case]}
    path = killed_up(repo_files, files)
    fixed = fix(repo_files)
    assert "kept the worktree" in repair_text(fixed)
    for rel, data in files.items():
        assert (path / rel).read_bytes() == data, rel
    assert "feat/half" in branches(repo_files.path)


def test_a_half_made_worktree_whose_head_moved_is_kept(repo_files: Project) -> None:
    path = killed_up(repo_files, committed(repo_files))
    mine = git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "mine", cwd=repo_files.path)
    git("update-ref", "HEAD", mine, cwd=path)  # a commit of its own; still no index
    fixed = fix(repo_files)
    assert "kept the worktree" in repair_text(fixed) and "HEAD is at" in repair_text(fixed)
    assert path.is_dir() and "feat/half" in branches(repo_files.path)


def test_a_checkout_finished_by_hand_then_edited_is_kept(repo_files: Project) -> None:
    path = killed_up(repo_files, {})
    git("reset", "-q", "--hard", cwd=path)  # the index is there now: git's view decides
    (path / "src" / "b.txt").write_bytes(b"edited\n")
    fixed = fix(repo_files)
    assert "kept the worktree" in repair_text(fixed) and "src/b.txt" in repair_text(fixed)
    assert (path / "src" / "b.txt").read_bytes() == b"edited\n"


def killed_down(project: Project, *args: str) -> Path:
    """`down` killed once its removal began, with half of the tree (and its `.git`
    file) removed, as `git worktree remove` leaves it when killed."""
    cli(project.path, "up", "feat/y", check=True)
    path = Path(project.ledger.read().by_branch("feat/y").path)  # type: ignore[union-attr]
    done = cli(project.path, "down", *args, "feat/y", fault="down.removing")
    assert done.returncode == KILLED, done.stderr
    for rel in [".git", "README.md", "src/a.txt"]:
        (path / rel).unlink()
    return path


def test_an_interrupted_down_is_shown_as_being_removed(repo_files: Project) -> None:
    killed_down(repo_files, "--force")
    [view] = [w for w in cli_json(repo_files.path, "ls")["worktrees"]  # type: ignore[union-attr]
              if w["branch"] == "feat/y"]
    assert view["state"] == "removing"
    shown = cli(repo_files.path, "status", "feat/y").stdout
    assert "removing (being removed; if no `branchyard down` is running, it was " \
           "interrupted: `branchyard doctor --fix` finishes it)" in shown


def test_doctor_finishes_an_interrupted_down_force(repo_files: Project) -> None:
    path = killed_down(repo_files, "--force")
    (path / "src" / "b.txt").write_bytes(b"discarded: the user said --force\n")
    report = cli_json(repo_files.path, "doctor", code=1)
    assert finding_kinds(report) == ["interrupted_down"]
    fixed = cli_json(repo_files.path, "doctor", "--fix")
    assert fixed["healthy"] is True
    assert not path.exists() and "feat/y" not in branches(repo_files.path)
    assert_world_consistent(repo_files)  # its database dropped, its ports free


def test_down_again_finishes_an_interrupted_down(repo_files: Project) -> None:
    path = killed_down(repo_files)
    cli(repo_files.path, "down", "feat/y", check=True)
    assert not path.exists() and "feat/y" not in branches(repo_files.path)
    assert_world_consistent(repo_files)


def test_an_interrupted_down_keeps_what_changed_since(repo_files: Project) -> None:
    """Without --force, what is left is removed only if nothing there changed."""
    path = killed_down(repo_files)
    (path / "src" / "b.txt").write_bytes(b"mine, written after down was killed\n")
    (path / "notes.txt").write_bytes(b"my notes\n")
    fixed = cli_json(repo_files.path, "doctor", "--fix", code=1)
    [failed] = fixed["repairs"]  # type: ignore[misc]
    assert "what is left of it has changes: notes.txt, src/b.txt" in failed["error"]["message"]
    again = cli(repo_files.path, "down", "feat/y")
    assert again.returncode == 1 and "notes.txt, src/b.txt" in again.stderr
    assert (path / "notes.txt").read_bytes() == b"my notes\n"
    cli(repo_files.path, "down", "--force", "feat/y", check=True)
    assert not path.exists()
    assert_world_consistent(repo_files)


def test_an_entry_left_removing_without_its_intent_is_finished(repo_files: Project) -> None:
    path = killed_down(repo_files, "--force")
    with repo_files.ledger.update() as state:
        state.sections.pop("intents")
    report = cli_json(repo_files.path, "doctor", code=1)
    [finding] = report["findings"]  # type: ignore[misc]
    assert finding["kind"] == "interrupted_down" and finding["owner"].startswith("ledger entry")
    (path / "src" / "b.txt").write_bytes(b"changed\n")  # no intent: no --force to honour
    assert cli_json(repo_files.path, "doctor", "--fix", code=1)["healthy"] is False
    (path / "src" / "b.txt").unlink()
    assert cli_json(repo_files.path, "doctor", "--fix")["healthy"] is True
    assert not path.exists()
    assert_world_consistent(repo_files)
