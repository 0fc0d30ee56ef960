"""The ledger follows a worktree git records at another path (same git id, same
branch), and never mistakes another worktree for it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from filelock import FileLock

from branchyard.ledger import Ledger, ResourceRecord, WorktreeRecord
from branchyard.resources.specs import FilesSpec, Owner, PostgresSpec, SqliteSpec
from tests.conftest import git


def record(ledger: Ledger, branch: str, path: Path) -> None:
    """An entry as `setup` makes it, then one more update (which records git's id)."""
    with ledger.update() as state:
        slug = branch.replace("/", "_")
        state.worktrees[slug] = WorktreeRecord(
            slug=slug, subdomain=slug, branch=branch, index=len(state.worktrees) + 1,
            path=str(path), state="ready", ports={"PORT": 41000},
            resources=[ResourceRecord("files", "copy:.vercel", FilesSpec(
                op="copy", rel=".vercel", src="/elsewhere/.vercel", dst=str(path / ".vercel"),
                required=True), "ready")],
            env={"DATA": f"{path}/data", "OTHER": "plain"})
    with ledger.update():
        pass


def test_move_to_rewrites_paths_inside_the_worktree_only(tmp_path: Path) -> None:
    old, new = tmp_path / "wt", tmp_path / "moved"
    files = FilesSpec(op="copy", rel="f", src="/main/f", dst=str(old / "f"), required=True)
    sqlite = SqliteSpec(name="agent", role="worktree", env="DB", seed="clone",
                        path=str(old / "data" / "a.db"), main_path=f"{old}2/data/a.db",
                        value="file:./data/a.db", setup=(str(old / "seed.sh"), "make"))
    owned = PostgresSpec(name="app", role="worktree", env="DB", seed="clone", server="s",
                         database="d", main="m", main_url="u", url="u", common_dir="/main/.git",
                         owner=Owner("c", "host", str(old)))
    rec = WorktreeRecord(slug="s", subdomain="s", branch="b", index=1, path=str(old),
                         resources=[ResourceRecord(s.kind, "k", s) for s in (files, sqlite, owned)],
                         env={"X": f"{old}/x", "Y": "y"})
    rec.move_to(str(new))
    assert rec.path == str(new)
    assert [r.spec for r in rec.resources] == [
        replace(files, dst=str(new / "f")),
        replace(sqlite, path=str(new / "data" / "a.db"), setup=(str(new / "seed.sh"), "make")),
        replace(owned, owner=Owner("c", "host", str(new)))]
    assert rec.env == {"X": f"{new}/x", "Y": "y"}


def test_a_moved_worktree_is_followed_without_waiting_for_the_lock(repo: Path) -> None:
    ledger = Ledger(repo / ".git")
    old, new = repo.parent / "wt", repo.parent / "deeper" / "wt-moved"
    git("worktree", "add", "-q", "-b", "feat/a", str(old), cwd=repo)
    record(ledger, "feat/a", old)
    assert ledger.read().worktrees["feat_a"].git_id == "wt"
    new.parent.mkdir()
    git("worktree", "move", str(old), str(new), cwd=repo)
    stored = ledger.path.read_text()
    with FileLock(str(ledger.lock_path)):  # another command holds the ledger
        started = time.monotonic()
        state = ledger.read()
        assert time.monotonic() - started < 1.0
    assert state.worktrees["feat_a"].path == str(new)
    assert [(m.slug, m.old, m.new, m.git_id) for m in state.moved] == [
        ("feat_a", str(old), str(new), "wt")]
    assert ledger.path.read_text() == stored  # not stored: the lock was busy
    assert ledger.read().moved  # the lock is free: found again, and stored
    rec = ledger.read().worktrees["feat_a"]
    assert (rec.path, rec.env["DATA"]) == (str(new), f"{new}/data")
    assert rec.resources[0].spec.dst == str(new / ".vercel")
    assert ledger.read().moved == []


def test_a_detached_worktree_is_followed_by_its_git_id(repo: Path) -> None:
    ledger = Ledger(repo / ".git")
    old, new = repo.parent / "detached", repo.parent / "detached-moved"
    git("worktree", "add", "-q", "--detach", str(old), cwd=repo)
    record(ledger, "detached", old)  # `setup` names a detached worktree by its directory
    git("worktree", "move", str(old), str(new), cwd=repo)
    assert ledger.read().worktrees["detached"].path == str(new)


def test_another_worktree_is_never_taken_for_a_moved_one(repo: Path) -> None:
    ledger = Ledger(repo / ".git")
    gone, other = repo.parent / "wt", repo.parent / "else" / "wt"
    git("worktree", "add", "-q", "-b", "feat/gone", str(gone), cwd=repo)
    record(ledger, "feat/gone", gone)
    git("worktree", "remove", str(gone), cwd=repo)
    # the same id again (git names it after the directory), another branch
    other.parent.mkdir()
    git("worktree", "add", "-q", "-b", "feat/other", str(other), cwd=repo)
    # and a worktree of the same branch but another id: not the one recorded either
    git("branch", "-m", "feat/gone", "feat/gone-old", cwd=repo)
    git("worktree", "add", "-q", "-b", "feat/gone", str(repo.parent / "again"), cwd=repo)
    state = ledger.read()
    assert state.worktrees["feat_gone"].path == str(gone) and state.moved == []
