"""Helpers for merge-area tests: worktrees with commits on real repositories."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(root: Path, files: Mapping[str, str], message: str) -> str:
    write(root, files)
    git("add", "-f", "--", *files, cwd=root)
    git("commit", "-q", "-m", message, cwd=root)
    return git("rev-parse", "HEAD", cwd=root)


def add_worktree(repo: Path, branch: str, base: str = "main") -> Path:
    path = repo.parent / f"wt-{branch.replace('/', '-')}"
    git("worktree", "add", "-q", "-b", branch, str(path), base, cwd=repo)
    return path


def subjects(repo: Path, ref: str = "main") -> list[str]:
    return git("log", "--topo-order", "--format=%s", ref, cwd=repo).splitlines()
