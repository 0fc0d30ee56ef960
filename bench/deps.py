"""Dependency reuse against its baselines, measured in the same run.

1. A generated node_modules-like tree (20,000 files): a plain recursive copy
   (`cp -a`, `shutil.copytree`) vs branchyard's reuse (hardlink, auto and copy
   modes), each into a real git worktree.
   Target: reuse by hardlinks <= 25% of a plain recursive copy.
2. A real npm project (a few real packages): `npm ci` (warm cache) vs reuse.
   Target: reuse >= 5x faster than `npm ci`.

Each round starts from a clean page-cache write-back state (`sync`, untimed);
the figures are medians over the rounds. "+sync" columns add the time to make
the result durable, which is where a copy pays for the bytes it wrote.

    python bench/deps.py            # full run
    python bench/deps.py --quick    # 2 rounds, 5,000 files
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deps"))

from nodetree import generate_node_modules

from branchyard.deps.install import Runner
from branchyard.deps.reuse import DepsTarget, Session, ensure_deps
from branchyard.deps.treecopy import CopyRequest, copy_tree, default_workers
from branchyard.system.fsprobe import FsProbe

NPM_PACKAGES = {"express": "4.21.2", "semver": "7.6.3", "chalk": "4.1.2", "is-number": "7.0.0"}
NPM_ENV = {"npm_config_audit": "false", "npm_config_fund": "false",
           "npm_config_update_notifier": "false"}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, files: dict[str, str]) -> tuple[Path, Path]:
    main, worktree = root / "app", root / "app.feature"
    main.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=main)
    (main / ".gitignore").write_text("node_modules/\n")
    for name, text in files.items():
        (main / name).write_text(text)
    git("add", "-A", cwd=main)
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init", cwd=main)
    git("worktree", "add", "-q", "-b", "feature", str(worktree), cwd=main)
    return main, worktree


def timed(action: Callable[[], object], cleanup: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, wall seconds including sync) of one clean run."""
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    action()
    wall = time.perf_counter() - start
    subprocess.run(["sync"], check=True)
    durable = time.perf_counter() - start
    cleanup()
    return wall, durable


def remove(path: Path) -> Callable[[], None]:
    return lambda: shutil.rmtree(path, ignore_errors=True)


def reuse(main: Path, worktree: Path, mode: str, smoke: str = "",
          env: dict[str, str] | None = None) -> Callable[[], object]:
    target = DepsTarget("node_modules", worktree, main, ("package-lock.json",),
                        install="false", mode=mode, smoke=smoke)
    runner = Runner(env={**os.environ, **(env or {})}, on_line=lambda line: None)
    return lambda: ensure_deps(target, Session(runner, FsProbe()))


def run_rounds(cases: dict[str, tuple[Callable[[], object], Callable[[], object]]],
               rounds: int) -> dict[str, tuple[float, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (action, cleanup) in cases.items():  # interleaved: same disk weather
            samples[name].append(timed(action, cleanup))
    return {name: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
            for name, runs in samples.items()}


def report(title: str, results: dict[str, tuple[float, float]], baseline: str) -> None:
    base_wall, base_durable = results[baseline]
    print(f"\n{title}")
    print(f"  {'':34} {'wall':>9} {'vs base':>8} {'+sync':>9} {'vs base':>8}")
    for name, (wall, durable) in results.items():
        print(f"  {name:34} {wall:8.3f}s {wall / base_wall:7.1%} "
              f"{durable:8.3f}s {durable / base_durable:7.1%}")


def bench_tree(root: Path, files: int, rounds: int, workers: int) -> None:
    main, worktree = make_repo(root / "tree", {"package-lock.json": "lock\n"})
    tree = generate_node_modules(main / "node_modules", files=files)
    scratch, dest = root / "scratch", worktree / "node_modules"
    listing_cmd = ["cp", "-a", str(tree.root), str(scratch)]
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "cp -a (baseline)": (lambda: subprocess.run(listing_cmd, check=True), remove(scratch)),
        "shutil.copytree(symlinks=True)": (
            lambda: shutil.copytree(tree.root, scratch, symlinks=True), remove(scratch)),
        "branchyard reuse, mode=hardlink": (reuse(main, worktree, "hardlink"), remove(dest)),
        "branchyard reuse, mode=auto (npm)": (reuse(main, worktree, "auto"), remove(dest)),
    }
    for count in sorted({1, workers} - {default_workers()}):
        request = CopyRequest(tree.root, scratch, "hardlink", workers=count)
        cases[f"hardlink engine, {count} thread(s)"] = (
            lambda r=request: copy_tree(r), remove(scratch))  # type: ignore[misc]
    results = run_rounds(cases, rounds)
    report(f"{tree.files:,} files, {len(tree.bins)} bins; median of {rounds} rounds "
           f"({os.cpu_count()} cores, {default_workers()} copy threads by default)",
           results, "cp -a (baseline)")
    ratio = results["branchyard reuse, mode=hardlink"][0] / results["cp -a (baseline)"][0]
    verdict = "met" if ratio <= 0.25 else "NOT met"
    print(f"  target reuse (hardlink) <= 25% of cp -a: {ratio:.1%} -> {verdict}")


def npm_project(root: Path, env: dict[str, str]) -> tuple[Path, Path] | None:
    seed = root / "seed"
    seed.mkdir(parents=True)
    pins = ", ".join(f'"{k}": "{v}"' for k, v in NPM_PACKAGES.items())
    (seed / "package.json").write_text(
        f'{{"name": "bench", "version": "1.0.0", "private": true, "dependencies": {{{pins}}}}}\n')
    done = subprocess.run(["npm", "install"], cwd=seed, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        print(f"\nnpm install failed, skipping the npm part:\n{done.stderr[-800:]}")
        return None
    files = {n: (seed / n).read_text() for n in ("package.json", "package-lock.json")}
    main, worktree = make_repo(root / "repo", files)
    shutil.move(str(seed / "node_modules"), main / "node_modules")
    return main, worktree


def bench_npm(root: Path, rounds: int) -> None:
    env = {**NPM_ENV, "npm_config_cache": str(root / "npm-cache")}
    made = npm_project(root / "npm", env)
    if made is None:
        return
    main, worktree = made
    dest = worktree / "node_modules"
    count = sum(len(f) for _, _, f in os.walk(main / "node_modules"))
    npm_ci = ["npm", "ci", "--prefer-offline"]
    smoke = "node -e 'require(\"express\"); require(\"chalk\")'"
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "npm ci, warm cache (baseline)": (
            lambda: subprocess.run(npm_ci, cwd=worktree, env={**os.environ, **env},
                                   check=True, capture_output=True, timeout=300), remove(dest)),
        "branchyard reuse, mode=auto": (reuse(main, worktree, "auto"), remove(dest)),
        "branchyard reuse + smoke check": (reuse(main, worktree, "auto", smoke, env),
                                           remove(dest)),
    }
    results = run_rounds(cases, rounds)
    report(f"real npm project ({', '.join(NPM_PACKAGES)}: {count:,} files); "
           f"median of {rounds} rounds", results, "npm ci, warm cache (baseline)")
    base = results["npm ci, warm cache (baseline)"][0]
    for name in ("branchyard reuse, mode=auto", "branchyard reuse + smoke check"):
        speedup = base / results[name][0]
        print(f"  target {name} >= 5x faster than npm ci: {speedup:.1f}x -> "
              f"{'met' if speedup >= 5 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 5,000 files")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--files", type=int, default=0)
    parser.add_argument("--threads", type=int, default=4,
                        help="also time the hardlink engine with 1 and this many threads")
    parser.add_argument("--no-npm", action="store_true", help="skip the real npm project")
    parser.add_argument("--no-tree", action="store_true", help="skip the generated tree")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (same disk!)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    files = args.files or (5_000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory(prefix="branchyard-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"working in {root} ({_fs_type(root)})")
        if not args.no_tree:
            bench_tree(root, files, rounds, args.threads)
        if not args.no_npm and shutil.which("npm"):
            bench_npm(root, rounds)


def _fs_type(path: Path) -> str:
    done = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True,
                          text=True, check=False)
    return done.stdout.split()[-1] if done.returncode == 0 else "unknown filesystem"


if __name__ == "__main__":
    main()
