"""Helpers for the dependency reuse tests: real worktrees and npm projects."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Worktrees:
    main: Path
    worktree: Path


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_worktrees(tmp_path: Path, lockfile: str = "lock v1\n") -> Worktrees:
    """A real repository with a committed lockfile and one linked worktree."""
    main = tmp_path / "app"
    main.mkdir()
    git("init", "-q", "-b", "main", cwd=main)
    (main / ".gitignore").write_text("node_modules/\n.venv/\n")
    (main / "package-lock.json").write_text(lockfile)
    git("add", "-A", cwd=main)
    git("commit", "-q", "-m", "lockfile", cwd=main)
    worktree = tmp_path / "app.feature"
    git("worktree", "add", "-q", "-b", "feature", str(worktree), cwd=main)
    return Worktrees(main, worktree)


@dataclass(frozen=True)
class NpmProjects:
    """Two installed npm projects: ``full`` (is-number + semver, which has a
    bin) and ``small`` (is-number only), sharing one npm cache."""

    full: Path
    small: Path
    cache: Path

    @property
    def env(self) -> dict[str, str]:
        return {"npm_config_cache": str(self.cache), "npm_config_audit": "false",
                "npm_config_fund": "false", "npm_config_update_notifier": "false"}


def npm_install(project: Path, deps: dict[str, str], env: dict[str, str]) -> None:
    project.mkdir(parents=True)
    pins = ", ".join(f'"{k}": "{v}"' for k, v in deps.items())
    (project / "package.json").write_text(
        f'{{"name": "demo", "version": "1.0.0", "private": true, "dependencies": {{{pins}}}}}\n')
    try:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=project,
                       env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=120, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"npm registry unreachable: {exc}")
