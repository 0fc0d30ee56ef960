"""Benchmark: one machine with many live worktrees.

    python bench/scale.py [--worktrees 50] [--files 2000] [--databases 100] [--runs 7]
    python bench/scale.py --quick

Part 1: a repository of FILES files with WORKTREES live worktrees; the medians
of `branchyard ls --json`, `branchyard env` and `branchyard doctor` (each a
fresh process), with `git worktree list` and a bare `python -c pass` as the
baselines measured in the same run.
Targets (issue 6): ls --json <= 0.4 s, env <= 0.12 s, doctor <= 1 s.

Part 2: DATABASES worktrees, each with its own Postgres clone on the server at
127.0.0.1:5432 (set BENCH_PG to change it), brought up 8 at a time; a sampler
counts the server's client connections throughout. branchyard must never hold
one open between statements: the peak must stay at most the number of commands
running at once, and it must hold none once they are done. branchyard's
connections are told apart from everyone else's by PGAPPNAME.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PARALLEL = 8
APP = "branchyard-scale-bench"


def env_for(state: Path) -> dict[str, str]:
    return {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid",
            "GIT_CONFIG_NOSYSTEM": "1", "BRANCHYARD_STATE_DIR": str(state),
            "PGAPPNAME": APP}  # libpq tags every connection branchyard opens


def run(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(list(argv), cwd=cwd, env=env, check=True, capture_output=True, timeout=300)


def branchyard(*args: str) -> list[str]:
    return [sys.executable, "-m", "branchyard", *args]


def make_repo(root: Path, files: int, config: str, env: dict[str, str]) -> Path:
    repo = root / "app"
    for i in range(files):
        folder = repo / "src" / f"m{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.py").write_text(f"VALUE = {i}\n")
    (repo / "branchyard.toml").write_text(config)
    (repo / ".gitignore").write_text(".env*\n")
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "init"], repo, env)
    return repo


def up_many(repo: Path, count: int, env: dict[str, str]) -> list[Path]:
    """`branchyard up` COUNT branches, PARALLEL at a time; their paths."""
    def one(i: int) -> None:
        run(branchyard("up", f"feat/w{i:03d}", "--json"), repo, env)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, range(count)))
    return sorted(p for p in repo.parent.iterdir() if p.name.startswith("app.feat_w"))


def median_time(argv: Sequence[str], cwd: Path, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(argv, cwd, env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, seconds: float, baseline: float, base_name: str,
           target: float | None) -> None:
    verdict = "" if target is None else (
        f"  target <= {target:.2f} s: {'ok' if seconds <= target else 'MISSED'}")
    print(f"  {name:<22} {seconds:6.3f} s   {seconds / baseline:5.1f}x {base_name}{verdict}")


def part_worktrees(root: Path, count: int, files: int, runs: int) -> None:
    env = env_for(root / "state")
    repo = make_repo(root, files, '[ports]\nnames = ["PORT", "API_PORT"]\n', env)
    start = time.perf_counter()
    paths = up_many(repo, count, env)
    print(f"{len(paths)} worktrees of a {files}-file repository "
          f"(made in {time.perf_counter() - start:.1f} s, {PARALLEL} at a time)")
    python = median_time([sys.executable, "-c", "pass"], repo, env, runs)
    listing = median_time(["git", "worktree", "list", "--porcelain"], repo, env, runs)
    report("python -c pass", python, python, "python", None)
    report("git worktree list", listing, listing, "git list", None)
    report("branchyard ls --json", median_time(branchyard("ls", "--json"), repo, env, runs),
           listing, "git list", 0.4)
    report("branchyard env", median_time(branchyard("env"), paths[len(paths) // 2], env, runs),
           python, "python", 0.12)
    report("branchyard doctor", median_time(branchyard("doctor"), repo, env, runs),
           listing, "git list", 1.0)


class ConnectionSampler:
    """Counts branchyard's connections to the server every few milliseconds."""

    def __init__(self) -> None:
        import psycopg

        self.conn = psycopg.connect(PG, autocommit=True, application_name="sampler")
        self.base = self.count()
        self.peak = self.base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def count(self) -> int:
        """Connections opened by branchyard processes of this run (tagged by PGAPPNAME)."""
        row = self.conn.execute("SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = %s", (APP,)).fetchone()
        return int(row[0]) if row else 0

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.count())
            self.stop.wait(0.003)

    def __enter__(self) -> ConnectionSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def part_databases(root: Path, count: int, runs: int) -> None:
    import psycopg
    from psycopg import sql

    uid = f"bench{secrets.token_hex(3)}"
    main = f"{uid}_main"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(main)))
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
    source = PG.rsplit("/", 1)[0] + "/" + main
    env = env_for(root / "state-db")
    repo = make_repo(root / "db", 20, f'[[database]]\nname = "app"\nsource = "{source}"\n', env)
    try:
        with ConnectionSampler() as sampler:
            start = time.perf_counter()
            up_many(repo, count, env)
            made = time.perf_counter() - start
            for args in (("ls", "--json"), ("doctor",), ("db", "status", "--json")):
                median_time(branchyard(*args), repo, env, max(1, runs // 3))
            idle = sampler.count() - sampler.base
        with psycopg.connect(PG, autocommit=True) as conn:
            ours = conn.execute(
                "SELECT count(*) FROM pg_database WHERE starts_with(datname, %s) "
                "AND datname NOT LIKE '%%\\_\\_snap\\_%%' AND datname <> %s",
                (uid, main)).fetchone()[0]  # type: ignore[index]
        added = sampler.peak - sampler.base
        print(f"{ours} worktree databases on one server (max_connections {limit}), "
              f"made in {made:.1f} s, {PARALLEL} `up`s at a time")
        print(f"  peak connections added by branchyard: {added} "
              f"(<= {PARALLEL} commands at once: {'ok' if added <= PARALLEL else 'MISSED'})")
        print(f"  connections held once idle: {idle} (target 0: "
              f"{'ok' if idle <= 0 else 'MISSED'})")
    finally:
        drop_prefixed(uid)


def drop_prefixed(uid: str) -> None:
    """Drop the databases this run made (all start with its unique prefix)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (uid,))]
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worktrees", type=int, default=50)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--databases", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="10 worktrees, 10 databases")
    parser.add_argument("--skip-databases", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.worktrees, args.databases, args.files, args.runs = 10, 10, 500, 3
    root = Path(tempfile.mkdtemp(prefix="branchyard-scale-"))
    steps: list[Callable[[], None]] = [
        lambda: part_worktrees(root / "wt", args.worktrees, args.files, args.runs)]
    if not args.skip_databases:
        steps.append(lambda: part_databases(root / "db", args.databases, args.runs))
    try:
        for step in steps:
            step()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
