"""Benchmark: the conflict radar on a generated repository.

    python bench/conflicts.py [--files 10000] [--worktrees 20] [--runs 3] [--quick]
                              [--all-overlap]

Each worktree gets commits (a few of them touching the same files, so some
pairs conflict, one adding a colliding migration) and uncommitted edits plus
an untracked file. The radar (snapshots, merge-tree per pair, migrations,
locks, threads) is timed against a naive baseline measured in the same run:
a fresh temporary-index snapshot per worktree and one `git merge-tree`
subprocess per pair, serial.

Target (issue 5): 20 worktrees (190 pairs + 20 against the base) on a
10,000-file repository in <= 3 s.
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
from itertools import combinations
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from branchyard.merge.editcheck import check_edit
from branchyard.merge.radar import merge_tree, scan
from branchyard.merge.targets import load_repo

T = TypeVar("T")

GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1"}


def sh(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                   capture_output=True)


def make_repo(root: Path, files: int) -> Path:
    repo = root / "big"
    for i in range(files):
        folder = repo / "src" / f"m{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:05d}.py").write_text("".join(f"line {n} of {i}\n" for n in range(12)))
    (repo / "migrations").mkdir()
    (repo / "migrations" / "0001_init.sql").write_text("create table t();\n")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "generated", cwd=repo)
    return repo


def make_worktrees(repo: Path, count: int, files: int, hot_every: int = 5) -> None:
    for w in range(count):
        path = repo.parent / f"wt{w:02d}"
        sh("git", "worktree", "add", "-q", "-b", f"feat/w{w:02d}", str(path), "main", cwd=repo)
        for c in range(3):  # three commits, each touching five files of its own
            for k in range(5):
                target = _file(path, (w * 97 + c * 13 + k * 7) % files)
                target.write_text(target.read_text() + f"commit {c} of worktree {w}\n")
            sh("git", "commit", "-q", "-am", f"w{w} c{c}", cwd=path)
        if w % hot_every == 0:  # every fifth (by default) also edits a shared hotspot
            hot = _file(path, 42)
            hot.write_text(f"hotspot rewritten by {w}\n" + hot.read_text())
            sh("git", "commit", "-q", "-am", f"w{w} hotspot", cwd=path)
        if w in (3, 4):
            (path / "migrations" / f"0002_w{w}.sql").write_text("alter table t;\n")
        dirty = _file(path, (w * 31 + 5) % files)
        dirty.write_text(dirty.read_text() + "uncommitted\n")
        (path / f"scratch-{w}.txt").write_text("untracked\n")


def _file(root: Path, i: int) -> Path:
    return root / "src" / f"m{i // 100:03d}" / f"f{i:05d}.py"


def naive(repo: Path) -> int:
    """A fresh temporary index per worktree, then one merge-tree per pair, serial."""
    loaded = load_repo(repo)
    commits = [_naive_snapshot(wt.path, wt.head) for wt in loaded.worktrees]
    pairs = [*combinations(commits, 2), *((c, "main") for c in commits)]
    return sum(1 for a, b in pairs if merge_tree(a, b, loaded.common_dir)[0])


def _naive_snapshot(path: Path, head: str) -> str:
    index = Path(_git(path, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    with tempfile.TemporaryDirectory() as tmp:
        temp = Path(tmp) / "index"
        shutil.copy2(index, temp)
        env = {"GIT_INDEX_FILE": str(temp)}
        _git(path, "add", "-A", env=env)
        tree = _git(path, "write-tree", env=env)
    return _git(path, "commit-tree", tree, "-p", head, "-m", "snapshot")


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


def radar(repo: Path) -> tuple[int, int]:
    report = scan(load_repo(repo))
    return sum(1 for p in report.pairs if p.conflict), report.merges_run


def edit_check(repo: Path) -> int:
    """What an agent's pre-edit hook pays: `check-edit` on the shared hotspot."""
    loaded = load_repo(repo)
    return len(check_edit(loaded, loaded.worktrees[0].path / "src" / "m000" / "f00042.py")
               .changed_by)


def timed(func: Callable[[Path], T], repo: Path, runs: int) -> tuple[float, T]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = func(repo)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--worktrees", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 files, 6 worktrees, 1 run")
    parser.add_argument("--all-overlap", action="store_true",
                        help="worst case: every worktree edits the hotspot, so every pair "
                             "needs git merge-tree")
    args = parser.parse_args()
    if args.quick:
        args.files, args.worktrees, args.runs = 2_000, 6, 1
    os.environ.update(GIT_ENV)
    with tempfile.TemporaryDirectory(prefix="bench-conflicts-") as tmp:
        start = time.perf_counter()
        repo = make_repo(Path(tmp), args.files)
        make_worktrees(repo, args.worktrees, args.files, 1 if args.all_overlap else 5)
        print(f"setup: {args.files} files, {args.worktrees} worktrees "
              f"in {time.perf_counter() - start:.1f} s")
        pairs = args.worktrees * (args.worktrees - 1) // 2
        cold, _ = timed(radar, repo, 1)
        fast, (found, merges) = timed(radar, repo, args.runs)
        slow, naive_found = timed(naive, repo, args.runs)
        print(f"pairs: {pairs} between worktrees + {args.worktrees} against the base")
        print(f"radar (first run):  {cold:.3f} s")
        print(f"radar (median):     {fast:.3f} s  ({found} conflicting pairs, "
              f"files + migrations; merge-tree ran for {merges} of "
              f"{pairs + args.worktrees} pairs)")
        print(f"naive serial:       {slow:.3f} s  ({naive_found} textually conflicting pairs)")
        print(f"speed-up:           {slow / fast:.2f}x   target <= 3 s: "
              f"{'met' if fast <= 3.0 else 'MISSED'}")
        edit, touched = timed(edit_check, repo, args.runs)
        print(f"check-edit (median): {edit:.3f} s  ({touched} other worktrees changed the path)")


if __name__ == "__main__":
    main()
