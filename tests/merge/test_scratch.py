"""Scratch worktrees: never taken for live ones, and pruned after a crash."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock
from yard import add_worktree, git

from branchyard.merge.scratch import prune_scratch, scratch_root, scratch_worktree
from branchyard.merge.targets import load_repo


def test_a_scratch_worktree_left_by_a_killed_merge_is_pruned(repo: Path) -> None:
    add_worktree(repo, "a")
    common = load_repo(repo).common_dir
    scratch_root(common).mkdir(parents=True)
    left = scratch_root(common) / "merge-left"
    busy = scratch_root(common) / "merge-busy"
    for path in (left, busy):
        git("worktree", "add", "-q", "--detach", str(path), "main", cwd=repo)

    assert [wt.name for wt in load_repo(repo).worktrees] == ["a"]
    with FileLock(str(busy) + ".lock"):
        assert prune_scratch(common) == [left]
    assert not left.exists() and busy.exists()
    assert str(left) not in git("worktree", "list", cwd=repo)


def test_scratch_worktree_is_removed_even_when_the_work_fails(repo: Path) -> None:
    common = load_repo(repo).common_dir
    seen: list[Path] = []
    try:
        with scratch_worktree(common, "main") as path:
            seen.append(path)
            assert (path / "README.md").read_text() == "hello\n"
            raise RuntimeError("checks crashed")
    except RuntimeError:
        pass
    assert not seen[0].exists()
    assert git("worktree", "list", cwd=repo).count("\n") == 0
    assert list(scratch_root(common).iterdir()) == []
