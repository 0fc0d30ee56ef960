"""How fast does a worktree get its own copy of a big Postgres database?

Builds a main database with ``pgbench -i`` (scale 150 ≈ 2.4 GB; ``--scale`` for
quick runs), then times, in the same run and on the same server:

  seed       the seed scripts' ``createdb && pg_dump -Fc main | pg_restore``
  raw        ``CREATE DATABASE … TEMPLATE main STRATEGY FILE_COPY``
  miss       ``branchyard up`` with no warm clone ready (clones the snapshot)
  hit        ``branchyard up`` claiming a warm clone from the pool
  down       ``branchyard down``

Targets: hit <= 1 s; miss <= 1.15x raw; miss >= 6x faster than seed.
Usage: python bench/db_clone.py [--scale 150] [--server URL] [--keep-main]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from branchyard.db import postgres as pg
from branchyard.db.urls import parse_url


def timed(label: str, func, results: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    func()
    results[label] = time.perf_counter() - start
    print(f"  {label:<6} {results[label]:7.2f} s", flush=True)


def sh(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout


def checkpoint(admin: str) -> None:
    """Start every timed step from a clean buffer cache state (not timed)."""
    with pg.connect(admin) as conn:
        conn.execute("CHECKPOINT")


def build_main(admin: str, main: str, scale: int) -> None:
    with pg.connect(admin) as conn:
        if pg.exists(conn, main):
            row = conn.execute("SELECT pg_database_size(%s)", (main,)).fetchone()
            print(f"reusing {main} ({row[0] / 1e9:.2f} GB)")  # type: ignore[index]
            return
        pg.create(conn, main)
    print(f"building {main} with pgbench -i -s {scale} …", flush=True)
    url = parse_url(admin).with_database(main).render()
    start = time.perf_counter()
    sh(pg.tool("pgbench"), "-i", "-q", "-s", str(scale), "-d", url)
    with pg.connect(admin) as conn:
        row = conn.execute("SELECT pg_database_size(%s)", (main,)).fetchone()
    print(f"built in {time.perf_counter() - start:.1f} s: {row[0] / 1e9:.2f} GB")  # type: ignore[index]


def make_repo(root: Path, main_url: str, pool: int) -> Path:
    repo = root / "app"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    (repo / ".gitignore").write_text(".env*\nbranchyard.local.toml\n")
    (repo / ".env").write_text(f"DATABASE_URL={main_url}\n")
    write_config(repo, pool)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init", cwd=repo)
    return repo


def write_config(repo: Path, pool: int) -> None:
    (repo / "branchyard.local.toml").write_text(
        f'[[database]]\nname = "app"\nsource = "env:DATABASE_URL"\npool = {pool}\n')


def wait_for_pool(repo: Path, size: int, timeout: float = 600) -> None:
    ledger = repo / ".git" / "branchyard" / "ledger.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool = json.loads(ledger.read_text()).get("sections", {}).get("postgres", {}) \
            .get("pool", {})
        if sum(1 for p in pool.values() if p["state"] == "ready") >= size:
            return
        time.sleep(0.2)
    sys.exit("the pool was not refilled in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=150)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-main", action="store_true",
                        help="keep the pgbench database for the next run")
    args = parser.parse_args()
    admin = args.server
    main_db = f"bybench_s{args.scale}"
    main_url = parse_url(admin).with_database(main_db).render()
    build_main(admin, main_db, args.scale)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bybench-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "BRANCHYARD_STATE_DIR": str(root / "state")}
        repo = make_repo(root, main_url, pool=0)
        by = [sys.executable, "-m", "branchyard"]
        try:
            run_steps(admin, main_db, repo, env, by, results)
        finally:
            cleanup(admin, repo, env, by)
            if not args.keep_main:
                with pg.connect(admin) as conn:
                    pg.drop(conn, main_db)
    report(results)


def run_steps(admin: str, main_db: str, repo: Path, env: dict[str, str], by: list[str],
              results: dict[str, float]) -> None:
    seed_db, raw_db = f"{main_db}_seed", f"{main_db}_raw"
    src_url = parse_url(admin).with_database(main_db).render()
    print("timing:", flush=True)
    checkpoint(admin)

    def seed() -> None:
        server = parse_url(admin)  # a --server URL may carry a password (the managed one)
        sh("createdb", "-h", server.host, "-p", str(server.port), "-U", server.user, seed_db,
           env={**os.environ, "PGPASSWORD": server.password} if server.password else None)
        pg.dump_restore(src_url, parse_url(admin).with_database(seed_db).render())

    timed("seed", seed, results)
    checkpoint(admin)

    def raw() -> None:
        with pg.connect(admin) as conn:
            pg.create(conn, raw_db, template=main_db)

    timed("raw", raw, results)
    with pg.connect(admin) as conn:
        pg.drop(conn, seed_db)
        pg.drop(conn, raw_db)
    start = time.perf_counter()
    sh(*by, "db", "snapshot", cwd=repo, env=env)
    print(f"  (snapshot made once: {time.perf_counter() - start:.2f} s)", flush=True)
    checkpoint(admin)
    timed("miss", lambda: sh(*by, "up", "bench-miss", cwd=repo, env=env), results)
    write_config(repo, pool=1)
    sh(*by, "up", "bench-warm", cwd=repo, env=env)  # not timed: sizes and fills the pool
    wait_for_pool(repo, 1)
    checkpoint(admin)
    timed("hit", lambda: sh(*by, "up", "bench-hit", cwd=repo, env=env), results)
    wait_for_pool(repo, 1)  # let the background refill finish before timing down
    timed("down", lambda: sh(*by, "down", "bench-miss", "--force", cwd=repo, env=env),
          results)


def cleanup(admin: str, repo: Path, env: dict[str, str], by: list[str]) -> None:
    from branchyard.db import snapshot
    from branchyard.ledger import Ledger

    for branch in ("bench-miss", "bench-warm", "bench-hit"):
        subprocess.run([*by, "down", branch, "--force"], cwd=repo, env=env,
                       capture_output=True, check=False)
    state = Ledger(repo / ".git").read()
    for key in {s["key"] for s in state.sections.get("postgres", {})
                .get("snapshots", {}).values()}:
        snapshot.drop_all(repo / ".git", key)


def report(r: dict[str, float]) -> None:
    print("\nresults")
    print(f"  pool hit           {r['hit']:.2f} s   (target <= 1 s: "
          f"{'ok' if r['hit'] <= 1 else 'MISSED'})")
    print(f"  pool miss / raw    {r['miss'] / r['raw']:.2f}x  (target <= 1.15x: "
          f"{'ok' if r['miss'] <= 1.15 * r['raw'] else 'MISSED'})")
    print(f"  seed / pool miss   {r['seed'] / r['miss']:.1f}x  (target >= 6x: "
          f"{'ok' if r['seed'] >= 6 * r['miss'] else 'MISSED'})")
    print(f"  seed / pool hit    {r['seed'] / r['hit']:.1f}x")
    print(f"  down               {r['down']:.2f} s")


if __name__ == "__main__":
    main()
