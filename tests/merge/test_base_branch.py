"""One base branch for `up`, `down`, `merge`, the radar and the queue: a worktree
without a recorded base merges into the repository's main branch, found the same
way everywhere (origin's HEAD, the main checkout's branch, main/master/trunk/develop)."""

from __future__ import annotations

from pathlib import Path

from yard import git

from branchyard.merge.targets import load_repo
from branchyard.repo import git as gitops
from tests.conftest import make_repo


def test_merge_takes_origins_head_not_the_branch_the_main_checkout_is_on(
        tmp_path: Path) -> None:
    upstream = make_repo(tmp_path / "upstream")
    git("clone", "-q", str(upstream), str(tmp_path / "app"), cwd=tmp_path)
    app = tmp_path / "app"
    git("checkout", "-q", "-b", "other", cwd=app)
    git("worktree", "add", "-q", "-b", "a", str(tmp_path / "wt-a"), "main", cwd=app)

    found = load_repo(app).find("a")

    assert found is not None and found.base == "main"
    assert gitops.default_branch(app) == "main"


def test_a_detached_main_checkout_falls_back_to_an_existing_master(tmp_path: Path) -> None:
    app = make_repo(tmp_path / "app", branch="master")
    git("checkout", "-q", "--detach", cwd=app)
    git("worktree", "add", "-q", "-b", "a", str(tmp_path / "wt-a"), "master", cwd=app)

    found = load_repo(app).find("a")

    assert found is not None and found.base == "master"
    assert gitops.default_branch(app) == "master"
