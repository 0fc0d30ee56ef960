"""A real npm project: reuse must leave a tree node and npm accept, and a changed
lockfile must run a real ``npm ci``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from depskit import NpmProjects, Worktrees, git, make_worktrees

from branchyard.core.events import NullReporter
from branchyard.deps.install import Runner
from branchyard.deps.lockstamp import read_stamp
from branchyard.deps.reuse import DepsTarget, Outcome, Session, ensure_deps

SMOKE = "node -e 'require(\"is-number\"); require(\"semver\")'"


def _npm_worktrees(tmp_path: Path, projects: NpmProjects) -> Worktrees:
    """Main worktree = the full project with its node_modules installed."""
    wt = make_worktrees(tmp_path)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(projects.full / name, wt.main / name)
    git("commit", "-qam", "npm project", cwd=wt.main)
    subprocess.run(["cp", "-a", str(projects.full / "node_modules"), str(wt.main)], check=True)
    git("-C", str(wt.worktree), "merge", "-q", "--ff-only", "main", cwd=wt.main)
    return wt


def _ensure(wt: Worktrees, projects: NpmProjects, smoke: str = SMOKE) -> Outcome:
    target = DepsTarget("node_modules", wt.worktree, wt.main, ("package-lock.json",),
                        install="npm ci --prefer-offline", smoke=smoke)
    runner = Runner(env={**os.environ, **projects.env}, on_line=lambda line: None)
    return ensure_deps(target, Session(runner, reporter=NullReporter()))


def test_a_reused_npm_tree_runs_its_bins_and_passes_npm_ls(
        tmp_path: Path, npm_projects: NpmProjects) -> None:
    wt = _npm_worktrees(tmp_path, npm_projects)

    outcome = _ensure(wt, npm_projects)

    assert outcome.action == "reused"
    semver = wt.worktree / "node_modules" / ".bin" / "semver"
    assert os.readlink(semver) == "../semver/bin/semver.js"
    ran = subprocess.run([str(semver), "-i", "minor", "1.2.3"], capture_output=True,
                         text=True, timeout=30, check=True)
    assert ran.stdout.strip() == "1.3.0"
    listed = subprocess.run(["npm", "ls", "--json"], cwd=wt.worktree, capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, **npm_projects.env})
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_a_changed_lockfile_runs_a_real_npm_ci(tmp_path: Path,
                                               npm_projects: NpmProjects) -> None:
    wt = _npm_worktrees(tmp_path, npm_projects)
    for name in ("package.json", "package-lock.json"):  # the branch dropped semver
        shutil.copy(npm_projects.small / name, wt.worktree / name)

    outcome = _ensure(wt, npm_projects, smoke="node -e 'require(\"is-number\")'")

    assert outcome.action == "installed"
    assert (wt.worktree / "node_modules" / "is-number" / "package.json").exists()
    assert not (wt.worktree / "node_modules" / "semver").exists()
    assert (wt.main / "node_modules" / "semver").exists()  # main untouched
    assert read_stamp(wt.worktree / "node_modules").method == "install"  # type: ignore[union-attr]
