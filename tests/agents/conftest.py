"""Fixtures for the agent-app tests: each app's wiring is read from the file
`agents init` wrote and run the way the app runs it — `sh -c` in the app's
directory, with its payload on stdin and its environment variables — against a
project with a real Postgres database (tests/reliability's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import branchyard
from tests.conftest import git
from tests.reliability.conftest import Project, cli_env, drop_prefixed, make_project
from tests.reliability.test_crashes import wait_for_refills_of

SRC = Path(branchyard.__file__).resolve().parents[1]


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A directory with a `branchyard` executable running this tree's code: the
    apps find `branchyard` on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "branchyard"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m branchyard "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def app_env(shim: Path, **extra: str) -> dict[str, str]:
    env = cli_env(**extra)
    env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(SRC)
    return env


def sh(command: str, cwd: Path, env: dict[str, str], stdin: str = "",
       timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``sh -c COMMAND`` as an app runs a hook or script."""
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)


def wire(project: Project, shim: Path, *args: str) -> dict[str, Any]:
    done = sh("branchyard agents init --json " + " ".join(args), project.path,
              app_env(shim))
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@pytest.fixture
def agent_project(tmp_path: Path, uid: str) -> Iterator[Project]:
    """A project whose worktrees each get a clone of a test-made Postgres database,
    with a run hook and a gitignored file listed in .worktreeinclude."""
    project = make_project(tmp_path / "app", uid)
    yield from _with_run_hook(project, uid)


@pytest.fixture
def pooled_project(tmp_path: Path, uid: str) -> Iterator[Project]:
    """The same, keeping one warm spare clone (`pool = 1`)."""
    project = make_project(tmp_path / "app", uid, pool=1)
    yield from _with_run_hook(project, uid)


def _with_run_hook(project: Project, uid: str) -> Iterator[Project]:
    config = project.path / "branchyard.toml"
    # a setup hook that prints: its output must not reach the app's stdout
    config.write_text(config.read_text() + '[hooks]\nsetup = ["echo installing deps"]\n'
                      'run = "echo $PORT > ran.txt"\n')
    (project.path / ".gitignore").write_text(
        (project.path / ".gitignore").read_text() + "secrets.txt\n.claude/worktrees/\n")
    (project.path / ".worktreeinclude").write_text("secrets.txt\n")
    (project.path / "secrets.txt").write_text("s3cret\n")
    git("add", "-A", cwd=project.path)
    git("commit", "-qm", "run hook, worktreeinclude", cwd=project.path)
    try:
        yield project
    finally:
        wait_for_refills_of(project.common)
        drop_prefixed(uid)


@pytest.fixture
def uid() -> str:
    import secrets

    return f"bya{secrets.token_hex(3)}"
