"""Fixtures for dependency reuse: generated package trees, real worktrees and a
real npm project (installed once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from depskit import NpmProjects, Worktrees, make_worktrees, npm_install
from nodetree import GeneratedTree, generate_node_modules


@pytest.fixture(scope="session")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> GeneratedTree:
    """A 20,000-file node_modules-like tree; tests only read it."""
    return generate_node_modules(tmp_path_factory.mktemp("big") / "node_modules")


@pytest.fixture
def trees(tmp_path: Path) -> Worktrees:
    wt = make_worktrees(tmp_path)
    generate_node_modules(wt.main / "node_modules", files=600)
    return wt


@pytest.fixture(scope="session")
def npm_projects(tmp_path_factory: pytest.TempPathFactory) -> NpmProjects:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    base = tmp_path_factory.mktemp("npm")
    projects = NpmProjects(base / "full", base / "small", base / "cache")
    npm_install(projects.full, {"is-number": "7.0.0", "semver": "7.6.3"}, projects.env)
    npm_install(projects.small, {"is-number": "7.0.0"}, projects.env)
    return projects
