"""Benchmark: `branchyard up`/`down` against bare `git worktree add`/`remove`,
and `branchyard env` start-up, on a generated repository of 10,000 files.

    python bench/lifecycle.py [--files 10000] [--runs 5]

Targets (issue 2): up <= 1.3x bare `git worktree add` + 0.15 s; env <= 0.12 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
       "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid",
       "GIT_CONFIG_NOSYSTEM": "1"}


def sh(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env=env or ENV, check=True, capture_output=True)


def make_repo(root: Path, files: int) -> Path:
    repo = root / "big"
    per_dir = 100
    for i in range(files):
        folder = repo / "src" / f"m{i // per_dir:03d}"
        if i % per_dir == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:05d}.py").write_text(f"VALUE = {i}\n" * 8)
    (repo / "branchyard.toml").write_text('[ports]\nnames = ["PORT", "API_PORT"]\n')
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "big", cwd=repo)
    return repo


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def branchyard_argv() -> list[str]:
    exe = Path(sys.executable).with_name("branchyard")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "branchyard"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="by-bench-lifecycle-"))
    env = {**ENV, "BRANCHYARD_STATE_DIR": str(root / "state")}
    by = branchyard_argv()
    try:
        repo = make_repo(root, args.files)
        git_add, git_rm, by_up, by_down = [], [], [], []
        for i in range(args.runs):
            path = root / f"bare{i}"
            git_add.append(timed(lambda p=path, i=i: sh(
                "git", "worktree", "add", "-q", "-b", f"bare{i}", str(p), "main", cwd=repo)))
            git_rm.append(timed(lambda p=path: sh("git", "worktree", "remove", str(p),
                                                  cwd=repo)))
            sh("git", "branch", "-D", f"bare{i}", cwd=repo)
            by_up.append(timed(lambda i=i: sh(*by, "up", f"feat/b{i}", cwd=repo, env=env)))
            wt = Path(subprocess.run([*by, "path", f"feat/b{i}"], cwd=repo, env=env, check=True,
                                     capture_output=True, text=True).stdout.strip())
            if i == 0:
                envs = [timed(lambda w=wt: sh(*by, "env", cwd=w, env=env)) for _ in range(15)]
            by_down.append(timed(lambda i=i: sh(*by, "down", f"feat/b{i}", cwd=repo, env=env)))
        report(args, git_add, git_rm, by_up, by_down, envs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(args: argparse.Namespace, git_add: list[float], git_rm: list[float],
           by_up: list[float], by_down: list[float], envs: list[float]) -> None:
    med = statistics.median
    limit = 1.3 * med(git_add) + 0.15
    print(f"repository: {args.files} files; {args.runs} runs each; medians")
    print(f"  git worktree add      {med(git_add):7.3f} s")
    print(f"  branchyard up         {med(by_up):7.3f} s   = {med(by_up) / med(git_add):.2f}x "
          f"bare add   (target <= 1.3x + 0.15 s = {limit:.3f} s: "
          f"{'met' if med(by_up) <= limit else 'MISSED'})")
    print(f"  git worktree remove   {med(git_rm):7.3f} s")
    print(f"  branchyard down       {med(by_down):7.3f} s   = "
          f"{med(by_down) / med(git_rm):.2f}x bare remove")
    print(f"  branchyard env        {med(envs):7.3f} s   (target <= 0.12 s: "
          f"{'met' if med(envs) <= 0.12 else 'MISSED'})")


if __name__ == "__main__":
    main()
