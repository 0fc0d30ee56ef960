"""`git status --porcelain=v1 -z` read right: a rename's two paths, in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchyard import api
from branchyard.core.errors import UnsafeError
from branchyard.repo import git
from tests.conftest import git as run_git
from tests.conftest import make_repo


def test_a_staged_rename_is_named_by_both_its_paths(repo: Path) -> None:
    (repo / "original_name.txt").write_text("kept\n")
    run_git("add", "original_name.txt", cwd=repo)
    run_git("commit", "-qm", "a file to rename", cwd=repo)
    wt = Path(api.up(api.UpRequest("feat/rename", cwd=repo)).path)
    run_git("mv", "original_name.txt", "renamed_file.txt", cwd=wt)
    (wt / "draft.txt").write_text("new\n")
    assert git.status_porcelain(wt) == ["original_name.txt -> renamed_file.txt", "draft.txt"]
    with pytest.raises(UnsafeError) as err:
        api.down(api.DownRequest("feat/rename", cwd=repo))
    assert str(err.value).splitlines()[0] == (
        f"{wt} has uncommitted or untracked changes: "
        "original_name.txt -> renamed_file.txt, draft.txt")
    assert wt.is_dir()
    api.down(api.DownRequest("feat/rename", cwd=repo, force=True))
    assert not wt.exists()


def test_renames_and_copies_in_either_column_take_their_source_path() -> None:
    data = "R  b.txt\0a.txt\0 M c.txt\0RM e f.txt\0d d.txt\0 C g.txt\0h.txt\0?? x\0"
    assert git.parse_status(data) == ["a.txt -> b.txt", "c.txt", "d d.txt -> e f.txt",
                                      "h.txt -> g.txt", "x"]


def test_an_interrupted_ups_work_names_a_staged_rename_by_its_paths(tmp_path: Path) -> None:
    """The doctor's list of work in a half-made worktree reads renames whole too (the
    source's staged deletion, absent on disk, looks like a file not checked out yet;
    the new name is the work that keeps the worktree)."""
    from branchyard.api.repair import _user_changes

    repo = make_repo(tmp_path / "r")
    (repo / "original_name.txt").write_text("x\n")
    run_git("add", "-A", cwd=repo)
    run_git("commit", "-qm", "file", cwd=repo)
    run_git("mv", "original_name.txt", "renamed_file.txt", cwd=repo)
    assert _user_changes(repo) == ["renamed_file.txt"]
