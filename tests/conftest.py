"""Shared fixtures: a sealed environment and real git repositories."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def sealed_env(tmp_path_factory: pytest.TempPathFactory,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Own HOME, own branchyard state dir, no system git config; and fail any test
    that leaks an ``os.environ`` change."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(home / "state"))
    monkeypatch.delenv("CONDUCTOR_PORT", raising=False)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    before = dict(os.environ)
    cwd = os.getcwd()
    yield
    os.chdir(cwd)
    leaked = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}
    assert not leaked, f"test leaked environment changes: {sorted(leaked)}"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", branch, cwd=path)
    (path / "README.md").write_text("hello\n")
    (path / ".gitignore").write_text(".env*\nnode_modules/\nagent-browser.json\n")
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit on ``main``, at ``tmp_path/app``."""
    return make_repo(tmp_path / "app")
