"""Repository layouts: a main branch that is not `main`, a bare repository with
worktrees, a worktree nested inside the main one (`.worktrees/x`)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import git, make_repo

from .conftest import (
    Project,
    alive,
    assert_world_consistent,
    background,
    branches,
    cli,
    cli_json,
    drop_prefixed,
    make_project,
    worktree_paths,
)


def test_a_main_branch_that_is_not_main(tmp_path: Path, uid: str) -> None:
    proj = make_project(tmp_path / "app", uid, branch="trunk")
    try:
        up = cli_json(proj.path, "up", "feat/t")
        assert up["base"] == "trunk" and up["created_branch"] is True
        assert_world_consistent(proj, live=["feat/t"])
        down = cli_json(proj.path, "down", "feat/t")
        assert down["branch_deleted"] is True and down["branch_note"] == "merged into trunk"
        assert branches(proj.path) == {"trunk"}
        assert_world_consistent(proj)
    finally:
        drop_prefixed(uid)


def test_a_bare_repository_with_worktrees(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "src")
    bare = tmp_path / "app.git"
    git("clone", "-q", "--bare", str(source), str(bare), cwd=tmp_path)
    up = cli_json(bare, "up", "feat/b")
    path = Path(up["worktree"]["path"])  # type: ignore[index]
    assert path == tmp_path / f"app.{up['worktree']['slug']}"  # type: ignore[index]
    assert up["base"] == "main"
    listed = cli_json(path, "ls")["worktrees"]
    assert [(w["branch"], w["state"]) for w in listed] == [("feat/b", "ready")]  # type: ignore[union-attr, index]
    assert cli_json(bare, "doctor")["findings"] == []
    cli(bare, "down", "feat/b", check=True)
    assert worktree_paths(bare) == [str(bare)] and not path.exists()
    assert cli_json(bare, "doctor")["findings"] == []


def test_a_worktree_nested_in_the_main_one(project: Project) -> None:
    (project.path / ".gitignore").write_text(".env*\n.worktrees/\n")
    toml = project.path / "branchyard.toml"
    toml.write_text(toml.read_text().replace('[project]\n',
                                             '[project]\nworktree_path = ".worktrees/{slug}"\n'))
    git("commit", "-qam", "nested", cwd=project.path)
    up = cli_json(project.path, "up", "feat/in")
    nested = Path(up["worktree"]["path"])  # type: ignore[index]
    assert nested.parent == project.path / ".worktrees"
    inner, outer = background(nested), background(project.path)
    try:
        listed = {w["path"]: w for w in cli_json(project.path, "ls")["worktrees"]}  # type: ignore[union-attr]
        assert inner in listed[str(nested)]["processes"]
        assert inner not in listed[str(project.path)]["processes"]
        assert outer in listed[str(project.path)]["processes"]
        assert git("status", "--porcelain", cwd=project.path) == ""
        assert cli_json(project.path, "doctor")["findings"] == []
        cli(project.path, "down", "feat/in", check=True)
        assert not alive(inner) and alive(outer)  # only the nested worktree's process
        assert not nested.exists() and os.path.isdir(project.path)
        assert_world_consistent(project)
    finally:
        for pid in (inner, outer):
            if alive(pid):
                os.kill(pid, 9)
