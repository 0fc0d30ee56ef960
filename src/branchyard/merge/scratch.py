"""Scratch worktrees: throw-away checkouts where merges are built and checked,
so an agent's worktree and the main checkout's files are never used for it."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from branchyard.repo import git
from branchyard.system import external

CHECK_TIMEOUT = 3600.0
# The project's git hooks (husky, pre-commit…) are for people committing; in a
# scratch worktree the configured checks are what decides.
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def scratch_root(common_dir: Path) -> Path:
    return common_dir / "branchyard" / "scratch"


def log_dir(common_dir: Path) -> Path:
    return common_dir / "branchyard" / "logs"


def new_log(common_dir: Path, label: str) -> Path:
    """A fresh log file for one merge attempt (kept for people to read)."""
    folder = log_dir(common_dir)
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}.log"


@contextmanager
def scratch_worktree(common_dir: Path, start: str) -> Iterator[Path]:
    """A detached worktree at commit ``start``, removed afterwards whatever happens.

    A file lock beside it is held while it is in use, so that
    :func:`prune_scratch` can tell one left by a killed process from a busy one.
    """
    root = scratch_root(common_dir)
    root.mkdir(parents=True, exist_ok=True)
    import tempfile  # `ls` imports this module (markers) and makes no scratch tree

    path = Path(tempfile.mkdtemp(prefix="merge-", dir=root))
    lock = Path(str(path) + ".lock")
    from filelock import FileLock  # `ls` imports this module; only merges lock

    try:
        with FileLock(str(lock)):
            try:
                git.git([*NO_HOOKS, "worktree", "add", "--detach", "--quiet", str(path),
                         start], common_dir)
                yield path
            finally:
                _remove(common_dir, path)
    finally:
        lock.unlink(missing_ok=True)


def is_scratch(common_dir: Path, path: Path) -> bool:
    """Whether ``path`` is one of branchyard's scratch worktrees (never a live one)."""
    return Path(path).resolve().parent == scratch_root(common_dir).resolve()


def prune_scratch(common_dir: Path) -> list[Path]:
    """Remove scratch worktrees whose merge process is gone (for ``doctor``)."""
    from filelock import FileLock, Timeout

    root = scratch_root(common_dir)
    removed: list[Path] = []
    for path in sorted(root.glob("merge-*")) if root.is_dir() else []:
        if path.suffix == ".lock":
            continue
        try:
            with FileLock(str(path) + ".lock", timeout=0):
                _remove(common_dir, path)
        except Timeout:
            continue  # a merge is using it right now
        Path(str(path) + ".lock").unlink(missing_ok=True)
        removed.append(path)
    return removed


def _remove(common_dir: Path, path: Path) -> None:
    done = git.git(["worktree", "remove", "--force", "--force", str(path)], common_dir,
                   check=False)
    if done.returncode != 0:
        # Only our own scratch directory is ever deleted by hand.
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        git.git(["worktree", "prune"], common_dir, check=False)


def run_commands(commands: Sequence[str], cwd: Path, env: Mapping[str, str], label: str,
                 log: TextIO) -> None:
    """Run user commands (checks, lockfile regeneration) one after the other,
    their output into ``log``; the first failure raises :class:`HookError`."""
    for command in commands:
        log.write(f"$ {command}\n")
        log.flush()
        external.run_hook(external.Hook(command, cwd, env, label, timeout=CHECK_TIMEOUT),
                          output=log)


def unmerged_paths(cwd: Path) -> list[str]:
    data = git.git(["diff", "--name-only", "-z", "--diff-filter=U"], cwd).stdout
    return sorted({p for p in data.split("\0") if p})


def head(cwd: Path) -> str:
    return git.out(["rev-parse", "HEAD"], cwd)
